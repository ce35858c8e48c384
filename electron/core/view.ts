/**
 * The filtered, sorted view of a capture that the renderer scrolls through: a map from positions in the
 * table to record indices in the store.
 *
 * Memory: with no filter and no sort the view is the identity and holds nothing per record. A filter
 * keeps the matching record indices (4 bytes per match, in blocks of 64 Ki so growth never copies).
 * A sort keeps the sorted record indices and their sort keys (4 + 8 bytes per match) so that records
 * appended later are merged in (O(n) copy, no re-sort) instead of sorting everything again.
 *
 * Live capture: `update()` after each batch filters only the new records. When sorted, new matches are
 * shown at the end of the view in arrival order until the next merge, which happens at most every
 * `resortIntervalMs` (and never more often than 4x the time the last one took), or on `settle()`.
 *
 * Ring buffer: when the store drops its oldest records (store.firstIndex moves on), `evict()` (also run
 * by `update()`) trims them from the view instead of filtering and sorting again: the identity view starts
 * at firstIndex; the match list drops its leading matches (binary search, then whole blocks are released
 * and a start offset skips the rest of the first block); the sorted order is compacted in one pass, which
 * keeps its order (a subsequence of a sorted list is sorted). O(matches) copying at most, no re-sort;
 * measured in electron/core/bench/ring-bench.ts against re-filtering and re-sorting from firstIndex.
 */
import type { SortColumn } from '../common/contract.js';
import { type CompiledFilter, type FilterEnv, compileFilter } from './filter/compile.js';
import { addressBytes } from './filter/address.js';
import {
  CHUNK_MASK,
  CHUNK_SHIFT,
  CHUNK_SIZE,
  type Chunk,
  MISC_F_HAS_ECHO,
  type RecordStore,
} from './store.js';

const BLOCK_SHIFT = 16;
const BLOCK_SIZE = 1 << BLOCK_SHIFT;
const BLOCK_MASK = BLOCK_SIZE - 1;

export interface ViewOptions {
  /** Least time between merges of new records into a sorted view (default 250 ms; 0 merges on every update). */
  resortIntervalMs?: number;
  /** How long the async filter runs before yielding to the event loop (default 50 ms). */
  sliceMs?: number;
}

export interface FilterProgress {
  /** 0..1 */
  fraction: number;
}

export class FilterCancelled extends Error {
  constructor() {
    super('the filter was replaced before it finished');
    this.name = 'FilterCancelled';
  }
}

export class View {
  private filter: CompiledFilter | null = null;
  private filterSource = '';
  /** Records of the store the view has taken in (update() moves it to store.length). */
  private seen = 0;
  /** The first record index the view holds (store.firstIndex as of the last evict()). */
  private first = 0;
  /** Matching record indices in blocks (only with a filter): slots [skip, matched) of the blocks. */
  private blocks: Uint32Array[] = [];
  private matched = 0;
  private skip = 0;
  private readonly scratch = new Uint32Array(CHUNK_SIZE);

  private sortColumn: SortColumn | null = null;
  private descending = false;
  /** Sorted record indices and their keys (see sortKey) for the first `sortedCount` matches. */
  private order = new Uint32Array(0);
  private keys = new Float64Array(0);
  private sortedCount = 0;
  private lastSortAt = -Infinity;
  private lastSortCost = 0;
  /** Ranks of address and interface ids in sort order, and how many ids they cover. */
  private addressRank: Uint32Array = new Uint32Array(0);
  private ifaceRank = new Uint32Array(0);
  private rankedAddresses = 0;
  private rankedIfaces = 0;
  private generation = 0;
  private readonly resortIntervalMs: number;
  private readonly sliceMs: number;

  constructor(
    private readonly store: RecordStore,
    private readonly env: FilterEnv,
    options: ViewOptions = {},
  ) {
    this.resortIntervalMs = options.resortIntervalMs ?? 250;
    this.sliceMs = options.sliceMs ?? 50;
  }

