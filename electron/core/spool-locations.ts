/**
 * Where each record of a store chunk lies in the spool, in 4 bytes per record instead of a Float64's 8.
 *
 * A location (spool-store.ts `spoolLocation`: segment * 2^36 + byte offset, or -1 for a record never
 * spooled) is kept as the location of its run's first record plus a Uint32 delta counted in 4-byte units:
 * pcapng blocks start at multiples of 4, so a delta reaches 16 GiB past its run's start, while a whole chunk
 * of records (65536 Enhanced Packet Blocks of at most about 65.6 KB) spans at most 4.3 GB. A chunk normally
 * holds one run (the spool cuts segments at chunk boundaries); whenever a location cannot be written as a
 * delta of the current run (another segment, an offset that goes back, a record with no spool location),
 * a new run starts there. So every location reads back exactly, whatever the spool does; runs only cost
 * memory when the spool cuts inside a chunk.
 *
 * Locations are set in record order (`set(i)` for i = 0, 1, 2, ... as the chunk fills), as ingest does.
 */

/** The largest delta (in 4-byte units) a Uint32 holds. */
const MAX_DELTA = 0xffffffff;

export class SpoolLocations {
  /** (location - location of the run's first record) / 4. */
  private readonly delta: Uint32Array;
  /** Location of the first run's first record (NaN until one is set). */
  private base = NaN;
  /** Further runs, when a chunk holds more than one: their first record's slot and location. */
  private runFrom: number[] | null = null;
  private runBase: number[] | null = null;
  /** The base deltas of the record being set are counted from (the last run's). */
  private lastBase = NaN;

  /** Room for `size` records, or the (zeroed) deltas array to keep them in. */
  constructor(size: number | Uint32Array) {
    this.delta = typeof size === 'number' ? new Uint32Array(size) : size;
  }

  /** The location of record `i` (as set; -1 when it was never spooled). */
  at(i: number): number {
    if (this.runFrom === null) return this.base + this.delta[i]! * 4;
    return this.runBaseOf(i) + this.delta[i]! * 4;
  }

  /** Sets record `i`'s location; `i` follows the previous call's (records are set as the chunk fills). */
  set(i: number, location: number): void {
    const d = (location - this.lastBase) / 4;
    // NaN (no run yet) and fractions fail the first test; a location before the run's start the second.
    if (d === Math.floor(d) && d >= 0 && d <= MAX_DELTA) {
      this.delta[i] = d;
      return;
    }
    this.delta[i] = 0;
    this.lastBase = location;
    if (Number.isNaN(this.base)) {
      this.base = location;
    } else if (this.runFrom === null) {
      this.runFrom = [i];
      this.runBase = [location];
    } else {
      this.runFrom.push(i);
      this.runBase!.push(location);
    }
  }

  /** Forgets every location, as a new one (a recycled chunk's). */
  reset(): void {
    this.delta.fill(0);
    this.base = this.lastBase = NaN;
    this.runFrom = this.runBase = null;
  }

  /** Runs after the first (0 when the chunk's records all lie in one stretch of one segment). */
  get extraRuns(): number {
    return this.runFrom?.length ?? 0;
  }

  /** Bytes held: the deltas and, when there are further runs, two numbers each. */
  get byteLength(): number {
    return this.delta.byteLength + this.extraRuns * 16;
  }

  private runBaseOf(i: number): number {
    const from = this.runFrom!;
    // The last run starting at or before i; the first run (base) when none does.
    let lo = 0;
    let hi = from.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (from[mid]! <= i) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? this.base : this.runBase![lo - 1]!;
  }
}
