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

  it('grows a few clusters at a time: every entry stays findable while it moves, and no set moves them all', () => {
    const rnd = prng(11);
    const table = new PairTable(16);
    const map = new Map<string, number>();
    let grew = 0;
    let wasGrowing = false;
    const keys: number[] = [];
    for (let k = 0; k < 300_000; k++) {
      // Many distinct keys (the table doubles up to 2^19 slots), with deletes and updates among them.
      const a = Math.floor(rnd() * 400_000) >>> 0;
      const b = (a * 7919) >>> 0;
      const key = `${a}/${b}`;
      const op = rnd();
      if (op < 0.7) {
        const v = Math.floor(rnd() * 2 ** 31 - 1);
        const before = table.byteLength;
        table.set(a, b, v);
        map.set(key, v);
        keys.push(a);
        // While entries move, any key (present or deleted) reads as the Map says.
        if (table.growing)
          for (let j = 0; j < 4; j++) {
            const x = keys[Math.floor(rnd() * keys.length)]!;
            const y = (x * 7919) >>> 0;
            expect(table.get(x, y)).toBe(map.get(`${x}/${y}`) ?? -1);
          }
        // The set that made the larger table moved at most a few clusters into it, not every entry.
        if (table.byteLength > before) {
          grew++;
          if (table.size > 1000) expect(table.growing).toBe(true);
        }
      } else if (op < 0.85) {
        expect(table.delete(a, b)).toBe(map.delete(key));
      } else {
        expect(table.get(a, b)).toBe(map.get(key) ?? -1);
      }
      wasGrowing ||= table.growing;
      if (k % 997 === 0) expect(table.size).toBe(map.size);
    }
    expect(grew).toBeGreaterThan(10);
    expect(wasGrowing).toBe(true);
    expect(table.size).toBe(map.size);
    for (const [key, v] of map) {
      const [a, b] = key.split('/').map(Number) as [number, number];
      expect(table.get(a, b)).toBe(v);
    }
  });

  it('finds every entry after every step of a move', () => {
    const rnd = prng(5);
    const table = new PairTable(16);
    const map = new Map<number, number>();
    let steps = 0;
    for (let k = 0; k < 20_000; k++) {
      const a = Math.floor(rnd() * 2 ** 32) >>> 0;
      table.set(a, 1, k);
      map.set(a, k);
      if (table.growing && map.size > 2000) {
        steps++;
        for (const [key, v] of map) if (table.get(key, 1) !== v) expect(table.get(key, 1)).toBe(v);
      }
    }
    expect(steps).toBeGreaterThan(100);
  });
});