  /** The filter as applied ('' for none). */
  get filterText(): string {
    return this.filterSource;
  }

  get sort(): { column: SortColumn | null; descending: boolean } {
    return { column: this.sortColumn, descending: this.descending };
  }

  get length(): number {
    return this.filter ? this.matched - this.skip : this.seen - this.first;
  }

  /** The first record index the view holds. */
  get firstIndex(): number {
    return this.first;
  }

  /** Bytes the view holds beyond the store. */
  get bytesAllocated(): number {
    return this.blocks.length * BLOCK_SIZE * 4 + this.order.byteLength + this.keys.byteLength;
  }

  /** The k-th match in record order. */
  private matchAt(k: number): number {
    if (!this.filter) return this.first + k;
    const s = k + this.skip;
    return this.blocks[s >>> BLOCK_SHIFT]![s & BLOCK_MASK]!;
  }

  /** Copies the record indices of matches from..to-1 into out[at..]. */
  private copyMatches(from: number, to: number, out: Uint32Array, at: number): void {
    if (!this.filter) {
      for (let k = from; k < to; k++) out[at + k - from] = this.first + k;
      return;
    }
    for (let k = from; k < to;) {
      const s = k + this.skip;
      const take = Math.min(to - k, BLOCK_SIZE - (s & BLOCK_MASK));
      out.set(
        this.blocks[s >>> BLOCK_SHIFT]!.subarray(s & BLOCK_MASK, (s & BLOCK_MASK) + take),
        at + k - from,
      );
      k += take;
    }
  }

  /** The record index at a position of the view. */
  indexAt(position: number): number {
    const n = this.length;
    if (position < 0 || position >= n || !Number.isInteger(position)) {
      throw new RangeError(`position ${position} is outside the view (0..${n - 1})`);
    }
    if (this.sortColumn === 'no') return this.matchAt(this.descending ? n - 1 - position : position);
    if (this.sortColumn !== null && position < this.sortedCount) return this.order[position]!;
    return this.matchAt(position);
  }

  /** The record indices in view order as of now (a copy: for exports that must not see later changes). */
  snapshot(): Uint32Array {
    this.settle();
    const n = this.length;
    const out = new Uint32Array(n);
    if (this.sortColumn !== null && this.sortColumn !== 'no') {
      out.set(this.order.subarray(0, n));
    } else {
      this.copyMatches(0, n, out, 0);
      if (this.sortColumn === 'no' && this.descending) out.reverse();
    }
    return out;
  }

  /** Position of a record in the view, or null when the filter hides it (or the view has not seen it). */
  positionOf(recordIndex: number): number | null {
    if (!Number.isInteger(recordIndex) || recordIndex < this.first || recordIndex >= this.seen) return null;
    let k = recordIndex - this.first;
    if (this.filter) {
      const lo = this.lowerBound(recordIndex);
      if (lo >= this.length || this.matchAt(lo) !== recordIndex) return null;
      k = lo;
    }
    if (this.sortColumn === null) return k;
    if (this.sortColumn === 'no') return this.descending ? this.length - 1 - k : k;
    if (k >= this.sortedCount) return k;
    const at = this.order.subarray(0, this.sortedCount).indexOf(recordIndex);
    return at < 0 ? null : at;
  }

  /** The first record the view may read (the store may have evicted past `first` during an async filter). */
  private liveFirst(): number {
    return Math.max(this.first, this.store.firstIndex);
  }

