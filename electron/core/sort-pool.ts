/**
 * Sorts (key, record index) pairs on the sort worker (sort-worker.ts), off the thread that takes the capture
 * in: the arrays are shared memory, sorted in place as sortByKey sorts them (the caller leaves them alone
 * meanwhile). One worker, started when first needed,
 * takes the sorts in order; it does not keep the process alive while idle.
 *
 *   await sortOffThread(keys, idx, n, (fraction) => report(fraction));
 */
import type { Worker } from 'node:worker_threads';
import type { PrepareJob, SortJob, SortReply } from './sort-worker.js';
import { startWorker } from './workers.js';

/** The sort worker failed: the arrays given to it are lost (sort again on this thread, with new ones). */
export class SortWorkerFailed extends Error {
  constructor(why: string) {
    super(`the sort worker failed: ${why}`);
    this.name = 'SortWorkerFailed';
  }
}

interface Pending {
  resolve(reply?: SortReply): void;
  reject(err: Error): void;
  onProgress: ((fraction: number) => void) | undefined;
}

let worker: Worker | null = null;
/** Lets the current worker go: its sorts fail with SortWorkerFailed at once, its later messages are ignored. */
let failWorker: ((why: string) => void) | null = null;
let nextId = 0;
const pending = new Map<number, Pending>();

function sortWorker(): Worker {
  if (worker !== null) return worker;
  const started = startWorker(import.meta.url, './sort-worker');
  const failed = (why: string): void => {
    if (worker !== started) return;
    worker = null;
    failWorker = null;
    void started.terminate();
    for (const p of pending.values()) p.reject(new SortWorkerFailed(why));
    pending.clear();
  };
  started.on('message', (reply: SortReply) => {
    if (worker !== started) return;
    const p = pending.get(reply.id);
    if (p === undefined) return;
    if ('progress' in reply) {
      p.onProgress?.(reply.progress);
      return;
    }
    pending.delete(reply.id);
    if (pending.size === 0) started.unref();
    if ('error' in reply) p.reject(new SortWorkerFailed(reply.error));
    else p.resolve(reply);
  });
  started.on('error', (err) => failed(err.message));
  started.on('exit', (code) => failed(`exit code ${code}`));
  started.unref();
  worker = started;
  failWorker = failed;
  return started;
}

/**
 * Sorts keys[0..n) ascending, idx alongside, stably, on the sort worker, in place: both must be views of
 * SharedArrayBuffers, not touched until the promise settles. Rejects with SortWorkerFailed when the worker
 * fails (the arrays may be left half sorted).
 */
export function sortOffThread(
  keys: Float64Array,
  idx: Uint32Array,
  n: number,
  onProgress?: (fraction: number) => void,
): Promise<void> {
  const keyBuffer = keys.buffer;
  const idxBuffer = idx.buffer;
  if (!(keyBuffer instanceof SharedArrayBuffer) || !(idxBuffer instanceof SharedArrayBuffer))
    throw new TypeError('sortOffThread: keys and idx must be views of SharedArrayBuffers');
  if (n > keys.length || n > idx.length) throw new RangeError(`sortOffThread: ${n} pairs do not fit`);
  const w = sortWorker();
  const id = nextId++;
  return new Promise((resolve, reject) => {
    if (pending.size === 0) w.ref(); // a sort under way keeps the process alive until it ends
    pending.set(id, { resolve: () => resolve(), reject, onProgress });
    const job: SortJob = {
      id,
      keys: keyBuffer,
      keysOffset: keys.byteOffset,
      idx: idxBuffer,
      idxOffset: idx.byteOffset,
      n,
    };
    w.postMessage(job);
  });
}

/**
 * Shared arrays for a sort or a merge of `capacity` pairs (record indices and keys), made on the sort worker
 * with every page written there, so that the thread that fills them takes none of their page faults; null
 * when the worker fails (the caller makes its own).
 */
export async function preparedArrays(
  capacity: number,
): Promise<{ order: Uint32Array; keys: Float64Array } | null> {
  const w = sortWorker();
  const id = nextId++;
  try {
    const reply = await new Promise<SortReply | undefined>((resolve, reject) => {
      if (pending.size === 0) w.ref();
      pending.set(id, { resolve, reject, onProgress: undefined });
      const job: PrepareJob = { id, prepare: { orderBytes: capacity * 4, keyBytes: capacity * 8 } };
      w.postMessage(job);
    });
    if (reply === undefined || !('order' in reply)) return null;
    return { order: new Uint32Array(reply.order), keys: new Float64Array(reply.keys) };
  } catch (err) {
    if (err instanceof SortWorkerFailed) return null;
    throw err;
  }
}

/** Stops the sort worker: its sorts fail with SortWorkerFailed now; the next sort starts a new one. */
export function stopSortWorker(): void {
  failWorker?.('stopped');
}
