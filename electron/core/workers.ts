/**
 * Worker threads of the service (the insights' engines, the view's sorts): started from the built .js beside
 * the caller, or, when the service runs from its sources (tsx, vitest), from the .ts with tsx's loader, which a
 * worker does not inherit: the worker registers it (tsx's ESM API, as its package exports it) first.
 *
 *   const worker = startWorker(import.meta.url, './insights/worker', setup);
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { getPriority, setPriority } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/** Starts the worker module `relative` (no extension) to the module at `from` (its import.meta.url). */
export function startWorker(from: string, relative: string, workerData?: unknown): Worker {
  const fromSources = from.endsWith('.ts');
  const url = new URL(`${relative}${fromSources ? '.ts' : '.js'}`, from);
  if (!fromSources) return new Worker(url, { workerData });
  const pkg = createRequire(from).resolve('tsx/package.json');
  const manifest = JSON.parse(readFileSync(pkg, 'utf8')) as {
    exports: Record<string, { import: { default: string } }>;
  };
  const tsx = pathToFileURL(join(dirname(pkg), manifest.exports['./esm/api']!.import.default)).href;
  return new Worker(
    `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); })`,
    { eval: true, workerData },
  );
}

/** The nice value of the service's workers: below the thread that takes the capture in. */
export const WORKER_NICE = 10;

/**
 * Lowers the calling thread's scheduling priority to WORKER_NICE (Linux: a thread's nice value is its own, set
 * through its thread id; no privilege is needed to lower it). Called first thing in a worker: on a machine
 * with few cores the capture's thread comes first, and the worker takes the time it leaves. Returns the nice
 * value set, or null where the thread's id cannot be read.
 */
export function lowerThreadPriority(): number | null {
  let tid: number;
  try {
    tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
  } catch {
    return null;
  }
  if (!Number.isInteger(tid) || tid <= 0) return null;
  try {
    setPriority(tid, WORKER_NICE);
    return getPriority(tid);
  } catch {
    return null;
  }
}

/**
 * Writes a byte of each page of `buffer` (zero: a new buffer stays as it was), so that the thread calling this
 * takes the page faults of the buffer's first touch, not the thread that later fills it.
 */
export function touchPages(buffer: ArrayBufferLike): void {
  const b = new Uint8Array(buffer);
  for (let at = 0; at < b.length; at += 4096) b[at] = 0;
}
