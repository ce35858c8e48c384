/**
 * The service's spool: the pcapng file the current capture's bytes live in (spool-store.ts), its health
 * (spool-guard.ts: periodic fdatasync, size cap, write errors) and the spools earlier processes left behind.
 */
import { rm } from 'node:fs/promises';
import type { LeftoverSpoolInfo } from '../../common/contract.js';
import { ServiceError } from '../../common/contract.js';
import {
  type SpoolGroup,
  cleanSpoolsAsync,
  findSpoolAsync,
  listLeftoverSpoolsAsync,
} from '../spool-recovery.js';
import { SpoolGuard, spoolErrorMessage } from '../spool-guard.js';
import { Spool, defaultSpoolDir } from '../spool-store.js';
import { errorMessage } from './errors.js';

/**
 * The most bytes the spool's write queue may hold (a second of a 500 k records/s flood at about 130 bytes a
 * record): the spool is written off the event loop, and a disk that falls this far behind is not keeping up.
 */
export const SPOOL_BACKLOG_MAX = 64 * 2 ** 20;

/** Waits, when the spool's write queue is past half its bound, for the disk to take it (file open). */
export async function spoolRoom(spool: Spool | null): Promise<void> {
  if (spool && spool.backlog > SPOOL_BACKLOG_MAX / 2) await spool.drained();
}

export class SpoolOwner {
  /** The current capture's spool (null before the first capture and after close). */
  spool: Spool | null = null;
  /** Spool health: when it was last forced to disk, and the write error that stopped the capture. */
  readonly guard = new SpoolGuard();
  /** Records of the current capture dropped because the disk could not keep up (see admit). */
  dropped = 0;
  /** Hears a write error of the current spool (the writes end in the thread pool, after append returned). */
  onWriteError: ((spool: Spool, err: Error) => void) | null = null;

  constructor(
    private readonly options: {
      spoolDir?: string;
      spoolMaxBytes?: number;
      spoolBacklogMax?: number;
      version: string;
    },
  ) {}

  get dir(): string {
    return this.options.spoolDir ?? defaultSpoolDir();
  }

  /** Closes the current spool (its files are removed off the event loop) and starts a new one. */
  replace(snaplen: number): Spool {
    this.retire();
    const spool = Spool.create(this.dir, `icmpcap ${this.options.version}`, snaplen);
    spool.onWriteError = (err) => {
      if (spool === this.spool) this.onWriteError?.(spool, err);
    };
    this.spool = spool;
    this.guard.reset(this.options.spoolMaxBytes);
    this.dropped = 0;
    return spool;
  }

  /** Closes the current spool and removes its files before returning (the service is going away). */
  close(): void {
    this.spool?.close();
    this.spool = null;
  }

  /**
   * Closes the current spool and removes its files in the thread pool: unlinking the gigabytes of a large
   * capture takes the file system hundreds of ms, which the event loop (a file being opened, a capture
   * starting) must not wait for. Until then they are this live process's files, never listed as leftovers.
   */
  retire(): void {
    const spool = this.spool;
    this.spool = null;
    if (!spool) return;
    const paths = spool.paths;
    spool.abandon(); // its queued writes would go to files being deleted
    for (const path of paths) void rm(path, { force: true }).catch(() => undefined);
  }

  /**
   * Forces the spool to disk when a second has passed, off the event loop (a fdatasync can take hundreds of
   * ms); `failed` hears the write error, if any.
   */
  syncIfDue(now: number, failed: (spool: Spool, err: Error) => void): void {
    const spool = this.spool;
    if (!spool || !this.guard.syncDue(now)) return;
    spool.syncAsync((err) => {
      if (err && spool === this.spool) failed(spool, err);
    });
  }

  /**
   * Whether a live batch of `bytes` may join the write queue. A disk that cannot keep up (the queue is at
   * its bound) costs the batch, counted with the ring's drops as dumpcap counts what it could not keep:
   * the capture goes on, never blocks the loop, never grows without bound; a file being opened waits
   * instead (spoolRoom). Returns false when the batch is dropped.
   */
  admit(spool: Spool, bytes: number, records: number): boolean {
    const max = this.options.spoolBacklogMax ?? SPOOL_BACKLOG_MAX;
    if (spool.backlog === 0 || spool.backlog + bytes <= max) return true;
    this.dropped += records;
    return false;
  }

  /** The message for a write error of `spool`, the first time one happens (null after that). */
  failure(spool: Spool, err: unknown, kept: number): string | null {
    if (this.guard.failed) return null;
    const message = spoolErrorMessage(err, spool.path, kept);
    this.guard.failed = message;
    return message;
  }

  /**
   * Spools of icmpcap processes that ended without cleaning up, newest first. Their segments are read off the
   * event loop (counting the packets of a leftover of gigabytes took a second and more of it).
   */
  async leftovers(): Promise<LeftoverSpoolInfo[]> {
    const spools = await listLeftoverSpoolsAsync(this.dir);
    return spools.map(({ id, startedAtMs, packets, bytes }) => ({ id, startedAtMs, packets, bytes }));
  }

  async findLeftover(id: string): Promise<SpoolGroup> {
    try {
      return await findSpoolAsync(this.dir, id);
    } catch (err) {
      throw new ServiceError('not-found', errorMessage(err));
    }
  }

  async clean(id: string | undefined): Promise<string[]> {
    try {
      return await cleanSpoolsAsync(this.dir, id);
    } catch (err) {
      throw new ServiceError('not-found', errorMessage(err));
    }
  }
}
