/**
 * One open-addressing table of a power-of-two size: per slot its two keys and value + 1 (0: an empty slot)
 * side by side (`cells[3 * slot ..]`), so a probe reads one cache line, not one from each of three arrays (a
 * miss on each at millions of random lookups a second: the address table's two lookups a record, echo
 * matching's one a request or reply).
 */
class Slots {
  /** Keys as int32 (PairTable takes either sign: the same 32 bits are the same key). */
  readonly cells: Int32Array;
  readonly mask: number;

  constructor(capacity: number) {
    this.cells = new Int32Array(capacity * 3);
    this.mask = capacity - 1;
  }

  get capacity(): number {
    return this.mask + 1;
  }

  home(a: number, b: number): number {
    let h = Math.imul(a ^ Math.imul(b, 0x9e3779b1), 0x85ebca6b);
    h ^= h >>> 15;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 13;
    return h & this.mask;
  }

  /** The slot of (a, b), or -1. */
  find(a: number, b: number): number {
    const { cells, mask } = this;
    for (let s = this.home(a, b); ; s = (s + 1) & mask) {
      const c = s * 3;
      if (cells[c + 2] === 0) return -1;
      if (cells[c] === a && cells[c + 1] === b) return s;
    }
  }

  /** The stored value (value + 1) of slot `s`. */
  stored(s: number): number {
    return this.cells[s * 3 + 2]!;
  }

  /** Puts (a, b) -> stored (value + 1); true when it was not there before. */
  put(a: number, b: number, stored: number): boolean {
    const { cells, mask } = this;
    for (let s = this.home(a, b); ; s = (s + 1) & mask) {
      const c = s * 3;
      if (cells[c + 2] === 0) {
        cells[c] = a;
        cells[c + 1] = b;
        cells[c + 2] = stored;
        return true;
      }
      if (cells[c] === a && cells[c + 1] === b) {
        cells[c + 2] = stored;
        return false;
      }
    }
  }

  /** Removes (a, b) (backward shift); false when it was not there. */
  remove(a: number, b: number): boolean {
    const s = this.find(a, b);
    if (s < 0) return false;
    const { cells, mask } = this;
    // Backward-shift: move later entries of the probe run into the hole when their home allows it.
    let hole = s;
    for (let j = (s + 1) & mask; cells[j * 3 + 2] !== 0; j = (j + 1) & mask) {
      const home = this.home(cells[j * 3]!, cells[j * 3 + 1]!);
      // Can the entry at j move to hole? Only if its home is not in (hole, j] cyclically.
      const between = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (between) continue;
      cells.copyWithin(hole * 3, j * 3, j * 3 + 3);
      hole = j;
    }
    cells[hole * 3 + 2] = 0;
    return true;
  }
}

/**
 * A hash map from a pair of 32-bit integers (signed or unsigned: the same 32 bits are the same key; callers
 * on hot paths pass int32, which a call never boxes, where a uint32 of 2^31 or more is a heap number) to a
 * non-negative int32, in typed arrays (open addressing, linear probing, backward-shift deletion). A JS Map keyed by `a * 2^32 + b` boxes every
 * key as a heap number; this does not allocate per operation, which matters at millions of lookups a
 * second.
 *
 * It grows without a long step: a full table makes one twice its size and moves its entries over a few
 * clusters per `set` (an address table under a spoofed-source flood rehashed 2 M entries in one turn,
 * 360 ms). Meanwhile lookups try the new table, then the old. A cluster (a run of full slots between empty
 * ones) moves whole, so every entry left in the old table still has its probe run intact. Slots hold value + 1 (0: empty),
 * so new arrays are not written until used.
 */
export class PairTable {
  private slots: Slots;
  /** Entries in both tables. */
  private count = 0;
  /** The table being moved into `slots` (null when none), and where its move has got to: the next old slot
   * to move, and the slot after the last (the move scans from an empty slot, round). */
  private old: Slots | null = null;
  private moveAt = 0;
  private moveEnd = 0;

  constructor(initialCapacity = 1024) {
    let cap = 16;
    while (cap < initialCapacity * 2) cap *= 2;
    this.slots = new Slots(cap);
  }

  get size(): number {
    return this.count;
  }

  get byteLength(): number {
    return (this.slots.capacity + (this.old?.capacity ?? 0)) * 12;
  }

  /** Whether entries are still being moved from a smaller table (see the class comment). */
  get growing(): boolean {
    return this.old !== null;
  }

  /** The value for (a, b), or -1. */
  get(a: number, b: number): number {
    a |= 0;
    b |= 0;
    const slots = this.slots;
    const s = slots.find(a, b);
    if (s >= 0) return slots.stored(s) - 1;
    const old = this.old;
    if (old === null) return -1;
    const t = old.find(a, b);
    return t < 0 ? -1 : old.stored(t) - 1;
  }

  set(a: number, b: number, value: number): void {
    a |= 0;
    b |= 0;
    if (this.old !== null) this.move(64);
    // Full: a new key starts the move into a larger table (an update of a key it holds needs no room).
    if ((this.count + 1) * 2 > this.slots.capacity && this.get(a, b) < 0) {
      if (this.old !== null) this.move(Infinity);
      this.grow();
    }
    const old = this.old;
    if (old !== null) {
      // Still in the old table: updated there (it moves with its cluster).
      const s = old.find(a, b);
      if (s >= 0) {
        old.cells[s * 3 + 2] = value + 1;
        return;
      }
    }
    if (this.slots.put(a, b, value + 1)) this.count++;
  }

  delete(a: number, b: number): boolean {
    a |= 0;
    b |= 0;
    if (this.slots.remove(a, b) || (this.old !== null && this.old.remove(a, b))) {
      this.count--;
      return true;
    }
    return false;
  }

  clear(): void {
    this.slots.cells.fill(0);
    this.old = null;
    this.count = 0;
  }

  /** Starts moving into a table twice the size (filled by `move`, a few clusters per set). */
  private grow(): void {
    const old = this.slots;
    this.old = old;
    this.slots = new Slots(old.capacity * 2);
    // The move starts after an empty slot (at most half the slots are full), so no cluster is cut.
    let e = 0;
    while (old.stored(e) !== 0) e++;
    this.moveAt = e + 1;
    this.moveEnd = e + 1 + old.capacity;
  }

  /** Moves whole clusters of the old table until at least `slots` slots were scanned (or all were). */
  private move(slots: number): void {
    const old = this.old!;
    const { cells, mask } = old;
    let at = this.moveAt;
    const stop = Math.min(this.moveEnd, at + slots);
    while (at < this.moveEnd) {
      const c = (at & mask) * 3;
      const v = cells[c + 2]!;
      if (v === 0) {
        // Between clusters: a step may end here.
        at++;
        if (at >= stop) break;
        continue;
      }
      this.slots.put(cells[c]!, cells[c + 1]!, v);
      cells[c + 2] = 0;
      at++;
    }
    this.moveAt = at;
    if (at >= this.moveEnd) this.old = null;
  }
}
