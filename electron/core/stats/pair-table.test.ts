import { describe, expect, it } from 'vitest';
import { prng } from '../bench/synth.js';
import { PairTable } from './pair-table.js';

describe('PairTable', () => {
  it('behaves like a Map under random sets, gets and deletes, across resizes', () => {
    const rnd = prng(3);
    const table = new PairTable(4);
    const map = new Map<string, number>();
    for (let k = 0; k < 200_000; k++) {
      // Few distinct keys, so deletes hit and probe runs collide.
      const a = Math.floor(rnd() * 300) * 0x01000193;
      const b = (Math.floor(rnd() * 50) * 0x9e3779b9) >>> 0;
      const key = `${a >>> 0}/${b}`;
      const op = rnd();
      if (op < 0.45) {
        const v = Math.floor(rnd() * 1e9);
        table.set(a >>> 0, b, v);
        map.set(key, v);
      } else if (op < 0.75) {
        expect(table.delete(a >>> 0, b)).toBe(map.delete(key));
      } else {
        expect(table.get(a >>> 0, b)).toBe(map.get(key) ?? -1);
      }
      expect(table.size).toBe(map.size);
    }
    for (const [key, v] of map) {
      const [a, b] = key.split('/').map(Number) as [number, number];
      expect(table.get(a, b)).toBe(v);
    }
    table.clear();
    expect(table.size).toBe(0);
    expect(table.get(0, 0)).toBe(-1);
  });
});
