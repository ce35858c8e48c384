import { describe, expect, it } from 'vitest';
import { countLoopTurns } from '../../test/support/loop-turns.js';
import { runSliced, sortByKeySteps } from './radix-sort.js';

/**
 * How much of the arrays one step of the sort touched, at most: a step that moves every element (a reversal or
 * a copy done in one go) blocks the event loop for tens of ms at 20 M records, whatever the slice length.
 * Counted, not timed: elements that differ from the previous step's snapshot.
 */
function runCountingSteps(keys: Float64Array, idx: Uint32Array, n: number): number {
  let prevKeys = keys.slice(0, n);
  let prevIdx = idx.slice(0, n);
  let most = 0;
  const it = sortByKeySteps(keys, idx, n);
  for (let r = it.next(); ; r = it.next()) {
    let changed = 0;
    for (let k = 0; k < n; k++) if (keys[k] !== prevKeys[k] || idx[k] !== prevIdx[k]) changed++;
    most = Math.max(most, changed);
    if (r.done) break;
    prevKeys = keys.slice(0, n);
    prevIdx = idx.slice(0, n);
  }
  return most;
}

/** The stable order by key (equal keys keep their index order). */
function reference(keys: Float64Array, n: number): number[] {
  return Array.from({ length: n }, (_, k) => k).sort((a, b) => keys[a]! - keys[b]! || a - b);
}

describe('sortByKeySteps', () => {
  const N = 1 << 19; // 8 steps of 65536
  const STEP = 1 << 16;
  let x = 99;
  const rnd = (): number => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x / 2 ** 32;
  };
  const cases: [string, (k: number) => number][] = [
    ['descending (a capture sorted newest first), with runs of equal keys', (k) => Math.floor((N - k) / 3)],
    ['RTTs (Float32 values)', () => Math.fround(rnd() * 200)],
    ['integers over more than 2^16', () => Math.floor(rnd() * 1e9)],
    ['capture times (64-bit keys)', () => 1.7e18 / 1e3 + rnd() * 1e12 + 0.5],
  ];
  for (const [name, key] of cases)
    it(`sorts ${name} stably, never touching more than a step's worth of elements at once`, () => {
      const keys = Float64Array.from({ length: N }, (_, k) => key(k));
      const idx = Uint32Array.from({ length: N }, (_, k) => k);
      const key0 = keys.slice();
      const want = reference(keys, N);
      const most = runCountingSteps(keys, idx, N);
      let wrong = 0;
      for (let k = 0; k < N; k++) if (idx[k] !== want[k] || keys[k] !== key0[want[k]!]) wrong++;
      expect(wrong).toBe(0);
      expect(most).toBeLessThanOrEqual(2 * STEP);
    });
});

describe('runSliced', () => {
  it('ends a slice before a step as long as the last one would carry it past sliceMs', async () => {
    // Steps of 4 ms in slices of 10 ms: two steps make 8 ms, and a third would end at 12 ms, so the slice ends
    // after two. (The old rule ran steps until 10 ms had passed: three steps, 12 ms.) Counted in steps per turn
    // of the event loop; a slower machine only ends slices sooner.
    const loop = countLoopTurns();
    function* steps(): Generator<number, string, void> {
      for (let k = 0; k < 30; k++) {
        const until = performance.now() + 4;
        while (performance.now() < until);
        loop.work();
        yield k / 30;
      }
      return 'done';
    }
    try {
      expect(await runSliced(steps(), { sliceMs: 10 })).toBe('done');
    } finally {
      loop.stop();
    }
    expect(loop.most).toBeLessThanOrEqual(2);
    expect(loop.turns).toBeGreaterThanOrEqual(14);
  });
});
