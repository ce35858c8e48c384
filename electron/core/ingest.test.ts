import { describe, expect, it } from 'vitest';
import { buildBatch } from '../../test/support/records.js';
import { Ingestor } from './ingest.js';
import { Aggregator } from './stats/aggregator.js';
import { RecordFormatError } from './record.js';
import { CHUNK_SIZE, RecordStore } from './store.js';

function ingestor(): Ingestor {
  return new Ingestor(new RecordStore(), (i: number) => `eth${i}`);
}

/** Ingests a batch with statistics listening, as the service does (echo matching fills in the RTTs). */
function ingestWithStats(ing: Ingestor, batch: ArrayBuffer): void {
  const agg = new Aggregator(ing);
  const from = ing.store.length;
  ing.ingest(batch);
  agg.update(ing.store, from, ing.store.length);
}

describe('Ingestor', () => {
  it('stores every field of every record and matches replies to requests for RTT', () => {
    const ing = ingestor();
    const t0 = 1_700_000_000_123_456_789n;
    ingestWithStats(
      ing,
      buildBatch([
        { tsNs: t0, src: '192.0.2.2', dst: '192.0.2.1', type: 8, id: 7, seq: 1, ttl: 63, ifindex: 3 },
        {
          tsNs: t0 + 1_500_000n,
          src: '192.0.2.1',
          dst: '192.0.2.2',
          type: 0,
          id: 7,
          seq: 1,
          dir: 1,
          ifindex: 3,
        },
        { tsNs: t0 + 2_000_000n, family: 6, src: '2001:db8::1', dst: 'fe80::1:2', type: 1, code: 4 },
      ]),
    );
    expect(ing.store.length).toBe(3);
    const c = ing.store.chunkOf(0);
    expect(ing.addresses.text[c.src[0]!]).toBe('192.0.2.2');
    expect(ing.addresses.text[c.dst[2]!]).toBe('fe80::1:2');
    expect(ing.interfaces.get((c.misc[0]! >>> 8) & 0xffff)).toBe('eth3');
    expect(c.misc[0]! & 0xff).toBe(63);
    expect(c.meta[2]! & 0xff).toBe(1);
    expect((c.meta[2]! >>> 8) & 0xff).toBe(4);
    expect(c.meta[2]! >>> 24).toBe(6);
    expect(Number.isNaN(c.rtt[0]!)).toBe(true);
    expect(c.rtt[1]).toBeCloseTo(1.5, 5);
    expect(c.tsRel[2]).toBe(2_000_000);
    expect(ing.store.baseNs).toBe(t0);
  });

  it('does not match a reply with another id, seq or peer', () => {
    const ing = ingestor();
    ingestWithStats(
      ing,
      buildBatch([
        { tsNs: 1n, src: '192.0.2.2', dst: '192.0.2.1', type: 8, id: 7, seq: 1 },
        { tsNs: 2n, src: '192.0.2.1', dst: '192.0.2.2', type: 0, id: 7, seq: 2 },
        { tsNs: 3n, src: '192.0.2.1', dst: '192.0.2.2', type: 0, id: 8, seq: 1 },
        { tsNs: 4n, src: '192.0.2.9', dst: '192.0.2.2', type: 0, id: 7, seq: 1 },
      ]),
    );
    const c = ing.store.chunkOf(0);
    expect([1, 2, 3].map((i) => Number.isNaN(c.rtt[i]!))).toEqual([true, true, true]);
  });

  it('grows across chunks without losing records', () => {
    const ing = ingestor();
    const n = CHUNK_SIZE + 10;
    const specs = Array.from({ length: n }, (_, i) => ({
      tsNs: BigInt(i),
      src: '192.0.2.2',
      dst: '192.0.2.1',
      type: 8,
      id: 1,
      seq: i & 0xffff,
    }));
    ing.ingest(buildBatch(specs));
    expect(ing.store.length).toBe(n);
    expect(ing.store.chunks.length).toBe(2);
    expect(ing.store.chunkOf(n - 1).tsRel[(n - 1) & (CHUNK_SIZE - 1)]).toBe(n - 1);
  });

  it('rejects a batch whose record length lies, naming the offset', () => {
    const batch = buildBatch([{ tsNs: 1n, src: '192.0.2.2', dst: '192.0.2.1', type: 8 }]);
    new DataView(batch).setUint32(0, 9999, true);
    expect(() => ingestor().ingest(batch)).toThrow(RecordFormatError);
    expect(() => ingestor().ingest(batch)).toThrow(/at byte 0/);
  });
});
