/**
 * busyControl's worker (event-loop-bench.ts): at the service's workers' nice value, it copies 256 MiB round and
 * round for `workerData` milliseconds, keeping the other core busy as a sort worker does.
 */
import { workerData } from 'node:worker_threads';
import { lowerThreadPriority } from '../workers.js';

lowerThreadPriority();
const a = new Float64Array(16 << 20);
const b = new Float64Array(16 << 20);
const end = Date.now() + (workerData as number);
while (Date.now() < end) {
  b.set(a);
  a.set(b);
}
