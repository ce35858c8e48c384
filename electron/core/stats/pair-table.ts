/**
 * A hash map from a pair of unsigned 32-bit integers to a non-negative int32, in typed arrays (open
 * addressing, linear probing, backward-shift deletion). A JS Map keyed by `a * 2^32 + b` boxes every
 * key as a heap number; this does not allocate per operation, which matters at millions of lookups a
 * second.
 *
 * It grows without a long step: a full table makes one twice its size and moves its entries over a few
 * clusters per `set` (an address table under a spoofed-source flood rehashed 2 M entries in one turn, 360 ms).
 * Meanwhile lookups try the new table, then the old. A cluster (a run of full slots between empty ones) moves
 * whole, so every entry left in the old table still has its probe run intact. Slots hold value + 1 (0: empty),
 * so new arrays are not written until used.
 */
export class PairTable {
  private keysA: Uint32Array;
  private keysB: Uint32Array;
  /** value + 1; 0: an empty slot. */
  private values: Int32Array;
  private mask: number;
  /** Entries in both tables. */
  private count = 0;
  /** The table being moved into this one (null when none), and where its move has got to. */
  private oldA: Uint32Array | null = null;
  private oldB: Uint32Array | null = null;
  private oldValues: Int32Array | null = null;
  private oldMask = 0;
  /** The next old slot to move, and the slot after the last: the move scans from an empty slot, round. */
  private moveAt = 0;
  private moveEnd = 0;

  constructor(initialCapacity = 1024) {
    let cap = 16;
    while (cap < initialCapacity * 2) cap *= 2;
    this.keysA = new Uint32Array(cap);
    this.keysB = new Uint32Array(cap);
    this.values = new Int32Array(cap);
    this.mask = cap - 1;
  }

  get size(): number {
    return this.count;
  }

  get byteLength(): number {
    return (this.values.length + (this.oldValues?.length ?? 0)) * 12;
  }

  /** Whether entries are still being moved from a smaller table (see the class comment). */
  get growing(): boolean {
    return this.oldValues !== null;
  }

  private static slot(a: number, b: number, mask: number): number {
    let h = Math.imul(a ^ Math.imul(b, 0x9e3779b1), 0x85ebca6b);
    h ^= h >>> 15;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 13;
    return h & mask;
  }

  /** The value for (a, b), or -1. */
  get(a: number, b: number): number {
    const values = this.values;
    const mask = this.mask;
    for (let s = PairTable.slot(a, b, mask); ; s = (s + 1) & mask) {
      const v = values[s]!;
      if (v === 0) break;
      if (this.keysA[s] === a && this.keysB[s] === b) return v - 1;
    }
    const old = this.oldValues;
    if (old === null) return -1;
    const s = PairTable.find(this.oldA!, this.oldB!, old, this.oldMask, a, b);
    return s < 0 ? -1 : old[s]! - 1;
  }

  set(a: number, b: number, value: number): void {
    if (this.oldValues !== null) this.move(64);
    // Full: a new key starts the move into a larger table (an update of a key it holds needs no room).
    if ((this.count + 1) * 2 > this.values.length && this.get(a, b) < 0) {
      if (this.oldValues !== null) this.move(Infinity);
      this.grow();
    }
    const old = this.oldValues;
    if (old !== null) {
      // Still in the old table: updated there (it moves with its cluster).
      const s = PairTable.find(this.oldA!, this.oldB!, old, this.oldMask, a, b);
      if (s >= 0) {
        old[s] = value + 1;
        return;
      }
    }
    if (PairTable.put(this.keysA, this.keysB, this.values, this.mask, a, b, value + 1)) this.count++;
  }

  delete(a: number, b: number): boolean {
    if (PairTable.remove(this.keysA, this.keysB, this.values, this.mask, a, b)) {
      this.count--;
      return true;
    }
    if (
      this.oldValues !== null &&
      PairTable.remove(this.oldA!, this.oldB!, this.oldValues, this.oldMask, a, b)
    ) {
      this.count--;
      return true;
    }
    return false;
  }

