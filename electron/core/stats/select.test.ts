import { describe, expect, it } from 'vitest';
import { selectKth } from './select.js';

describe('selectKth', () => {
  it('finds the k-th smallest as a sort does, for every k, with ties, runs and random values', () => {
    let x = 7;
    const rnd = (): number => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return x / 2 ** 32;
    };
    const shapes: ((i: number, n: number) => number)[] = [
      () => rnd() * 100,
      () => Math.floor(rnd() * 4), // many ties
      (i) => i, // sorted
      (i, n) => n - i, // reversed
      () => 5, // all equal
      (i) => (i % 2 ? 1e6 : -1e-3), // two values alternating
    ];
    for (const shape of shapes)
      for (const n of [1, 2, 3, 7, 64, 1024]) {
        const values = Float32Array.from({ length: n }, (_, i) => shape(i, n));
        const sorted = values.slice().sort();
        for (let k = 0; k < n; k += n > 100 ? 37 : 1) {
          const scratch = values.slice();
          expect(selectKth(scratch, n, k), `n ${n} k ${k}`).toBe(sorted[k]);
          // Only reordered: the same values are still there.
          expect(scratch.slice().sort()).toEqual(sorted);
        }
      }
  });

  it('looks only at the first n values', () => {
    const a = Float64Array.from([9, 1, 5, -100, -200]);
    expect(selectKth(a, 3, 0)).toBe(1);
    expect(selectKth(a, 3, 2)).toBe(9);
    expect(() => selectKth(a, 3, 3)).toThrow(RangeError);
  });
});