  /** The first match position whose record index is >= `recordIndex` (binary search; filtered view). */
  private lowerBound(recordIndex: number): number {
    let lo = 0;
    let hi = this.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.matchAt(mid) < recordIndex) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * Drops from the view the records the store has evicted (store.firstIndex moved on): no re-filter and no
   * re-sort (see the top of this file). Safe while paused: the view keeps only the records it had seen.
   */
  evict(): void {
    const first = this.store.firstIndex;
    if (first <= this.first) return;
    const sorted = this.sortColumn !== null && this.sortColumn !== 'no';
    if (this.filter) {
      this.skip += this.lowerBound(first);
      const whole = this.skip >>> BLOCK_SHIFT;
      if (whole > 0) {
        this.blocks.splice(0, whole);
        this.skip -= whole * BLOCK_SIZE;
        this.matched -= whole * BLOCK_SIZE;
      }
    }
    this.first = first;
    if (this.seen < first) this.seen = first;
    if (sorted && this.sortedCount > 0) {
      // Keep the surviving sorted entries in their order.
      const order = this.order;
      const keys = this.keys;
      let out = 0;
      for (let k = 0; k < this.sortedCount; k++) {
        const r = order[k]!;
        if (r >= first) {
          order[out] = r;
          keys[out] = keys[k]!;
          out++;
        }
      }
      this.sortedCount = out;
    }
  }

  /**
   * Replaces the filter ('' for none) over the records the view has taken in (update() brings in the
   * rest, so a paused view stays as it was); throws FilterSyntaxError and keeps the old filter on a
   * bad one.
   */
  setFilter(text: string): { ms: number } {
    const started = performance.now();
    const compiled = compileFilter(text, this.env);
    this.generation++;
    const blocks: Uint32Array[] = [];
    let matched = 0;
    const end = this.seen;
    if (compiled) {
      for (let c = this.liveFirst() >>> CHUNK_SHIFT; c * CHUNK_SIZE < end; c++)
        matched = this.scanChunk(compiled, c, end, blocks, matched);
    }
    this.install(compiled, text, blocks, matched, end);
    return { ms: performance.now() - started };
  }

  /**
   * Like setFilter, but yields to the event loop every `sliceMs` and reports progress, so a filter over
   * tens of millions of records keeps the service responsive. A newer setFilter/setFilterAsync call
   * cancels this one (it rejects with FilterCancelled); a syntax error rejects with FilterSyntaxError.
   */
  async setFilterAsync(
    text: string,
    onProgress?: (progress: FilterProgress) => void,
  ): Promise<{ ms: number }> {
    const started = performance.now();
    const compiled = compileFilter(text, this.env);
    const generation = ++this.generation;
    const blocks: Uint32Array[] = [];
    let matched = 0;
    let end = this.seen;
    let c = this.liveFirst() >>> CHUNK_SHIFT;
    let sliceStart = performance.now();
    if (compiled) {
      // update() keeps taking in records while this runs: chase the view's end until caught up. Records
      // evicted meanwhile are skipped here and trimmed by install().
      for (;;) {
        if (c < this.liveFirst() >>> CHUNK_SHIFT) c = this.liveFirst() >>> CHUNK_SHIFT;
        if (c * CHUNK_SIZE >= end) {
          if (end === this.seen) break;
          end = this.seen;
          // The last chunk may have been partial: scan it again from where it ended.
          c = Math.max(this.liveFirst() >>> CHUNK_SHIFT, c - 1);
          matched = this.truncateTo(blocks, matched, c * CHUNK_SIZE);
          continue;
        }
        matched = this.scanChunk(compiled, c, end, blocks, matched);
        c++;
        if (performance.now() - sliceStart >= this.sliceMs) {
          const done = c * CHUNK_SIZE - this.first;
          onProgress?.({ fraction: Math.min(1, Math.max(0, done) / Math.max(1, this.seen - this.first)) });
          await new Promise<void>((resolve) => setImmediate(resolve));
          if (generation !== this.generation) throw new FilterCancelled();
          sliceStart = performance.now();
        }
      }
    }
    this.install(compiled, text, blocks, matched, end);
    onProgress?.({ fraction: 1 });
    return { ms: performance.now() - started };
  }

  /** Drops matches at record indices >= `from` (they are all at the end). */
  private truncateTo(blocks: Uint32Array[], matched: number, from: number): number {
    while (matched > 0 && blocks[(matched - 1) >>> BLOCK_SHIFT]![(matched - 1) & BLOCK_MASK]! >= from)
      matched--;
    return matched;
  }

