/**
 * The store keeps each record's spool location in 4 bytes (spool-locations.ts): every location must still
 * read back exactly, in any segment, at offsets past 4 GiB, and in a chunk whose records lie in more than
 * one segment.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchBuilder, addressOf, fillPacketBytes } from './bench/synth.js';
import { Ingestor } from './ingest.js';
import { SEGMENT_SCALE, Spool, spoolLocation, splitLocation } from './spool-store.js';
import { SpoolLocations } from './spool-locations.js';
import { BYTES_PER_RECORD, CHUNK_MASK, CHUNK_SIZE, RecordStore } from './store.js';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-spool-locations-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('spool locations in 4 bytes per record', () => {
  it('reads back locations in late segments, past 4 GiB, across segment changes and gaps', () => {
    const column = new SpoolLocations(CHUNK_SIZE);
    const expected: number[] = [];
    // Segment 5 from 6 GiB on (neither the segment nor the offset fits 32 bits), blocks of 65,580 bytes
    // (the largest record) so the chunk's first run spans more than 4 GiB; then segment 6 from a small
    // offset; a record never spooled; segment 6 again; an unaligned offset (no pcapng block has one, but
    // it must not read back wrong).
    let location = spoolLocation(5, 6 * 2 ** 30);
    for (let i = 0; i < CHUNK_SIZE; i++) {
      if (i === 40_000) location = spoolLocation(6, 1024);
      if (i === 50_000) location = -1;
      if (i === 50_001) location = spoolLocation(6, 2 ** 33);
      if (i === 60_000) location = spoolLocation(6, 2 ** 33 + 4_000_002);
      expected.push(location);
      column.set(i, location);
      if (location >= 0) location += i < 40_000 ? 65_580 : 100;
    }
    for (let i = 0; i < CHUNK_SIZE; i++) {
      if (column.at(i) !== expected[i]) expect.fail(`record ${i}: ${column.at(i)}, expected ${expected[i]}`);
    }
    expect(splitLocation(column.at(39_999))).toEqual({ segment: 5, offset: 6 * 2 ** 30 + 39_999 * 65_580 });
    expect(column.extraRuns).toBe(4);
    expect(column.byteLength).toBe(CHUNK_SIZE * 4 + 4 * 16);
  });

  it('keeps bytes found across spool segments, in a chunk that spans a segment cut', () => {
    const store = new RecordStore();
    const ifname = (i: number): string => ['', 'lo', 'eth0'][i] ?? `if${i}`;
    const ingestor = new Ingestor(store, ifname);
    const spool = Spool.create(join(tmp, 'spool'), 'test', 256);
    const b = new BatchBuilder();
    const [a4, b4, a6, b6] = ['10.0.0.1', '10.0.0.2', '2001:db8::1', '2001:db8::2'].map(addressOf);
    // The spool counts records from SHIFT while the store counts from 0, so the spool's cuts (at its own
    // chunk boundaries, here every one) fall inside the store's chunks: chunk 0 holds records of segments
    // 0 and 1, chunk 1 of segments 1 and 2, chunk 2 of segment 2.
    const SHIFT = 20_000;
    const n = 2 * CHUNK_SIZE + 3000;
    const feed = (): void => {
      const count = b.count;
      const batch = b.take();
      fillPacketBytes(batch);
      ingestor.ingest(
        batch,
        spool.append(batch, count, ifname, store.length + SHIFT, () => true),
      );
    };
    const seqOf = (k: number): number => (k * 7) & 0xffff;
    for (let k = 0; k < n; k++) {
      const v6 = k % 3 === 0;
      b.add({
        tsNs: 1.7e18 + k * 1e5,
        family: v6 ? 6 : 4,
        src: v6 ? a6! : a4!,
        dst: v6 ? b6! : b4!,
        type: v6 ? 128 : 8,
        code: 0,
        id: k >>> 16,
        seq: seqOf(k),
        dir: 0,
        ifindex: 1 + (k % 2),
        ttl: 64,
        capLen: v6 ? 48 + (k % 13) : 28 + (k % 7),
      });
      if (b.count === 4096) feed();
    }
    feed();
    try {
      expect(store.length).toBe(n);
      expect(spool.paths.length).toBe(3);
      const segments = new Set<number>();
      for (let k = 0; k < n; k++) {
        const c = store.chunkOf(k);
        const location = c.spool.at(k & CHUNK_MASK);
        segments.add(Math.floor(location / SEGMENT_SCALE));
        const rec = spool.read(location);
        const v6 = k % 3 === 0;
        const capLen = v6 ? 48 + (k % 13) : 28 + (k % 7);
        const tsNs = BigInt(1.7e18 + k * 1e5);
        if (rec.seq !== seqOf(k) || rec.id !== k >>> 16 || rec.capLen !== capLen || rec.tsNs !== tsNs) {
          const got = { id: rec.id, seq: rec.seq, capLen: rec.capLen, tsNs: rec.tsNs.toString() };
          expect.fail(`record ${k} at ${location} read back as ${JSON.stringify(got)}`);
        }
      }
      expect([...segments].sort()).toEqual([0, 1, 2]);
      // Chunks 0 and 1 each start a second run where their records move to the next segment.
      expect(store.chunks.map((c) => c.spool.extraRuns)).toEqual([1, 1, 0]);
      expect(store.bytesAllocated).toBe(3 * CHUNK_SIZE * BYTES_PER_RECORD + 2 * 16);
    } finally {
      spool.close();
    }
  });

  it('costs no more than the deltas when the spool cuts at chunk boundaries', () => {
    const store = new RecordStore();
    const ingestor = new Ingestor(store, () => 'lo');
    const spool = Spool.create(join(tmp, 'aligned'), 'test', 256);
    const b = new BatchBuilder();
    const [a, z] = ['10.0.0.1', '10.0.0.2'].map(addressOf);
    try {
      for (let k = 0; k < CHUNK_SIZE + 10; k++) {
        b.add({
          tsNs: 1.7e18 + k,
          family: 4,
          src: a!,
          dst: z!,
          type: 8,
          code: 0,
          id: 1,
          seq: k & 0xffff,
          dir: 0,
          ifindex: 1,
          ttl: 64,
          capLen: 28,
        });
        if (b.count === 4096 || k === CHUNK_SIZE + 9) {
          const count = b.count;
          const batch = b.take();
          fillPacketBytes(batch);
          ingestor.ingest(
            batch,
            spool.append(
              batch,
              count,
              () => 'lo',
              store.length,
              () => true,
            ),
          );
        }
      }
      expect(spool.paths.length).toBe(2);
      expect(store.chunks.map((c) => c.spool.extraRuns)).toEqual([0, 0]);
      expect(store.bytesAllocated).toBe(2 * CHUNK_SIZE * BYTES_PER_RECORD);
      expect(spool.read(store.chunkOf(CHUNK_SIZE + 9).spool.at(9)).seq).toBe((CHUNK_SIZE + 9) & 0xffff);
    } finally {
      spool.close();
    }
  });
});
