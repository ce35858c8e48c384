import { describe, expect, it } from 'vitest';
import { RunKeys } from './run-keys.js';
import { prng } from '../bench/synth.js';

interface Entry {
  name: string;
  hash: number;
  fid: number;
  words: Int32Array;
}

describe('RunKeys', () => {
  it('finds every key inserted and not removed, over growth, collisions and removals', () => {
    const rnd = prng(7);
    const keys = new RunKeys<Entry>();
    const live = new Map<string, Entry>();
    const gone: Entry[] = [];
    for (let step = 0; step < 60_000; step++) {
      if (live.size > 0 && rnd() < 0.45) {
        // Remove a random live key.
        const all = [...live.values()];
        const e = all[Math.floor(rnd() * all.length)]!;
        keys.remove(e, e.hash);
        live.delete(e.name);
        gone.push(e);
      } else {
        // Few distinct hashes: long clusters that wrap around the table's end, so that the backward shift is
        // exercised across it.
        const words = Int32Array.from({ length: 8 }, () => (rnd() * 2 ** 32) | 0);
        const e: Entry = {
          name: `k${step}`,
          hash: rnd() < 0.5 ? 0x3fffffff - Math.floor(rnd() * 4) : Math.floor(rnd() * 2 ** 30),
          fid: (4 << 16) | Math.floor(rnd() * 65536),
          words,
        };
        keys.insert(e, e.hash, e.fid, e.words);
        live.set(e.name, e);
      }
      if (step % 997 === 0 || step === 59_999) {
        expect(keys.size).toBe(live.size);
        for (const e of live.values()) expect(keys.find(e.hash, e.fid, e.words)).toBe(e);
        for (const e of gone.slice(-200)) expect(keys.find(e.hash, e.fid, e.words)).toBeNull();
      }
    }
    expect(gone.length).toBeGreaterThan(20_000);
  });

  it('tells keys apart by identifier and by every word', () => {
    const keys = new RunKeys<string>();
    const w = new Int32Array([10, 0, 0, 0, 20, 0, 0, 0]);
    keys.insert('a', 5, (4 << 16) | 1, w);
    for (let k = 0; k < 8; k++) {
      const other = w.slice();
      other[k]! ^= 1;
      expect(keys.find(5, (4 << 16) | 1, other)).toBeNull();
    }
    expect(keys.find(5, (4 << 16) | 2, w)).toBeNull();
    expect(keys.find(5, (6 << 16) | 1, w)).toBeNull();
    expect(keys.find(5, (4 << 16) | 1, w)).toBe('a');
  });
});
