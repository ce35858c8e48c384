/**
 * The view's sort: a stable LSD radix sort of (key, record index) pairs, written as a generator that yields
 * after every STEP elements of each pass so that callers choose how to run it: `sortByKey` runs it to the end
 * (small sorts, merges of new records), `sortByKeySliced` runs it in slices of `sliceMs` between which the
 * event loop runs (a 10 M-record sort takes about half a second in one go), and stops when asked.
 */
import { hugePages } from './huge-pages.js';

/** Elements handled between yields: small enough that one step is well under a millisecond. */
const STEP = 1 << 16;

/** Yields the fraction done (0..1, roughly). */
export type SortSteps = Generator<number, void, void>;

/** Sorts keys[0..n) ascending, idx alongside, stably; runs to the end at once. */
export function sortByKey(keys: Float64Array, idx: Uint32Array, n: number): void {
  const steps = sortByKeySteps(keys, idx, n);
  while (!steps.next().done);
}

export class SortCancelled extends Error {
  constructor() {
    super('the sort was replaced before it finished');
    this.name = 'SortCancelled';
  }
}

/** A slice budget that says "no step now": the work yields turns until it is given one again. */
export const SLICE_WAIT = -1;

/**
 * Yields a turn of the event loop, then more while `sliceMs` says SLICE_WAIT (the caller's more urgent work
 * comes first). `check` runs after each turn and may throw to stop the work.
 */
export async function yieldUntilSlice(sliceMs: () => number, check: () => void): Promise<void> {
  do {
    await new Promise<void>((resolve) => setImmediate(resolve));
    check();
  } while (sliceMs() === SLICE_WAIT);
}

export interface SliceOptions {
  /**
   * Longest run between yields to the event loop (default 20 ms; 0: one step a turn); a function is asked at
   * every step, and may say SLICE_WAIT.
   */
  sliceMs?: number | (() => number);
  /** Asked after each yield: true stops the work (the promise rejects with SortCancelled). */
  cancelled?: () => boolean;
  onProgress?: (fraction: number) => void;
}

/**
 * Runs `steps` in slices of `sliceMs`, yielding to the event loop between them (setImmediate). A slice also ends
 * when the next step, if it costs what the last one did, would carry it past `sliceMs`: a turn then ends near
 * `sliceMs`, not `sliceMs` plus a whole step (steps of cold code or large passes take several ms).
 */
export async function runSliced<T>(
  steps: Generator<number, T, void>,
  options: SliceOptions = {},
): Promise<T> {
  const sliceMs = sliceBudget(options.sliceMs, 20);
  const yieldTurn = (): Promise<void> =>
    yieldUntilSlice(sliceMs, () => {
      if (options.cancelled?.()) {
        steps.return(undefined as T);
        throw new SortCancelled();
      }
    });
  if (sliceMs() === SLICE_WAIT) await yieldTurn();
  let sliceStart = performance.now();
  let stepStart = sliceStart;
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    const now = performance.now();
    const stepMs = now - stepStart;
    stepStart = now;
    if (now - sliceStart + stepMs >= sliceMs()) {
      options.onProgress?.(step.value);
      await yieldTurn();
      sliceStart = stepStart = performance.now();
    }
  }
}

/** A slice length given as a number or as a function asked at each step, as a function (`fallback` if none). */
export function sliceBudget(sliceMs: number | (() => number) | undefined, fallback: number): () => number {
  const given = sliceMs ?? fallback;
  return typeof given === 'number' ? () => given : given;
}

/** sortByKey in slices (see runSliced). The arrays must not change meanwhile. */
export function sortByKeySliced(
  keys: Float64Array,
  idx: Uint32Array,
  n: number,
  options: SliceOptions = {},
): Promise<void> {
  return runSliced(sortByKeySteps(keys, idx, n), options);
}

const RADIX_BITS = 11;
const RADIX = 1 << RADIX_BITS;

/**
 * Sorts `keys[0..n)` ascending and applies the same permutation to `idx`, stably (equal keys keep
 * their order). An LSD radix sort on the IEEE-754 bits (11-bit digits, digits that are the same in
 * every key are skipped), after an O(n) check for input that is already in order or reversed, which a
 * capture sorted by time usually is.
 */
