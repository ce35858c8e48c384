/**
 * Long work (exports, file opens) runs as jobs: each has an id, reports progress a few times a second as
 * `job` events, can be cancelled, and ends in exactly one of done, cancelled or error.
 */
import { randomInt } from 'node:crypto';
import { type Job, ServiceError } from '../common/contract.js';

export type JobKind = Job['kind'];

export interface JobContext {
  signal: AbortSignal;
  progress(done: number, total?: number | null): void;
}

const PROGRESS_INTERVAL_MS = 200;
/** Finished jobs `hello` still tells of (a page that was away when one ended learns how it ended). */
export const FINISHED_KEPT = 32;

export class JobRunner {
  /**
   * Ids start at a random number, so a restarted service never reuses one a page still shows (the page would
   * take the new job's end for its old one's). Below 10^9 (the download route's ids) with room for 10^8 more.
   */
  private nextId = randomInt(1, 800_000_000);
  private readonly running = new Map<number, { job: Job; abort: AbortController }>();
  /** The last FINISHED_KEPT jobs to end, oldest first. */
  private readonly finished: Job[] = [];

  constructor(private readonly emit: (job: Job) => void) {}

  /** Starts `work`; resolves its id at once. `work` returns the summary shown when it is done. */
  start(kind: JobKind, path: string, work: (ctx: JobContext) => Promise<string>): number {
    const id = this.nextId++;
    const abort = new AbortController();
    const job: Job = { id, kind, state: 'running', done: 0, total: null, path };
    this.running.set(id, { job, abort });
    let lastEmit = 0;
    const ctx: JobContext = {
      signal: abort.signal,
      progress: (done, total) => {
        job.done = done;
        if (total !== undefined) job.total = total;
        const now = Date.now();
        if (now - lastEmit >= PROGRESS_INTERVAL_MS) {
          lastEmit = now;
          this.emit({ ...job });
        }
      },
    };
    this.emit({ ...job });
    void (async () => {
      try {
        job.message = await work(ctx);
        job.state = abort.signal.aborted ? 'cancelled' : 'done';
      } catch (err) {
        job.state = abort.signal.aborted ? 'cancelled' : 'error';
        job.message = abort.signal.aborted ? 'cancelled' : err instanceof Error ? err.message : String(err);
      } finally {
        this.running.delete(id);
        this.finished.push({ ...job });
        if (this.finished.length > FINISHED_KEPT) this.finished.shift();
        this.emit({ ...job });
      }
    })();
    return id;
  }

  cancel(id: number): Job {
    const entry = this.running.get(id);
    if (!entry) throw new ServiceError('not-found', `no running job ${id}: it has finished or never existed`);
    entry.abort.abort();
    return { ...entry.job, state: 'cancelled' };
  }

  /** Every running job and the last ones to finish, as their latest `job` events told (for `hello`). */
  list(): Job[] {
    return [
      ...this.finished.map((job) => ({ ...job })),
      ...[...this.running.values()].map(({ job }) => ({ ...job })),
    ];
  }

  /** Running jobs of a kind (at most one file open runs at a time). */
  busy(kind: JobKind): boolean {
    for (const { job } of this.running.values()) if (job.kind === kind) return true;
    return false;
  }

  cancelAll(): void {
    for (const { abort } of this.running.values()) abort.abort();
  }
}
