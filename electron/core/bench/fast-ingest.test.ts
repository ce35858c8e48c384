import { describe, expect, it } from 'vitest';
import { Ingestor } from '../ingest.js';
import { CHUNK_MASK, CHUNK_SHIFT, RecordStore } from '../store.js';
import { FastIngestor } from './fast-ingest.js';
import { IFNAMES, randomCapture } from './synth.js';

describe('FastIngestor (proposal for ingest.ts)', () => {
  it('fills the store exactly as Ingestor does, but for the RTT the Aggregator now fills', () => {
    const a = new Ingestor(new RecordStore(), (i) => IFNAMES[i] ?? `if${i}`);
    const b = new FastIngestor(new RecordStore(), (i) => IFNAMES[i] ?? `if${i}`);
    for (const batch of randomCapture(150_000, 17)) {
      expect(b.ingest(batch)).toBe(a.ingest(batch));
    }
    expect(b.store.length).toBe(a.store.length);
    expect(b.store.baseNs).toBe(a.store.baseNs);
    expect(b.addresses.text).toEqual(a.addresses.text);
    expect(b.addresses.family).toEqual(a.addresses.family);
    expect(b.interfaces.values).toEqual(a.interfaces.values);
    for (const col of ['tsRel', 'src', 'dst', 'meta', 'idSeq', 'misc', 'len', 'spoolOffset'] as const) {
      for (let c = 0; c < a.store.chunks.length; c++) {
        const n = Math.min(1 << CHUNK_SHIFT, a.store.length - (c << CHUNK_SHIFT));
        expect(b.store.chunks[c]![col].subarray(0, n), `${col} of chunk ${c}`).toEqual(
          a.store.chunks[c]![col].subarray(0, n),
        );
      }
    }
    expect(b.store.chunks[0]!.rtt[5 & CHUNK_MASK]).toBeNaN();
  });
});