  private scanChunk(
    filter: CompiledFilter,
    c: number,
    end: number,
    blocks: Uint32Array[],
    matched: number,
  ): number {
    const chunk = this.store.chunks[c]!;
    const base = c * CHUNK_SIZE;
    const to = Math.min(CHUNK_SIZE, end - base);
    return this.append(blocks, matched, this.scratch, filter.scan(chunk, 0, to, this.scratch, 0, base));
  }

  private scanRange(filter: CompiledFilter, from: number, to: number): void {
    for (let at = from; at < to;) {
      const c = at >>> CHUNK_SHIFT;
      const base = c * CHUNK_SIZE;
      const stop = Math.min(to, base + CHUNK_SIZE);
      const n = filter.scan(this.store.chunks[c]!, at - base, stop - base, this.scratch, 0, base);
      this.matched = this.append(this.blocks, this.matched, this.scratch, n);
      at = stop;
    }
  }

  private append(blocks: Uint32Array[], matched: number, from: Uint32Array, n: number): number {
    let done = 0;
    while (done < n) {
      const b = matched >>> BLOCK_SHIFT;
      if (b === blocks.length) blocks.push(new Uint32Array(BLOCK_SIZE));
      const at = matched & BLOCK_MASK;
      const take = Math.min(n - done, BLOCK_SIZE - at);
      blocks[b]!.set(from.subarray(done, done + take), at);
      done += take;
      matched += take;
    }
    return matched;
  }

  private install(
    filter: CompiledFilter | null,
    text: string,
    blocks: Uint32Array[],
    matched: number,
    end: number,
  ): void {
    this.filter = filter;
    this.filterSource = filter ? text : '';
    this.blocks = filter ? blocks : [];
    this.matched = filter ? matched : 0;
    this.skip = 0;
    this.first = this.liveFirst();
    this.seen = Math.max(end, this.first);
    if (filter) {
      // Matches of records evicted while an async filter ran.
      this.skip = this.lowerBound(this.first);
      const whole = this.skip >>> BLOCK_SHIFT;
      this.blocks.splice(0, whole);
      this.skip -= whole * BLOCK_SIZE;
      this.matched -= whole * BLOCK_SIZE;
    }
    this.resort();
  }

  /** Sets the sort (null: record order); sorts now. */
  setSort(column: SortColumn | null, descending = false): { ms: number } {
    const started = performance.now();
    this.sortColumn = column;
    this.descending = descending;
    this.resort();
    return { ms: performance.now() - started };
  }

  /** Takes in records appended to the store since the last call (filters only those). */
  update(): void {
    const end = this.store.length;
    if (end < this.seen || this.store.firstIndex < this.first) {
      this.clear();
      return this.update();
    }
    this.evict();
    if (end === this.seen) return;
    if (this.filter) this.scanRange(this.filter, this.seen, end);
    this.seen = end;
    if (this.sortColumn !== null && this.sortColumn !== 'no') {
      const wait = this.resortIntervalMs === 0 ? 0 : Math.max(this.resortIntervalMs, 4 * this.lastSortCost);
      if (performance.now() - this.lastSortAt >= wait) this.merge();
    }
  }

  /** Merges any pending new records into the sorted order now. */
  settle(): void {
    if (this.sortColumn !== null && this.sortColumn !== 'no' && this.sortedCount < this.length) this.merge();
  }

  /** Forgets every record (after the store was cleared); keeps the filter and sort settings. */
  clear(): void {
    this.generation++;
    this.filter = this.filterSource ? compileFilter(this.filterSource, this.env) : null;
    this.blocks = [];
    this.matched = 0;
    this.skip = 0;
    this.seen = 0;
    this.first = 0;
    this.order = new Uint32Array(0);
    this.keys = new Float64Array(0);
    this.sortedCount = 0;
    this.rankedAddresses = 0;
    this.rankedIfaces = 0;
  }

