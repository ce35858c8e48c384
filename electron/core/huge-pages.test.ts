/**
 * The service's large arrays (a view's order and keys, a sort's passes) are advised onto huge pages before
 * their first touch; small ones are not (one call each would cost more than it saves).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { hugeAdvisedBytes, kernelHasHugePages } from '../../test/support/huge-pages.js';
import { HUGE_PAGES_MIN_BYTES, hugePages } from './huge-pages.js';
import { sortByKeySteps } from './radix-sort.js';

/** A full collection (the test's own garbage). */
const collectGarbage = ((): (() => void) => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

describe.runIf(kernelHasHugePages())('hugePages', () => {
  it('advises a large array (its values kept) and leaves a small one', () => {
    const before = hugeAdvisedBytes();
    const small = new Uint32Array(HUGE_PAGES_MIN_BYTES / 4 - 1);
    expect(hugePages(small)).toBe(small);
    expect(hugeAdvisedBytes()).toBe(before);
    const large = hugePages(new Float64Array(HUGE_PAGES_MIN_BYTES));
    expect(hugeAdvisedBytes() - before).toBeGreaterThanOrEqual(large.byteLength - (4 << 20));
    large[7] = 3;
    expect([large[6], large[7], large[large.length - 1]]).toEqual([0, 3, 0]);
  });

  it('ICMPCAP_HUGE_PAGES=0 turns the advice off', () => {
    // The earlier tests' advised arrays collected first: a collection meanwhile (this test's own allocations
    // can start one) would otherwise take their bytes off the process's total between the two readings.
    collectGarbage();
    const before = hugeAdvisedBytes();
    const kept: Float64Array[] = [];
    process.env.ICMPCAP_HUGE_PAGES = '0';
    try {
      kept.push(hugePages(new Float64Array(HUGE_PAGES_MIN_BYTES)));
      expect(hugeAdvisedBytes()).toBe(before);
    } finally {
      delete process.env.ICMPCAP_HUGE_PAGES;
    }
    kept.push(hugePages(new Float64Array(HUGE_PAGES_MIN_BYTES)));
    expect(hugeAdvisedBytes()).toBeGreaterThan(before);
    expect(kept).toHaveLength(2);
  });

  it('a sort of 4 M keys runs on advised arrays, and sorts', () => {
    const n = 4 << 20;
    const keys = new Float64Array(n);
    const idx = new Uint32Array(n);
    for (let k = 0; k < n; k++) {
      keys[k] = ((k * 2654435761) >>> 0) / 7 - 1e8; // floats of both signs: the 64-bit passes
      idx[k] = k;
    }
    collectGarbage(); // the earlier tests' advised arrays: not freed while this one measures
    const before = hugeAdvisedBytes();
    let most = 0;
    let step = 0;
    for (const _ of sortByKeySteps(keys, idx, n))
      if (step++ % 32 === 0) most = Math.max(most, hugeAdvisedBytes() - before);
    // While it runs: lo, hi and three destination arrays of n words (16 MiB each, less their unaligned ends).
    expect(most).toBeGreaterThanOrEqual(5 * (n * 4 - (4 << 20)));
    for (let k = 1; k < n; k++) if (keys[k - 1]! > keys[k]!) throw new Error(`not sorted at ${k}`);
  });
});
