/**
 * The view's radix sort on a thread of its own (sort-pool.ts starts it): the keys and record indices, in
 * shared memory, are sorted in place, whole (sortByKeySteps run to the end, its progress posted about ten times
 * a second). The thread that takes the capture in keeps only filling the keys. It also makes the shared arrays
 * of a sort or a merge ahead, their pages written (PrepareJob): faulted in on the thread that fills them, 135 MB
 * at 10 M records took that thread 33 k page faults.
 */
import { parentPort } from 'node:worker_threads';
import { sortByKeySteps } from './radix-sort.js';
import { hugePages } from './huge-pages.js';
import { lowerThreadPriority, touchPages } from './workers.js';

/** keys[0..n) (Float64) and idx[0..n) (Uint32) at the given byte offsets of shared buffers. */
export interface SortJob {
  id: number;
  keys: SharedArrayBuffer;
  keysOffset: number;
  idx: SharedArrayBuffer;
  idxOffset: number;
  n: number;
}

/** Shared buffers of these sizes, each page written here (prepared for a sort or a merge: sort-pool.ts). */
export interface PrepareJob {
  id: number;
  prepare: { orderBytes: number; keyBytes: number };
}

export type SortReply =
  | { id: number; progress: number }
  | { id: number; done: true }
  | { id: number; error: string }
  | { id: number; order: SharedArrayBuffer; keys: SharedArrayBuffer };

const port = parentPort;
if (port === null) throw new Error('sort-worker.ts runs as a worker thread (see sort-pool.ts)');
const PROGRESS_MS = 100;
// The capture's thread comes first (a sort that takes longer loses nothing).
lowerThreadPriority();

/** A shared buffer of `bytes` with a byte of each page written: its page faults are taken on this thread. */
function preparedBuffer(bytes: number): SharedArrayBuffer {
  const buffer = new SharedArrayBuffer(bytes);
  hugePages(new Uint8Array(buffer));
  touchPages(buffer);
  return buffer;
}

port.on('message', (job: SortJob | PrepareJob) => {
  try {
    if ('prepare' in job) {
      const { orderBytes, keyBytes } = job.prepare;
      const reply: SortReply = {
        id: job.id,
        order: preparedBuffer(orderBytes),
        keys: preparedBuffer(keyBytes),
      };
      port.postMessage(reply);
      return;
    }
    // Started: the caller hears that its keys are here (and the worker is sorting them).
    port.postMessage({ id: job.id, progress: 0 } satisfies SortReply);
    let last = performance.now();
    const keys = new Float64Array(job.keys, job.keysOffset, job.n);
    const idx = new Uint32Array(job.idx, job.idxOffset, job.n);
    for (const fraction of sortByKeySteps(keys, idx, job.n)) {
      const now = performance.now();
      if (now - last < PROGRESS_MS) continue;
      last = now;
      port.postMessage({ id: job.id, progress: fraction } satisfies SortReply);
    }
    port.postMessage({ id: job.id, done: true } satisfies SortReply);
  } catch (err) {
    port.postMessage({ id: job.id, error: String(err) } satisfies SortReply);
  }
});
