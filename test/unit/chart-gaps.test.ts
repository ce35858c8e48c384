import { describe, expect, it } from 'vitest';
import { withGaps } from '../../renderer/src/composables/chartHover.js';

describe('RTT chart series', () => {
  it('breaks the line across a silence instead of drawing a slope over it', () => {
    // Replies each second, then 13 s of nothing, then replies again.
    const tMs = [0, 1000, 2000, 15_000, 16_000].map((t) => 1_700_000_000_000 + t);
    const [t, v] = withGaps({ tMs, rttMs: [1, 2, 3, 4, 5] });
    expect(v).toEqual([1, 2, 3, null, 4, 5]);
    expect(t[3]).toBeGreaterThan(t[2]!);
    expect(t[3]).toBeLessThan(t[4]!);
  });

  it('keeps a steady series whole, however slow', () => {
    const tMs = [0, 5000, 10_000, 15_000].map((t) => 1_700_000_000_000 + t);
    expect(withGaps({ tMs, rttMs: [1, 1, 1, 1] })[1]).toEqual([1, 1, 1, 1]);
  });
});
