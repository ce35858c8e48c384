/**
 * A batch that takes long to index (one of 150 k records here; in life, the first batches before the code is
 * compiled, or thousands of new peers at once) does not hold the event loop: the index takes it in slices, and
 * after INGEST_SLICE_MS the rest waits for the next turn. Nothing is lost or reordered, a batch arriving meanwhile
 * goes after it, and stop() or feed() settle it at once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchBuilder, addressOf, prng, realisticCapture } from '../bench/synth.js';
import { formatAddress } from '../../common/address.js';
import { forEachRecord } from '../record.js';
import { CHUNK_MASK } from '../store.js';
import { CaptureService } from '../service.js';
import { MAX_WAITING_BATCHES } from './capture-service.js';
import { SLICE_WAIT } from '../radix-sort.js';
import { countLoopTurns } from '../../../test/support/loop-turns.js';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-ingest-slices-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const service = (): CaptureService => {
  const svc = new CaptureService({ native: new Error('no native here'), version: 'test', spoolDir: tmp });
  svc.startFeed();
  return svc;
};
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const rowsOf = (svc: CaptureService, at: number, n: number): string =>
  svc
    .rows(at, n)
    .rows.map((r) => `${r.no} ${r.src} ${r.dst} ${r.info}`)
    .join('\n');

describe('a slow batch is indexed in slices across turns of the event loop', () => {
  it('takes a 150 k-record batch over several turns, then holds the same rows as feed() does', async () => {
    const [big, next] = [...realisticCapture(150_000 + 4096, 150_000)];
    const sliced = service();
    const whole = service();
    // What the taps saw: records, the next record number and the next byte they expect (slices in order).
    const tapped = { records: 0, nextNo: 1, nextByte: 0, outOfOrder: 0 };
    sliced.tapRecords((batch, firstNo, _ifname, byteOffset, byteLength) => {
      if (batch !== big || firstNo !== tapped.nextNo || byteOffset !== tapped.nextByte) tapped.outOfOrder++;
      const n = forEachRecord(batch, () => undefined, byteOffset, byteLength);
      tapped.records += n;
      tapped.nextNo = firstNo + n;
      tapped.nextByte = byteOffset + byteLength;
    });
    try {
      sliced.deliver(big!);
      // The service's own turn takes it in; 150 k records cannot be indexed in one 10 ms slice: the rest waits
      // for later turns.
      expect(sliced.store.length).toBe(0);
      await turn();
      expect(sliced.store.length).toBeGreaterThan(0);
      expect(sliced.store.length).toBeLessThan(150_000);
      // Taps see each slice as it is taken in (their work counts in the slice), not the batch once it is whole.
      expect(tapped.records).toBe(sliced.store.length);
      let turns = 0;
      while (sliced.store.length < 150_000 && turns < 10_000) {
        await turn();
        turns++;
      }
      expect(turns).toBeGreaterThan(1);
      expect(sliced.store.length).toBe(150_000);
      expect(tapped).toEqual({ records: 150_000, nextNo: 150_001, nextByte: big!.byteLength, outOfOrder: 0 });
      // A batch delivered while one waits goes after it (ordered), and feed() returns with both indexed.
      const [big2] = [...realisticCapture(150_000, 150_000)];
      sliced.deliver(big2!);
      const before = sliced.store.length;
      sliced.deliver(next!); // waits behind big2: nothing of it is taken before big2 is whole
      expect(sliced.store.length).toBeLessThan(300_000);
      expect(sliced.store.length - before).toBeLessThan(150_000);
      sliced.feed(next!.slice(0, 0)); // an empty batch: feed() settles everything waiting
      expect(sliced.store.length).toBe(300_000 + 4096);
      whole.feed(big!);
      whole.feed(big2!);
      whole.feed(next!);
      sliced.tick();
      whole.tick();
      const n = whole.store.length;
      expect(rowsOf(sliced, 0, 400)).toEqual(rowsOf(whole, 0, 400));
      expect(sliced.rows(n - 300, 300).rows).toEqual(whole.rows(n - 300, 300).rows);
      expect(sliced.statistics.aggregates({ rate: 0, droppedKernel: 0, droppedRing: 0 }).total).toBe(n);
    } finally {
      sliced.close();
      whole.close();
    }
  });

  it('behind the capture, finishes the batch under way to make room, and keeps the order', async () => {
    const [big] = [...realisticCapture(150_000, 150_000)];
    const small = [...realisticCapture((MAX_WAITING_BATCHES + 2) * 4096, 4096)];
    const svc = service();
    const whole = service();
    try {
      svc.deliver(big!);
      await turn(); // the service's turn starts on it
      expect(svc.store.length).toBeLessThan(150_000);
      for (const b of small.slice(0, MAX_WAITING_BATCHES)) svc.deliver(b); // they wait behind it
      expect(svc.store.length).toBeLessThan(150_000);
      svc.deliver(small[MAX_WAITING_BATCHES]!); // one more: the big batch is finished now, the rest still waits
      expect(svc.store.length).toBe(150_000);
      svc.feed(small[MAX_WAITING_BATCHES + 1]!);
      for (const b of [big!, ...small]) whole.feed(b);
      expect(svc.store.length).toBe(whole.store.length);
      expect(rowsOf(svc, 149_990, 200)).toEqual(rowsOf(whole, 149_990, 200));
    } finally {
      svc.close();
      whole.close();
    }
  });

  it("a delivered batch waits for the service's turn instead of taking a slice of its own", async () => {
    // A native session delivers in the poll phase of the event loop and the service's own turn (setImmediate)
    // follows in the same iteration: a slice in each stacked two, 20 ms and more instead of 10. So a batch,
    // the first or one delivered while another is still being taken in, adds nothing when it is delivered.
    const [big] = [...realisticCapture(150_000, 150_000)];
    const small = [...realisticCapture(3 * 4096, 4096)];
    const svc = service();
    const whole = service();
    try {
      svc.deliver(big!);
      expect(svc.store.length).toBe(0); // the old service took a slice of it here
      await turn();
      const afterFirst = svc.store.length;
      expect(afterFirst).toBeGreaterThan(0);
      expect(afterFirst).toBeLessThan(150_000);
      for (const b of small) svc.deliver(b);
      expect(svc.store.length).toBe(afterFirst); // no slice of their own: they wait
      let turns = 0;
      while (svc.store.length < 150_000 + 3 * 4096 && turns < 10_000) {
        await turn();
        turns++;
      }
      expect(svc.store.length).toBe(150_000 + 3 * 4096);
      for (const b of [big!, ...small]) whole.feed(b);
      expect(rowsOf(svc, 149_990, 200)).toEqual(rowsOf(whole, 149_990, 200));
    } finally {
      svc.close();
      whole.close();
    }
  });

  it('names every new address of every slice from its own bytes', () => {
    // One batch of 120 k records, each from an IPv6 source never seen before: every one is a new entry of the
    // address table, made from the record's bytes (a slice's offsets count from the slice's start).
    const rand = prng(3);
    const builder = new BatchBuilder();
    const sources: string[] = [];
    const local = addressOf('2001:db8::1');
    for (let k = 0; k < 120_000; k++) {
      const src = new Uint8Array(16);
      src.set([0x20, 0x01, 0x0d, 0xb8]);
      for (let b = 4; b < 16; b++) src[b] = Math.floor(rand() * 256);
      sources.push(formatAddress(src, 6));
      builder.add({
        tsNs: 1.7e18 + k * 1e6,
        family: 6,
        src,
        dst: local,
        type: 128,
        code: 0,
        id: 1,
        seq: k & 0xffff,
        dir: 0,
        ifindex: 1,
        ttl: 64,
        capLen: 48,
      });
    }
    const svc = service();
    try {
      svc.deliver(builder.take());
      expect(svc.store.length).toBeLessThan(120_000); // it was sliced
      svc.settleIngest();
      const text = svc.ingestor.addresses.text;
      let wrong = 0;
      for (let r = 0; r < 120_000; r++) {
        const c = svc.store.chunkOf(r);
        if (text[c.src[r & CHUNK_MASK]!] !== sources[r]) wrong++;
      }
      expect(wrong).toBe(0);
    } finally {
      svc.close();
    }
  });

  it('capture.stop takes a backlog in a slice a turn, not all of it in one turn', async () => {
    // Behind a flood, MAX_WAITING_BATCHES batches wait; stop() took them all in one turn (100 ms and more).
    const batches = [...realisticCapture((MAX_WAITING_BATCHES + 1) * 16_384, 16_384)];
    const svc = service();
    try {
      svc.deliver(batches[0]!);
      await turn(); // under way; the others wait behind it
      for (const b of batches.slice(1)) svc.deliver(b);
      expect(svc.store.length).toBeLessThan(16_384);
      const turns = countLoopTurns();
      // Once per batch taken in whole: the tap that sees its last slice.
      svc.tapRecords((batch, _no, _ifname, byteOffset, byteLength) => {
        if (byteOffset + byteLength === batch.byteLength) turns.work();
      });
      await svc.handle('capture.stop', {}, 'ipc');
      turns.stop();
      expect(svc.store.length).toBe(batches.length * 16_384);
      // A batch of 16 k records is more than one 10 ms slice's work: at most the end of one and the whole of
      // the next fit in a turn (the old stop: all 17).
      expect(turns.most).toBeLessThanOrEqual(2);
      expect(turns.turns).toBeGreaterThan(MAX_WAITING_BATCHES / 2);
    } finally {
      svc.close();
    }
  });

  it('stop settles a batch still waiting: every record is indexed when the capture stops', async () => {
    const [big] = [...realisticCapture(150_000, 150_000)];
    const svc = service();
    try {
      svc.deliver(big!);
      expect(svc.store.length).toBeLessThan(150_000);
      await svc.handle('capture.stop', {}, 'ipc');
      expect(svc.store.length).toBe(150_000);
    } finally {
      svc.close();
    }
  });
});

describe('background work gives way while the capture falls behind', () => {
  it('holds back sorts, filters and exports while delivered batches wait, not otherwise', () => {
    const svc = service();
    try {
      const [a, b, c] = [...realisticCapture(3 * 4096, 4096)];
      expect(svc.backgroundSliceMs(10)).toBe(10);
      // Two batches delivered in one turn: the second waits behind the first.
      svc.deliver(a!);
      expect(svc.backgroundSliceMs(10)).toBe(10);
      svc.deliver(b!);
      // A short step (nothing ran in the background for a while), then none (background-waits.test.ts).
      expect(svc.backgroundSliceMs(10)).toBe(1);
      svc.deliver(c!);
      expect(svc.backgroundSliceMs(10)).toBe(SLICE_WAIT);
      expect(svc.backgroundSliceMs(8)).toBe(SLICE_WAIT);
      // Taken in: the slices are as long as before.
      svc.settleIngest();
      expect(svc.store.length).toBe(3 * 4096);
      expect(svc.backgroundSliceMs(10)).toBe(10);
    } finally {
      svc.close();
    }
  });
});
