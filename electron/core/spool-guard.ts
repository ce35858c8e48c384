/**
 * The capture service's watch over its spool: forces it to disk about once a second (so a crash of the
 * machine loses at most the last second), keeps it under its size cap, and turns a write error (full disk,
 * I/O error, quota) into a message that says what happened and what is kept.
 */
import type { Spool } from './spool-store.js';

/** One second between fdatasync calls: what a crash may lose at most. */
export const SPOOL_SYNC_MS = 1000;
export const DEFAULT_SPOOL_MAX_BYTES = 16 * 2 ** 30;

/** `ICMPCAP_SPOOL_MAX`: bytes, or with a K, M, G or T suffix (powers of 1024). */
export function spoolMaxFromEnv(value = process.env.ICMPCAP_SPOOL_MAX): number | undefined {
  if (!value) return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(value.trim());
  if (!m) return undefined;
  const scale = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2]!.toLowerCase()] ?? 1;
  return Math.floor(Number(m[1]) * scale);
}

export class SpoolGuard {
  private lastSync = 0;
  private maxBytes = DEFAULT_SPOOL_MAX_BYTES;
  /** The message of the write error that stopped the capture, or null. */
  failed: string | null = null;

  reset(maxBytes?: number): void {
    this.lastSync = Date.now();
    this.failed = null;
    this.maxBytes = maxBytes ?? spoolMaxFromEnv() ?? DEFAULT_SPOOL_MAX_BYTES;
  }

  syncDue(now: number): boolean {
    if (this.failed || now - this.lastSync < SPOOL_SYNC_MS) return false;
    this.lastSync = now;
    return true;
  }

  /** A stop message when the spool has passed its cap, else null. */
  overCap(spool: Spool): string | null {
    if (spool.totalBytes <= this.maxBytes) return null;
    this.failed = 'over the cap';
    return (
      `the capture's spool reached its cap of ${gib(this.maxBytes)}: capturing stopped, every record so far is ` +
      'kept and can be exported. Set a ring-buffer limit (--ring-records, --ring-seconds) to capture for ' +
      'longer, or raise the cap with ICMPCAP_SPOOL_MAX (e.g. 64G).'
    );
  }
}

function gib(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** What a spool write error means for the user. */
export function spoolErrorMessage(err: unknown, path: string, kept: number): string {
  const code = (err as NodeJS.ErrnoException).code;
  const what =
    code === 'ENOSPC'
      ? 'the disk holding the spool is full'
      : code === 'EDQUOT'
        ? 'the disk quota for the spool is used up'
        : code === 'EIO'
          ? 'the disk holding the spool reported an I/O error'
          : `writing the spool failed (${(err as Error).message})`;
  return (
    `Capture stopped: ${what} (${code ?? 'error'} on ${path}). The ${kept.toLocaleString('en')} records ` +
    'captured before are kept and can be exported; free some space (or point XDG_CACHE_HOME at another ' +
    'disk) and start again.'
  );
}
