/**
 * The service's spool: the pcapng file the current capture's bytes live in (spool-store.ts), its health
 * (spool-guard.ts: periodic fdatasync, size cap, write errors) and the spools earlier processes left behind.
 */
import { rm } from 'node:fs/promises';
import type { LeftoverSpoolInfo } from '../../common/contract.js';
import { ServiceError } from '../../common/contract.js';
import { type LeftoverSpool, cleanSpools, findSpool, listLeftoverSpools } from '../spool-recovery.js';
import { SpoolGuard, spoolErrorMessage } from '../spool-guard.js';
import { Spool, defaultSpoolDir } from '../spool-store.js';
import { errorMessage } from './errors.js';

export class SpoolOwner {
  /** The current capture's spool (null before the first capture and after close). */
  spool: Spool | null = null;
  /** Spool health: when it was last forced to disk, and the write error that stopped the capture. */
  readonly guard = new SpoolGuard();

  constructor(private readonly options: { spoolDir?: string; spoolMaxBytes?: number; version: string }) {}

  get dir(): string {
    return this.options.spoolDir ?? defaultSpoolDir();
  }

  /** Closes the current spool (its files are removed off the event loop) and starts a new one. */
  replace(snaplen: number): Spool {
    this.retire();
    this.spool = Spool.create(this.dir, `icmpcap ${this.options.version}`, snaplen);
    this.guard.reset(this.options.spoolMaxBytes);
    return this.spool;
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
    spool.close(true);
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

  /** The message for a write error of `spool`, the first time one happens (null after that). */
  failure(spool: Spool, err: unknown, kept: number): string | null {
    if (this.guard.failed) return null;
    const message = spoolErrorMessage(err, spool.path, kept);
    this.guard.failed = message;
    return message;
  }

  /** Spools of icmpcap processes that ended without cleaning up, newest first. */
  leftovers(): LeftoverSpoolInfo[] {
    return listLeftoverSpools(this.dir).map(({ id, startedAtMs, packets, bytes }) => ({
      id,
      startedAtMs,
      packets,
      bytes,
    }));
  }

  findLeftover(id: string): LeftoverSpool {
    try {
      return findSpool(this.dir, id);
    } catch (err) {
      throw new ServiceError('not-found', errorMessage(err));
    }
  }

  clean(id: string | undefined): string[] {
    try {
      return cleanSpools(this.dir, id);
    } catch (err) {
      throw new ServiceError('not-found', errorMessage(err));
    }
  }
}