  // ---- sorting ----

  private needsRanks(): 'address' | 'iface' | null {
    if (this.sortColumn === 'src' || this.sortColumn === 'dst') return 'address';
    if (this.sortColumn === 'iface') return 'iface';
    return null;
  }

  /** Recomputes id ranks; true when they changed. */
  private updateRanks(): boolean {
    const which = this.needsRanks();
    if (which === 'address') {
      const n = this.env.addresses.text.length;
      if (n === this.rankedAddresses) return false;
      this.addressRank = rankAddresses(this.env.addresses.text, this.env.addresses.family);
      this.rankedAddresses = n;
      return true;
    }
    if (which === 'iface') {
      const n = this.env.interfaces.values.length;
      if (n === this.rankedIfaces) return false;
      const names = this.env.interfaces.values;
      const ids = Array.from({ length: n }, (_, k) => k).sort((a, b) =>
        names[a]! < names[b]! ? -1 : names[a]! > names[b]! ? 1 : a - b,
      );
      this.ifaceRank = new Uint32Array(n);
      ids.forEach((id, rank) => (this.ifaceRank[id] = rank));
      this.rankedIfaces = n;
      return true;
    }
    return false;
  }

  /** Fills keys for matches k = from..to-1 into `keys` from `at` on, record indices into `idx`. */
  private fillKeys(from: number, to: number, keys: Float64Array, idx: Uint32Array, at: number): void {
    const n = to - from;
    this.copyMatches(from, to, idx, at);
    // One tight loop per column (a switch per record would cost more than the sort).
    const chunks = this.store.chunks;
    const end = at + n;
    const read = (
      column: (c: Chunk) => Uint32Array | Float64Array | Float32Array,
      f: (v: number) => number,
    ): void => {
      for (let o = at; o < end; o++) {
        const r = idx[o]!;
        keys[o] = f(column(chunks[r >>> CHUNK_SHIFT]!)[r & CHUNK_MASK]!);
      }
    };
    switch (this.sortColumn) {
      case 'time':
        for (let o = at; o < end; o++)
          keys[o] = chunks[idx[o]! >>> CHUNK_SHIFT]!.tsRel[idx[o]! & CHUNK_MASK]!;
        break;
      case 'rtt':
        for (let o = at; o < end; o++) keys[o] = chunks[idx[o]! >>> CHUNK_SHIFT]!.rtt[idx[o]! & CHUNK_MASK]!;
        break;
      case 'dir':
        read(
          (c) => c.meta,
          (m) => (m >>> 16) & 0xff,
        );
        break;
      case 'type':
        read(
          (c) => c.meta,
          (m) => m & 0xff,
        );
        break;
      case 'code':
        read(
          (c) => c.meta,
          (m) => (m >>> 8) & 0xff,
        );
        break;
      case 'ttl':
        read(
          (c) => c.misc,
          (m) => m & 0xff,
        );
        break;
      case 'len':
        read(
          (c) => c.len,
          (l) => l & 0xffff,
        );
        break;
      case 'iface': {
        const rank = this.ifaceRank;
        read(
          (c) => c.misc,
          (m) => rank[(m >>> 8) & 0xffff]!,
        );
        break;
      }
      case 'src': {
        const rank = this.addressRank;
        read(
          (c) => c.src,
          (a) => rank[a]!,
        );
        break;
      }
      case 'dst': {
        const rank = this.addressRank;
        read(
          (c) => c.dst,
          (a) => rank[a]!,
        );
        break;
      }
      case 'id':
      case 'seq': {
        const id = this.sortColumn === 'id';
        for (let o = at; o < end; o++) {
          const r = idx[o]!;
          const c = chunks[r >>> CHUNK_SHIFT]!;
          const i = r & CHUNK_MASK;
          const v = c.idSeq[i]!;
          keys[o] = c.misc[i]! & MISC_F_HAS_ECHO ? (id ? v >>> 16 : v & 0xffff) : NaN;
        }
        break;
      }
      default:
        for (let o = at; o < end; o++) keys[o] = idx[o]!;
    }
    // Records without the value (NaN) go last in both directions; -0 would sort before 0.
    const sign = this.descending ? -1 : 1;
    for (let o = at; o < end; o++) {
      const key = keys[o]!;
      keys[o] = key !== key ? Infinity : key === 0 ? 0 : sign * key;
    }
  }