  clear(): void {
    this.values.fill(0);
    this.oldA = this.oldB = this.oldValues = null;
    this.count = 0;
  }

  /** Starts moving into a table twice the size (filled by `move`, a few clusters per set). */
  private grow(): void {
    const values = this.values;
    this.oldA = this.keysA;
    this.oldB = this.keysB;
    this.oldValues = values;
    this.oldMask = this.mask;
    const capacity = values.length * 2;
    this.keysA = new Uint32Array(capacity);
    this.keysB = new Uint32Array(capacity);
    this.values = new Int32Array(capacity);
    this.mask = capacity - 1;
    // The move starts after an empty slot (at most half the slots are full), so no cluster is cut.
    let e = 0;
    while (values[e] !== 0) e++;
    this.moveAt = e + 1;
    this.moveEnd = e + 1 + values.length;
  }

  /** Moves whole clusters of the old table until at least `slots` slots were scanned (or all were). */
  private move(slots: number): void {
    const oldA = this.oldA!;
    const oldB = this.oldB!;
    const old = this.oldValues!;
    const oldMask = this.oldMask;
    let at = this.moveAt;
    const stop = Math.min(this.moveEnd, at + slots);
    while (at < this.moveEnd) {
      const s = at & oldMask;
      const v = old[s]!;
      if (v === 0) {
        // Between clusters: a step may end here.
        at++;
        if (at >= stop) break;
        continue;
      }
      PairTable.put(this.keysA, this.keysB, this.values, this.mask, oldA[s]!, oldB[s]!, v);
      old[s] = 0;
      at++;
    }
    this.moveAt = at;
    if (at >= this.moveEnd) this.oldA = this.oldB = this.oldValues = null;
  }

  /** The slot of (a, b) in the given arrays, or -1. */
  private static find(
    keysA: Uint32Array,
    keysB: Uint32Array,
    values: Int32Array,
    mask: number,
    a: number,
    b: number,
  ): number {
    for (let s = PairTable.slot(a, b, mask); ; s = (s + 1) & mask) {
      if (values[s] === 0) return -1;
      if (keysA[s] === a && keysB[s] === b) return s;
    }
  }

  /** Puts (a, b) -> stored (value + 1) in the given arrays; true when it was not there before. */
  private static put(
    keysA: Uint32Array,
    keysB: Uint32Array,
    values: Int32Array,
    mask: number,
    a: number,
    b: number,
    stored: number,
  ): boolean {
    for (let s = PairTable.slot(a, b, mask); ; s = (s + 1) & mask) {
      const v = values[s]!;
      if (v === 0) {
        keysA[s] = a;
        keysB[s] = b;
        values[s] = stored;
        return true;
      }
      if (keysA[s] === a && keysB[s] === b) {
        values[s] = stored;
        return false;
      }
    }
  }

  /** Removes (a, b) from the given arrays (backward shift); false when it was not there. */
  private static remove(
    keysA: Uint32Array,
    keysB: Uint32Array,
    values: Int32Array,
    mask: number,
    a: number,
    b: number,
  ): boolean {
    const s = PairTable.find(keysA, keysB, values, mask, a, b);
    if (s < 0) return false;
    // Backward-shift: move later entries of the probe run into the hole when their home allows it.
    let hole = s;
    for (let j = (s + 1) & mask; values[j] !== 0; j = (j + 1) & mask) {
      const home = PairTable.slot(keysA[j]!, keysB[j]!, mask);
      // Can the entry at j move to hole? Only if its home is not in (hole, j] cyclically.
      const between = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (between) continue;
      keysA[hole] = keysA[j]!;
      keysB[hole] = keysB[j]!;
      values[hole] = values[j]!;
      hole = j;
    }
    values[hole] = 0;
    return true;
  }
}
