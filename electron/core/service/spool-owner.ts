/**
 * The service's spool: the pcapng file the current capture's bytes live in (spool-store.ts), its health
 * (spool-guard.ts: periodic fdatasync, size cap, write errors) and the spools earlier processes left behind.
 */
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

  /** Closes the current spool and starts a new one. */
  replace(snaplen: number): Spool {
    this.close();
    this.spool = Spool.create(this.dir, `icmpcap ${this.options.version}`, snaplen);
    this.guard.reset(this.options.spoolMaxBytes);
    return this.spool;
  }

  close(): void {
    this.spool?.close();
    this.spool = null;
  }

  /** Forces the spool to disk when a second has passed; the write error, if any, is thrown. */
  syncIfDue(now: number): void {
    if (this.spool && this.guard.syncDue(now)) this.spool.sync();
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