  /** Sorts every match from scratch. */
  private resort(): void {
    const started = performance.now();
    this.order = new Uint32Array(0);
    this.keys = new Float64Array(0);
    this.sortedCount = 0;
    if (this.sortColumn === null || this.sortColumn === 'no') return;
    this.updateRanks();
    const n = this.length;
    const capacity = n + (n >>> 3) + 1024;
    this.order = new Uint32Array(capacity);
    this.keys = new Float64Array(capacity);
    this.fillKeys(0, n, this.keys, this.order, 0);
    sortByKey(this.keys, this.order, n);
    this.sortedCount = n;
    this.lastSortAt = performance.now();
    this.lastSortCost = this.lastSortAt - started;
  }

  /** Merges the matches past sortedCount into the sorted order. */
  private merge(): void {
    if (this.updateRanks()) {
      this.resort();
      return;
    }
    const started = performance.now();
    const old = this.sortedCount;
    const n = this.length;
    const m = n - old;
    if (m <= 0) return;
    const newKeys = new Float64Array(m);
    const newIdx = new Uint32Array(m);
    this.fillKeys(old, n, newKeys, newIdx, 0);
    sortByKey(newKeys, newIdx, m);
    if (n > this.order.length) {
      const capacity = n + (n >>> 2) + 1024;
      const order = new Uint32Array(capacity);
      order.set(this.order.subarray(0, old));
      const keys = new Float64Array(capacity);
      keys.set(this.keys.subarray(0, old));
      this.order = order;
      this.keys = keys;
    }
    // Merge from the back, in place. New records have larger indices than every sorted one, so on equal
    // keys the new one goes after: stable.
    const order = this.order;
    const keys = this.keys;
    let a = old - 1;
    let b = m - 1;
    for (let o = n - 1; b >= 0; o--) {
      if (a >= 0 && keys[a]! > newKeys[b]!) {
        keys[o] = keys[a]!;
        order[o] = order[a]!;
        a--;
      } else {
        keys[o] = newKeys[b]!;
        order[o] = newIdx[b]!;
        b--;
      }
    }
    this.sortedCount = n;
    this.lastSortAt = performance.now();
    this.lastSortCost = this.lastSortAt - started;
  }
}

/** Ranks address ids by family, then address bytes (the order of the src/dst columns). */
function rankAddresses(text: readonly string[], family: readonly number[]): Uint32Array {
  const n = text.length;
  const sortKey: string[] = new Array<string>(n);
  for (let id = 0; id < n; id++) {
    const bytes = id === 0 ? null : addressBytes(text[id]!, family[id]!);
    sortKey[id] = bytes === null ? '' : String.fromCharCode(family[id]!, ...bytes);
  }
  const ids = Array.from({ length: n }, (_, k) => k).sort((a, b) =>
    sortKey[a]! < sortKey[b]! ? -1 : sortKey[a]! > sortKey[b]! ? 1 : a - b,
  );
  const rank = new Uint32Array(n);
  ids.forEach((id, r) => (rank[id] = r));
  return rank;
}

const RADIX_BITS = 11;
const RADIX = 1 << RADIX_BITS;

/**
 * Sorts `keys[0..n)` ascending and applies the same permutation to `idx`, stably (equal keys keep
 * their order). An LSD radix sort on the IEEE-754 bits (11-bit digits, digits that are the same in
 * every key are skipped), after an O(n) check for input that is already in order or reversed, which a
 * capture sorted by time usually is.
 */
