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
  /** Wrong tokens an address may send at once before it has to wait. */
  burst?: number;
  /** One more wrong token is allowed every this many ms (so guessing runs at 1/s at most). */
  refillMs?: number;
  /** Addresses remembered at most (the oldest are forgotten first). */
  maxAddresses?: number;
}

/**
 * A token bucket per address: each wrong token takes one; an empty bucket means that address is not
 * even checked until it refills. A guesser gets one try a second; a typo costs nothing lasting.
 */
export class BadTokenLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly burst: number;
  private readonly refillMs: number;
  private readonly maxAddresses: number;

  constructor(opts: RateLimitOptions = {}) {
    this.burst = opts.burst ?? 5;
    this.refillMs = opts.refillMs ?? 1000;
    this.maxAddresses = opts.maxAddresses ?? 4096;
  }

  private level(address: string, now: number): { tokens: number; at: number } {
    const b = this.buckets.get(address) ?? { tokens: this.burst, at: now };
    const refill = Math.floor((now - b.at) / this.refillMs);
    if (refill > 0) {
      b.tokens = Math.min(this.burst, b.tokens + refill);
      b.at += refill * this.refillMs;
    }
    if (b.tokens === this.burst) b.at = now;
    return b;
  }

  /** Ms this address must still wait before a token is even checked (0: go ahead). */
  waitMs(address: string, now = Date.now()): number {
    if (!this.buckets.has(address)) return 0;
    const b = this.level(address, now);
    return b.tokens > 0 ? 0 : Math.max(1, b.at + this.refillMs - now);
  }

  failed(address: string, now = Date.now()): void {
    const b = this.level(address, now);
    b.tokens = Math.max(0, b.tokens - 1);
    this.buckets.delete(address);
    this.buckets.set(address, b);
    if (this.buckets.size > this.maxAddresses) {
      const oldest = this.buckets.keys().next().value;
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
  }

  succeeded(address: string, now = Date.now()): void {
    const b = this.buckets.get(address);
    if (b && this.level(address, now).tokens === this.burst) this.buckets.delete(address);
  }
}
