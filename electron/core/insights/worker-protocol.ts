/**
 * The messages between the insights (index.ts, on the service's thread) and their worker (worker.ts). Both ends
 * are this program: the contract's requests were validated before they are forwarded here.
 */
import type { NeighboursSnapshot, PathInfo, ProblemInfo } from '../../common/insights.js';
import type { HealthSettings } from './engines.js';

/** What the worker is started with (workerData). */
export interface WorkerSetup {
  pushMs: number;
  learnSeconds: number;
}

/** The requests the worker answers (the contract's, with their parameters as validated). */
export type EngineRequest =
  | { method: 'problems.list' }
  | { method: 'paths.list' }
  | { method: 'neighbours.get' }
  | { method: 'neighbours.configure'; params: HealthSettings };

export type ToWorker =
  /** Records as the service took them in, frames from `firstNo`: the first `length` bytes of `batch` (copied,
   * transferred; handed back when done). `names`: interface names not sent before (or renamed). `file`: the
   * capture is read from a file. */
  | {
      t: 'batch';
      batch: ArrayBuffer;
      length: number;
      firstNo: number;
      names: [number, string][];
      file: boolean;
    }
  /** Clear: every engine starts over. */
  | { t: 'reset' }
  | { t: 'request'; id: number; request: EngineRequest }
  /** Answered once every message before it is done. */
  | { t: 'sync'; id: number };

export type FromWorker =
  /** A batch is done (its bytes, to count what waits), and its buffer handed back. */
  | { t: 'done'; bytes: number; buffer?: ArrayBuffer }
  | { t: 'reply'; id: number; value: unknown }
  | { t: 'failed'; id: number; message: string }
  /** The lists that changed since the last push. */
  | { t: 'push'; problems?: ProblemInfo[]; paths?: PathInfo[]; neighbours?: NeighboursSnapshot }
  | { t: 'log'; line: string };