export function* sortByKeySteps(keys: Float64Array, idx: Uint32Array, n: number): SortSteps {
  if (n < 2) return;
  let ascending = true;
  let descending = true;
  for (let s = 1; s < n && (ascending || descending); s += STEP) {
    const e = Math.min(n, s + STEP);
    for (let k = s; k < e && (ascending || descending); k++) {
      const a = keys[k - 1]!;
      const b = keys[k]!;
      if (b < a) ascending = false;
      else if (b > a) descending = false;
    }
    yield 0;
  }
  if (ascending) return;
  if (descending) {
    // Reversed in steps too (20 M keys and indices are 240 MB to move).
    for (let s = 0; s < n >>> 1; s += STEP) {
      const e = Math.min(n >>> 1, s + STEP);
      for (let a = s; a < e; a++) {
        const b = n - 1 - a;
        const k = keys[a]!;
        keys[a] = keys[b]!;
        keys[b] = k;
        const i = idx[a]!;
        idx[a] = idx[b]!;
        idx[b] = i;
      }
      yield 0.5;
    }
    // Runs of equal keys are now in reverse order: put them back.
    let budget = STEP;
    for (let s = 0; s < n;) {
      let e = s + 1;
      while (e < n && keys[e] === keys[s]) e++;
      if (e - s > 1) idx.subarray(s, e).reverse();
      budget -= e - s;
      s = e;
      if (budget <= 0) {
        budget = STEP;
        yield 0.75;
      }
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
  if (yield* sortBy32Bits(keys, idx, n)) return;
  // Order-preserving unsigned bits: flip the sign bit of positives, all bits of negatives.
  const words = new Uint32Array(keys.buffer, keys.byteOffset, n * 2);
  const lo = hugePages(new Uint32Array(n));
  const hi = hugePages(new Uint32Array(n));
  for (let s = 0; s < n; s += STEP) {
    const e = Math.min(n, s + STEP);
    for (let k = s; k < e; k++) {
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
    yield 0;
  }
  let srcLo = lo;
  let srcHi = hi;
  let srcIdx: Uint32Array = idx.subarray(0, n);
  let dstLo = hugePages(new Uint32Array(n));
  let dstHi = hugePages(new Uint32Array(n));
  let dstIdx: Uint32Array = hugePages(new Uint32Array(n));
  yield* touchSteps([dstLo, dstHi, dstIdx], n, 0);
  const counts = new Uint32Array(RADIX);
  // Digits: lo bits 0-10, 11-21, 22-31, then hi bits 0-10, 11-21, 22-31.
  for (let pass = 0; pass < 6; pass++) {
    const useHi = pass >= 3;
    const shift = (pass % 3) * RADIX_BITS;
    const word = useHi ? srcHi : srcLo;
    counts.fill(0);
    for (let s = 0; s < n; s += STEP) {
      const e = Math.min(n, s + STEP);
      for (let k = s; k < e; k++) counts[(word[k]! >>> shift) & (RADIX - 1)]!++;
      yield (pass + (0.3 * e) / n) / 6;
    }
    if (counts[(word[0]! >>> shift) & (RADIX - 1)] === n) continue; // every key has this digit
    let sum = 0;
    for (let d = 0; d < RADIX; d++) {
      const c = counts[d]!;
      counts[d] = sum;
      sum += c;
    }
    for (let s = 0; s < n; s += STEP) {
      const e = Math.min(n, s + STEP);
      for (let k = s; k < e; k++) {
        const d = (word[k]! >>> shift) & (RADIX - 1);
        const o = counts[d]!++;
        dstLo[o] = srcLo[k]!;
        dstHi[o] = srcHi[k]!;
        dstIdx[o] = srcIdx[k]!;
      }
      yield (pass + 0.3 + (0.7 * e) / n) / 6;
    }
    [srcLo, dstLo] = [dstLo, srcLo];
    [srcHi, dstHi] = [dstHi, srcHi];
    [srcIdx, dstIdx] = [dstIdx, srcIdx];
  }
  if (srcIdx.buffer !== idx.buffer) yield* copySteps(idx, srcIdx, n, 1);
  yield 1;
  for (let s = 0; s < n; s += STEP) {
    const e = Math.min(n, s + STEP);
    for (let k = s; k < e; k++) {
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
    yield 1;
  }
}

/**
 * Writes every page of new arrays, in steps, before a pass scatters into them. A new array's memory is mapped on
 * first write: the first scatter step writes all over it, so at 20 M it faulted in 160-240 MB of pages in one
 * step (30-40 ms: the longest step of sorts by rtt and by src at 20 M).
 */
function* touchSteps(arrays: Uint32Array[], n: number, progress: number): Generator<number, void, void> {
  for (let s = 0; s < n; s += STEP) {
    const e = Math.min(n, s + STEP);
    for (const a of arrays) a.fill(0, s, e);
    yield progress;
  }
}

/** idx.set(src) for n elements, in steps (80 MB at 20 M: tens of ms in one go). */
function* copySteps(
  idx: Uint32Array,
  src: Uint32Array,
  n: number,
  progress: number,
): Generator<number, void, void> {
  for (let s = 0; s < n; s += STEP) {
    const e = Math.min(n, s + STEP);
    idx.set(src.subarray(s, e), s);
    yield progress;
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
function* sortBy32Bits(keys: Float64Array, idx: Uint32Array, n: number): Generator<number, boolean, void> {
  let min = Infinity;
  let max = -Infinity;
  let integers = true;
  let float32 = true;
  for (let s = 0; s < n; s += STEP) {
    const e = Math.min(n, s + STEP);
    for (let k = s; k < e; k++) {
      const v = keys[k]!;
      if (v === Infinity) continue;
      if (v < min) min = v;
      if (v > max) max = v;
      if (integers && v !== Math.floor(v)) integers = false;
      if (float32 && Math.fround(v) !== v) float32 = false;
      if (!integers && !float32) return false;
    }
    yield 0;
  }
  const code = hugePages(new Uint32Array(n));
  const asIntegers = integers && (min === Infinity || max - min < 0xfffffffe);
  const nullCode = min === Infinity ? 0 : max - min + 1;
  if (!asIntegers && !float32) return false;
  for (let s = 0; s < n; s += STEP) {
    const e = Math.min(n, s + STEP);
    if (asIntegers) {
      for (let k = s; k < e; k++) {
        const v = keys[k]!;
        code[k] = v === Infinity ? nullCode : v - min;
      }
    } else {
      for (let k = s; k < e; k++) {
        const v = keys[k]!;
        F32[0] = v === 0 ? 0 : v; // -0 sorts with 0
        const b = F32_BITS[0]!;
        code[k] = b & 0x80000000 ? ~b >>> 0 : (b | 0x80000000) >>> 0;
      }
    }
    yield 0.1;
  }
  let srcCode = code;
  let srcIdx: Uint32Array = idx.subarray(0, n);
  let dstCode = hugePages(new Uint32Array(n));
  let dstIdx: Uint32Array = hugePages(new Uint32Array(n));
  yield* touchSteps([dstCode, dstIdx], n, 0.1);
  let maxCode = 0;
  for (let s = 0; s < n; s += STEP) {
    const e = Math.min(n, s + STEP);
    for (let k = s; k < e; k++) if (code[k]! > maxCode) maxCode = code[k]!;
    yield 0.1;
  }
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
  for (const [pass, [shift, bits]] of passes.entries()) {
    const mask = (1 << bits) - 1;
    counts.fill(0);
    for (let s = 0; s < n; s += STEP) {
      const e = Math.min(n, s + STEP);
      for (let k = s; k < e; k++) counts[(srcCode[k]! >>> shift) & mask]!++;
      yield 0.1 + (0.8 * (pass + (0.3 * e) / n)) / passes.length;
    }
    if (counts[(srcCode[0]! >>> shift) & mask] === n) continue;
    let sum = 0;
    for (let d = 0; d <= mask; d++) {
      const c = counts[d]!;
      counts[d] = sum;
      sum += c;
    }
    for (let s = 0; s < n; s += STEP) {
      const e = Math.min(n, s + STEP);
      for (let k = s; k < e; k++) {
        const o = counts[(srcCode[k]! >>> shift) & mask]!++;
        dstCode[o] = srcCode[k]!;
        dstIdx[o] = srcIdx[k]!;
      }
      yield 0.1 + (0.8 * (pass + 0.3 + (0.7 * e) / n)) / passes.length;
    }
    [srcCode, dstCode] = [dstCode, srcCode];
    [srcIdx, dstIdx] = [dstIdx, srcIdx];
  }
  if (srcIdx.buffer !== idx.buffer) yield* copySteps(idx, srcIdx, n, 0.9);
  // The codes decode to the keys exactly, so the keys need not travel through the passes.
  for (let s = 0; s < n; s += STEP) {
    const e = Math.min(n, s + STEP);
    if (asIntegers) {
      for (let k = s; k < e; k++) {
        const c = srcCode[k]!;
        keys[k] = c === nullCode ? Infinity : c + min;
      }
    } else {
      for (let k = s; k < e; k++) {
        const c = srcCode[k]!;
        F32_BITS[0] = c & 0x80000000 ? c & 0x7fffffff : ~c >>> 0;
        keys[k] = F32[0]!;
      }
    }
    yield 0.9 + (0.1 * e) / n;
  }
  return true;
}
