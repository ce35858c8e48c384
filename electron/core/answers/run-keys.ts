/**
 * Echo runs found by numbers, for passive traceroute's fast path (traceroute.ts): the key is family << 16 |
 * identifier and the eight 32-bit words of the source and destination; the value a run.
 *
 * Open addressing with linear probing over one Int32Array, KEY_INTS per slot: the run's number + 1 (0: an
 * empty slot), the key's hash, family << 16 | identifier, then the eight words. A record's lookup reads one or
 * two cache lines of it, where a Map and the run's own words were three or four misses apart. Deletion shifts
 * the following entries back (no tombstones). At most half the slots are used; the table doubles past that.
 */
const KEY_INTS = 11;
const FIRST_KEY_SLOTS = 1024;

export class RunKeys<T> {
  private slots = new Int32Array(FIRST_KEY_SLOTS * KEY_INTS);
  private mask = FIRST_KEY_SLOTS - 1;
  private count = 0;
  /** Runs by number; freed numbers are reused. */
  private readonly runs: (T | null)[] = [];
  private readonly free: number[] = [];

  get size(): number {
    return this.count;
  }

  /** The run with this key, or null. */
  find(hash: number, fid: number, w: Int32Array): T | null {
    const t = this.slots;
    const mask = this.mask;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const b = i * KEY_INTS;
      const e = t[b]!;
      if (e === 0) return null;
      if (
        t[b + 1] === hash &&
        t[b + 2] === fid &&
        t[b + 3] === w[0] &&
        t[b + 4] === w[1] &&
        t[b + 5] === w[2] &&
        t[b + 6] === w[3] &&
        t[b + 7] === w[4] &&
        t[b + 8] === w[5] &&
        t[b + 9] === w[6] &&
        t[b + 10] === w[7]
      )
        return this.runs[e - 1]!;
    }
  }

  /** Adds `run` under its key (not there yet); `hash` is the key's, at most 30 bits. */
  insert(run: T, hash: number, fid: number, w: ArrayLike<number>): void {
    if (2 * (this.count + 1) > this.mask + 1) this.grow();
    let no = this.free.pop();
    if (no === undefined) no = this.runs.push(run) - 1;
    else this.runs[no] = run;
    this.place(no + 1, hash, fid, w);
    this.count++;
  }

  /** Removes `run` (inserted with `hash`). */
  remove(run: T, hash: number): void {
    const t = this.slots;
    const mask = this.mask;
    let i = hash & mask;
    for (; ; i = (i + 1) & mask) {
      const e = t[i * KEY_INTS]!;
      if (e === 0) return;
      if (this.runs[e - 1] === run) break;
    }
    this.runs[t[i * KEY_INTS]! - 1] = null;
    this.free.push(t[i * KEY_INTS]! - 1);
    this.count--;
    // Backward shift: move up each following entry whose home slot is not between the hole and itself.
    for (let j = (i + 1) & mask; ; j = (j + 1) & mask) {
      const b = j * KEY_INTS;
      if (t[b] === 0) break;
      const home = t[b + 1]! & mask;
      const stays = i <= j ? i < home && home <= j : i < home || home <= j;
      if (stays) continue;
      t.copyWithin(i * KEY_INTS, b, b + KEY_INTS);
      i = j;
    }
    t.fill(0, i * KEY_INTS, i * KEY_INTS + KEY_INTS);
  }

  private place(entry: number, hash: number, fid: number, w: ArrayLike<number>): void {
    const t = this.slots;
    let i = hash & this.mask;
    while (t[i * KEY_INTS] !== 0) i = (i + 1) & this.mask;
    const b = i * KEY_INTS;
    t[b] = entry;
    t[b + 1] = hash;
    t[b + 2] = fid;
    for (let k = 0; k < 8; k++) t[b + 3 + k] = w[k]!;
  }

  private grow(): void {
    const old = this.slots;
    this.slots = new Int32Array(old.length * 2);
    this.mask = this.mask * 2 + 1;
    for (let b = 0; b < old.length; b += KEY_INTS)
      if (old[b] !== 0) this.place(old[b]!, old[b + 1]!, old[b + 2]!, old.subarray(b + 3, b + 11));
  }
}
