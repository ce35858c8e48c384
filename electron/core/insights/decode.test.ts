import { describe, expect, it } from 'vitest';
import { buildBatch } from '../../../test/support/records.js';
import { decodeRecord, forEachRecord } from '../record.js';
import { CachedDecoder } from './decode.js';

describe('the cached decoder', () => {
  it('decodes every record as decodeRecord does, across more addresses than it keeps', () => {
    const specs = Array.from({ length: 6000 }, (_, i) => {
      const v6 = i % 3 === 0;
      const family: 4 | 6 = v6 ? 6 : 4;
      return {
        family,
        tsNs: 1_700_000_000_000_000_000n + BigInt(i),
        src: v6 ? `2001:db8::${(i % 40).toString(16)}` : `10.${(i >> 8) & 255}.${i & 255}.1`,
        dst: v6 ? `fe80::${(i % 11).toString(16)}:1` : `192.0.2.${i % 7}`,
        type: i % 2 ? 0 : 8,
        id: i & 0xffff,
        seq: i,
        dir: i % 4,
      };
    });
    const batch = buildBatch(specs);
    const cached = new CachedDecoder();
    let n = 0;
    const mismatches: string[] = [];
    forEachRecord(batch, (view, offset) => {
      const a = cached.decode(view, offset);
      const b = decodeRecord(view, offset);
      if (a.src !== b.src || a.dst !== b.dst || a.tsNs !== b.tsNs || a.seq !== b.seq)
        mismatches.push(`${n}: ${a.src} > ${a.dst} vs ${b.src} > ${b.dst}`);
      if (n % 97 === 0) expect(a).toEqual(b);
      n++;
    });
    expect(mismatches).toEqual([]);
    expect(n).toBe(specs.length);
  });
});
