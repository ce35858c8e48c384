/**
 * The session token: compared in constant time (hashes of equal length, so not even the length leaks),
 * and guessing is slowed down: after a few wrong tokens from one address, that address waits.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

export function tokenMatches(expected: string, given: string | null | undefined): boolean {
  if (typeof given !== 'string' || given.length === 0 || given.length > 512) return false;
  return timingSafeEqual(digest(expected), digest(given));
}

/** The token from `Authorization: Bearer <token>`. */
export function bearerToken(header: string | undefined): string | null {
  const m = header === undefined ? null : /^Bearer +([A-Za-z0-9._~+/=-]{1,512})\s*$/.exec(header);
  return m ? m[1]! : null;
}

export interface RateLimitOptions {
  /** Wrong tokens allowed per address before it has to wait. */
  burst?: number;
  /** How long an address waits once over the burst, in ms; doubles with each further failure. */
  penaltyMs?: number;
  /** Addresses remembered at most (the oldest are forgotten first). */
  maxAddresses?: number;
}

export class BadTokenLimiter {
  private readonly failures = new Map<string, { count: number; until: number }>();
  private readonly burst: number;
  private readonly penaltyMs: number;
  private readonly maxAddresses: number;

  constructor(opts: RateLimitOptions = {}) {
    this.burst = opts.burst ?? 5;
    this.penaltyMs = opts.penaltyMs ?? 1000;
    this.maxAddresses = opts.maxAddresses ?? 4096;
  }

  /** Ms this address must still wait before a token is even checked (0: go ahead). */
  waitMs(address: string, now = Date.now()): number {
    const entry = this.failures.get(address);
    return entry ? Math.max(0, entry.until - now) : 0;
  }

  failed(address: string, now = Date.now()): void {
    const entry = this.failures.get(address) ?? { count: 0, until: 0 };
    entry.count++;
    if (entry.count > this.burst) {
      const over = Math.min(entry.count - this.burst - 1, 10);
      entry.until = now + this.penaltyMs * 2 ** over;
    }
    this.failures.delete(address);
    this.failures.set(address, entry);
    if (this.failures.size > this.maxAddresses) {
      const oldest = this.failures.keys().next().value;
      if (oldest !== undefined) this.failures.delete(oldest);
    }
  }

  succeeded(address: string): void {
    this.failures.delete(address);
  }
}
