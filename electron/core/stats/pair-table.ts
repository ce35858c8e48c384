/**
 * A hash map from a pair of unsigned 32-bit integers to a non-negative int32, in typed arrays (open
 * addressing, linear probing, backward-shift deletion). A JS Map keyed by `a * 2^32 + b` boxes every
 * key as a heap number; this does not allocate per operation, which matters at millions of lookups a
 * second.
 */
export class PairTable {
  private keysA: Uint32Array;
  private keysB: Uint32Array;
  /** -1: empty slot. */
  private values: Int32Array;
  private mask: number;
  private count = 0;

  constructor(initialCapacity = 1024) {
    let cap = 16;
    while (cap < initialCapacity * 2) cap *= 2;
    this.keysA = new Uint32Array(cap);
    this.keysB = new Uint32Array(cap);
    this.values = new Int32Array(cap).fill(-1);
    this.mask = cap - 1;
  }

  get size(): number {
    return this.count;
  }

  get byteLength(): number {
    return this.values.length * 12;
  }

  private slotOf(a: number, b: number): number {
    let h = Math.imul(a ^ Math.imul(b, 0x9e3779b1), 0x85ebca6b);
    h ^= h >>> 15;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 13;
    return h & this.mask;
  }

  /** The value for (a, b), or -1. */
  get(a: number, b: number): number {
    const values = this.values;
    const mask = this.mask;
    for (let s = this.slotOf(a, b); ; s = (s + 1) & mask) {
      const v = values[s]!;
      if (v < 0) return -1;
      if (this.keysA[s] === a && this.keysB[s] === b) return v;
    }
  }

  set(a: number, b: number, value: number): void {
    if ((this.count + 1) * 2 > this.values.length) this.resize(this.values.length * 2);
    const values = this.values;
    const mask = this.mask;
    for (let s = this.slotOf(a, b); ; s = (s + 1) & mask) {
      const v = values[s]!;
      if (v < 0) {
        this.keysA[s] = a;
        this.keysB[s] = b;
        values[s] = value;
        this.count++;
        return;
      }
      if (this.keysA[s] === a && this.keysB[s] === b) {
        values[s] = value;
        return;
      }
    }
  }

  delete(a: number, b: number): boolean {
    const values = this.values;
    const mask = this.mask;
    let s = this.slotOf(a, b);
    for (; ; s = (s + 1) & mask) {
      if (values[s]! < 0) return false;
      if (this.keysA[s] === a && this.keysB[s] === b) break;
    }
    // Backward-shift: move later entries of the probe run into the hole when their home allows it.
    let hole = s;
    for (let j = (s + 1) & mask; values[j]! >= 0; j = (j + 1) & mask) {
      const home = this.slotOf(this.keysA[j]!, this.keysB[j]!);
      // Can the entry at j move to hole? Only if its home is not in (hole, j] cyclically.
      const between = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (between) continue;
      this.keysA[hole] = this.keysA[j]!;
      this.keysB[hole] = this.keysB[j]!;
      values[hole] = values[j]!;
      hole = j;
    }
    values[hole] = -1;
    this.count--;
    return true;
  }

  private resize(capacity: number): void {
    const { keysA, keysB, values } = this;
    this.keysA = new Uint32Array(capacity);
    this.keysB = new Uint32Array(capacity);
    this.values = new Int32Array(capacity).fill(-1);
    this.mask = capacity - 1;
    this.count = 0;
    for (let s = 0; s < values.length; s++) if (values[s]! >= 0) this.set(keysA[s]!, keysB[s]!, values[s]!);
  }

  clear(): void {
    this.values.fill(-1);
    this.count = 0;
  }
}