export function sortByKey(keys: Float64Array, idx: Uint32Array, n: number): void {
  if (n < 2) return;
  let ascending = true;
  let descending = true;
  for (let k = 1; k < n && (ascending || descending); k++) {
    const a = keys[k - 1]!;
    const b = keys[k]!;
    if (b < a) ascending = false;
    else if (b > a) descending = false;
  }
  if (ascending) return;
  if (descending) {
    keys.subarray(0, n).reverse();
    idx.subarray(0, n).reverse();
    // Runs of equal keys are now in reverse order: put them back.
    for (let s = 0; s < n;) {
      let e = s + 1;
      while (e < n && keys[e] === keys[s]) e++;
      if (e - s > 1) idx.subarray(s, e).reverse();
      s = e;
    }
    return;
  }
  if (n < 256) {
    const pairs = Array.from({ length: n }, (_, k) => k).sort((a, b) =>
      keys[a]! < keys[b]! ? -1 : keys[a]! > keys[b]! ? 1 : a - b,
    );
    const k2 = pairs.map((k) => keys[k]!);
    const i2 = pairs.map((k) => idx[k]!);
    keys.set(k2);
    idx.set(i2);
    return;
  }
  if (sortBy32Bits(keys, idx, n)) return;
  // Order-preserving unsigned bits: flip the sign bit of positives, all bits of negatives.
  const words = new Uint32Array(keys.buffer, keys.byteOffset, n * 2);
  const lo = new Uint32Array(n);
  const hi = new Uint32Array(n);
  for (let k = 0; k < n; k++) {
    const h = words[2 * k + 1]!;
    const l = words[2 * k]!;
    if (h & 0x80000000) {
      hi[k] = ~h >>> 0;
      lo[k] = ~l >>> 0;
    } else {
      hi[k] = (h | 0x80000000) >>> 0;
      lo[k] = l;
    }
  }
  let srcLo = lo;
  let srcHi = hi;
  let srcIdx: Uint32Array = idx.subarray(0, n);
  let dstLo = new Uint32Array(n);
  let dstHi = new Uint32Array(n);
  let dstIdx: Uint32Array = new Uint32Array(n);
  const counts = new Uint32Array(RADIX);
  // Digits: lo bits 0-10, 11-21, 22-31, then hi bits 0-10, 11-21, 22-31.
  for (let pass = 0; pass < 6; pass++) {
    const useHi = pass >= 3;
    const shift = (pass % 3) * RADIX_BITS;
    const word = useHi ? srcHi : srcLo;
    counts.fill(0);
    for (let k = 0; k < n; k++) counts[(word[k]! >>> shift) & (RADIX - 1)]!++;
    if (counts[(word[0]! >>> shift) & (RADIX - 1)] === n) continue; // every key has this digit
    let sum = 0;
    for (let d = 0; d < RADIX; d++) {
      const c = counts[d]!;
      counts[d] = sum;
      sum += c;
    }
    for (let k = 0; k < n; k++) {
      const d = (word[k]! >>> shift) & (RADIX - 1);
      const o = counts[d]!++;
      dstLo[o] = srcLo[k]!;
      dstHi[o] = srcHi[k]!;
      dstIdx[o] = srcIdx[k]!;
    }
    [srcLo, dstLo] = [dstLo, srcLo];
    [srcHi, dstHi] = [dstHi, srcHi];
    [srcIdx, dstIdx] = [dstIdx, srcIdx];
  }
  if (srcIdx.buffer !== idx.buffer) idx.set(srcIdx);
  for (let k = 0; k < n; k++) {
    const h = srcHi[k]!;
    const l = srcLo[k]!;
    if (h & 0x80000000) {
      words[2 * k + 1] = (h & 0x7fffffff) >>> 0;
      words[2 * k] = l;
    } else {
      words[2 * k + 1] = ~h >>> 0;
      words[2 * k] = ~l >>> 0;
    }
  }
}

