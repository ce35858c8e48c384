/**
 * The view's radix sort on a thread of its own (sort-pool.ts starts it): the keys and record indices come
 * transferred, are sorted whole (sortByKeySteps run to the end, its progress posted about ten times a second),
 * and go back transferred. The thread that takes the capture in keeps only filling the keys.
 */
import { parentPort } from 'node:worker_threads';
import { sortByKeySteps } from './radix-sort.js';

export interface SortJob {
  id: number;
  keys: ArrayBuffer;
  idx: ArrayBuffer;
  n: number;
}

export type SortReply =
  | { id: number; progress: number }
  | { id: number; keys: ArrayBuffer; idx: ArrayBuffer }
  | { id: number; error: string };

const port = parentPort;
if (port === null) throw new Error('sort-worker.ts runs as a worker thread (see sort-pool.ts)');
const PROGRESS_MS = 100;

port.on('message', (job: SortJob) => {
  try {
    // Started: the caller hears that its keys are here (and the worker is sorting them).
    port.postMessage({ id: job.id, progress: 0 } satisfies SortReply);
    let last = performance.now();
    for (const fraction of sortByKeySteps(new Float64Array(job.keys), new Uint32Array(job.idx), job.n)) {
      const now = performance.now();
      if (now - last < PROGRESS_MS) continue;
      last = now;
      port.postMessage({ id: job.id, progress: fraction } satisfies SortReply);
    }
    port.postMessage({ id: job.id, keys: job.keys, idx: job.idx } satisfies SortReply, [job.keys, job.idx]);
  } catch (err) {
    port.postMessage({ id: job.id, error: String(err) } satisfies SortReply);
  }
});