const F32 = new Float32Array(1);
const F32_BITS = new Uint32Array(F32.buffer);

/**
 * The common case: every key fits an order-preserving 32-bit code, either because the keys are
 * integers spanning less than 2^32 (every column but time and rtt: one counting pass when they span
 * less than 2^16) or because they are exact Float32 values (rtt). Then an LSD radix sort needs one
 * counting pass or three 11-bit passes. Returns false when the keys do not fit (the caller sorts on all 64
 * bits).
 */
function sortBy32Bits(keys: Float64Array, idx: Uint32Array, n: number): boolean {
  let min = Infinity;
  let max = -Infinity;
  let integers = true;
  let float32 = true;
  for (let k = 0; k < n; k++) {
    const v = keys[k]!;
    if (v === Infinity) continue;
    if (v < min) min = v;
    if (v > max) max = v;
    if (integers && v !== Math.floor(v)) integers = false;
    if (float32 && Math.fround(v) !== v) float32 = false;
    if (!integers && !float32) return false;
  }
  const code = new Uint32Array(n);
  const asIntegers = integers && (min === Infinity || max - min < 0xfffffffe);
  const nullCode = min === Infinity ? 0 : max - min + 1;
  if (asIntegers) {
    for (let k = 0; k < n; k++) {
      const v = keys[k]!;
      code[k] = v === Infinity ? nullCode : v - min;
    }
  } else if (float32) {
    for (let k = 0; k < n; k++) {
      const v = keys[k]!;
      F32[0] = v === 0 ? 0 : v; // -0 sorts with 0
      const b = F32_BITS[0]!;
      code[k] = b & 0x80000000 ? ~b >>> 0 : (b | 0x80000000) >>> 0;
    }
  } else return false;
  let srcCode = code;
  let srcIdx: Uint32Array = idx.subarray(0, n);
  let dstCode = new Uint32Array(n);
  let dstIdx: Uint32Array = new Uint32Array(n);
  let maxCode = 0;
  for (let k = 0; k < n; k++) if (code[k]! > maxCode) maxCode = code[k]!;
  // Codes below 2^16: one counting pass; otherwise 11-bit digits (cache-friendlier than 16).
  const passes: [number, number][] =
    maxCode < 1 << 16
      ? [[0, 16]]
      : [
          [0, 11],
          [11, 11],
          [22, 10],
        ];
  const counts = new Uint32Array(1 << 16);
  for (const [shift, bits] of passes) {
    const mask = (1 << bits) - 1;
    counts.fill(0);
    for (let k = 0; k < n; k++) counts[(srcCode[k]! >>> shift) & mask]!++;
    if (counts[(srcCode[0]! >>> shift) & mask] === n) continue;
    let sum = 0;
    for (let d = 0; d <= mask; d++) {
      const c = counts[d]!;
      counts[d] = sum;
      sum += c;
    }
    for (let k = 0; k < n; k++) {
      const o = counts[(srcCode[k]! >>> shift) & mask]!++;
      dstCode[o] = srcCode[k]!;
      dstIdx[o] = srcIdx[k]!;
    }
    [srcCode, dstCode] = [dstCode, srcCode];
    [srcIdx, dstIdx] = [dstIdx, srcIdx];
  }
  if (srcIdx.buffer !== idx.buffer) idx.set(srcIdx);
  // The codes decode to the keys exactly, so the keys need not travel through the passes.
  if (asIntegers) {
    for (let k = 0; k < n; k++) {
      const c = srcCode[k]!;
      keys[k] = c === nullCode ? Infinity : c + min;
    }
  } else {
    for (let k = 0; k < n; k++) {
      const c = srcCode[k]!;
      F32_BITS[0] = c & 0x80000000 ? c & 0x7fffffff : ~c >>> 0;
      keys[k] = F32[0]!;
    }
  }
  return true;
}
