import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  alignRecord,
  decodeRecord,
  Direction,
  forEachRecord,
  OFF,
  REC_F_PAD,
  type DecodedRecord,
} from '../record.js';
import { nativeSpoolEncoder } from '../native.js';
import { encodeRecord, MAX_RECORD_SIZE } from './packet.js';
import { readCaptureFileAll } from './read.js';
import { PcapngSpoolWriter, readSpoolRecord, SpoolReader } from './spool.js';
import { hasTools, tsharkFields } from './testing/lab.js';
import { canStickDisk, stuckDisk } from './testing/stuck-disk.js';
import { ipv4Error, ipv4Icmp, ipv6Icmp } from './testing/packets.js';
import { expectedTsharkRow, normalizeTsharkRow, TSHARK_FIELDS } from './testing/records.js';

const T0 = 1_795_329_960_000_000_000n;

/** A batch as the native addon delivers it, with a pad record in the middle like a ring wrap leaves. */
function batchOf(specs: { packet: Uint8Array; ifindex: number; dir: number }[], padAfter = -1): ArrayBuffer {
  const out = new Uint8Array(specs.length * MAX_RECORD_SIZE + 64);
  const view = new DataView(out.buffer);
  let at = 0;
  specs.forEach((s, i) => {
    at += encodeRecord(
      s.packet,
      { tsNs: T0 + BigInt(i) * 1_234_567n, ifindex: s.ifindex, dir: s.dir, origLen: s.packet.length },
      out,
      at,
    )!;
    if (i === padAfter) {
      view.setUint32(at + OFF.len, 24, true);
      view.setUint16(at + OFF.flags, REC_F_PAD, true);
      at += 24;
    }
  });
  return out.buffer.slice(0, at);
}

function recordsOf(batch: ArrayBuffer): DecodedRecord[] {
  const records: DecodedRecord[] = [];
  forEachRecord(batch, (view, offset) => records.push(decodeRecord(view, offset)));
  return records;
}

const comparable = (r: DecodedRecord) => ({ ...r, data: [...r.data] });

describe('PcapngSpoolWriter', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'icmpcap-spool-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const specs = [
    { packet: ipv4Icmp({ seq: 1 }), ifindex: 3, dir: Direction.Out },
    { packet: ipv4Icmp({ type: 0, seq: 1 }), ifindex: 3, dir: Direction.In },
    { packet: ipv6Icmp({ seq: 2 }), ifindex: 1, dir: Direction.Out },
    { packet: ipv4Error(11, 0, ipv4Icmp({ ttl: 1 })), ifindex: 42, dir: Direction.Forward },
    { packet: ipv6Icmp({ type: 129, seq: 2, payload: 1000 }), ifindex: 1, dir: Direction.Unknown },
  ];

  it('writes one EPB per record, records their offsets and reads each one back', async () => {
    const file = path.join(dir, 'spool.pcapng');
    const spool = PcapngSpoolWriter.create(file, { application: 'icmpcap 0.1.0-test' });
    expect(spool.interfaceId(3, 'eth0')).toBe(0);
    expect(spool.interfaceId(1, 'lo')).toBe(1);
    expect(spool.interfaceId(3, 'ignored: already known')).toBe(0);
    const first = batchOf(specs.slice(0, 3), 1);
    const second = batchOf(specs.slice(3));
    const offsets = new Float64Array(8).fill(-1);
    expect(spool.append(first, 0, first.byteLength, offsets, 1)).toBe(3);
    expect(spool.append(second, 0, second.byteLength, offsets, 4)).toBe(2);
    expect(offsets[0]).toBe(-1);
    expect(offsets[6]).toBe(-1);
    expect([...offsets.subarray(1, 6)].every((o, i, all) => i === 0 || o > all[i - 1]!)).toBe(true);

    // Not closed yet: once the writes land, a crash must leave a readable file with everything appended.
    await spool.drained();
    const fd = fs.openSync(file, 'r');
    const original = [...recordsOf(first), ...recordsOf(second)];
    const ifaceIds = [0, 0, 1, 2, 1]; // ifindex 42 was never announced: it gets interface 2 on the fly
    original.forEach((record, i) => {
      const back = readSpoolRecord(fd, offsets[i + 1]!);
      const dir = record.dir === Direction.Forward ? Direction.Unknown : record.dir; // pcapng has in/out only
      expect(comparable(back)).toEqual({
        ...comparable(record),
        ifindex: ifaceIds[i],
        dir,
        ifaceId: ifaceIds[i],
      });
    });
    expect(() => readSpoolRecord(fd, 0)).toThrow(/No packet block at byte 0/);
    expect(() => readSpoolRecord(fd, fs.fstatSync(fd).size + 100)).toThrow(/ends before/);
    fs.closeSync(fd);
    spool.flush();
    spool.close();
    expect(() => spool.append(first, 0, first.byteLength)).toThrow(/closed/);
  });

  it('keeps every byte of packets of every length, whichever way a packet is copied', async () => {
    // Short packets are copied a word at a time and their last 0-3 bytes one by one; long ones as a whole.
    const lengths = Array.from({ length: 320 }, (_, k) => k); // ICMP payloads of 0..319 bytes
    const packets = lengths.map((n) => {
      const p = ipv4Icmp({ seq: n, payload: n });
      for (let b = 28; b < p.length; b++) p[b] = (b * 31 + n) & 0xff;
      return p;
    });
    const batch = batchOf(packets.map((packet) => ({ packet, ifindex: 1, dir: Direction.In })));
    const file = path.join(dir, 'lengths.pcapng');
    const spool = PcapngSpoolWriter.create(file, { application: 'icmpcap 0.1.0-test' });
    const offsets = new Float64Array(packets.length);
    expect(spool.append(batch, 0, batch.byteLength, offsets)).toBe(packets.length);
    await spool.drained();
    const fd = fs.openSync(file, 'r');
    try {
      const wrong = packets.filter((p, i) => Buffer.compare(readSpoolRecord(fd, offsets[i]!).data, p) !== 0);
      expect(wrong.map((p) => p.length)).toEqual([]);
    } finally {
      fs.closeSync(fd);
      spool.close();
    }
  });

  it('is a pcapng file that our reader and tshark read with the same records', async () => {
    const file = path.join(dir, 'spool2.pcapng');
    const spool = PcapngSpoolWriter.create(file, { application: 'icmpcap 0.1.0-test', snaplen: 262144 });
    spool.interfaceId(3, 'eth "0", x');
    const batch = batchOf(specs);
    spool.append(batch, 0, batch.byteLength);
    spool.close();
    await spool.drained();
    const { summary, records } = await readCaptureFileAll(file);
    expect(summary.error).toBeUndefined();
    expect(summary.interfaces.map((i) => i.name)).toEqual(['eth "0", x', 'if1', 'if42']);
    const original = recordsOf(batch);
    expect(records.map((r) => r.src + r.dst + r.type + r.tsNs)).toEqual(
      original.map((r) => r.src + r.dst + r.type + r.tsNs),
    );
    if (hasTools()) {
      const rows = tsharkFields(file, [...TSHARK_FIELDS, 'frame.packet_flags_direction'], '');
      expect(rows.map(normalizeTsharkRow)).toEqual(original.map(expectedTsharkRow));
      expect(rows.map((r) => Number(r.at(-1) || 0))).toEqual([2, 1, 2, 0, 0]);
      const info = execFileSync('capinfos', [file], { encoding: 'utf8' });
      expect(info).toMatch(/Capture application:\s+icmpcap 0.1.0-test/);
      expect(info).toMatch(/Capture oper-sys:\s+Linux/);
    }
  });

  it('reads many records through SpoolReader exactly as readSpoolRecord does, in any order', async () => {
    const file = path.join(dir, 'spool3.pcapng');
    const spool = PcapngSpoolWriter.create(file, { application: 'icmpcap' });
    const batch = batchOf(Array.from({ length: 3000 }, (_, i) => specs[i % specs.length]!));
    const offsets = new Float64Array(3000);
    spool.append(batch, 0, batch.byteLength, offsets); // about 1.5 MiB: more than one window
    const fd = fs.openSync(file, 'r');
    const reader = new SpoolReader(fd, undefined, spool);
    const order = [...offsets, ...[...offsets].reverse(), offsets[1500]!, offsets[0]!];
    await spool.drained(); // readSpoolRecord reads the file alone
    for (const offset of order)
      expect(comparable(reader.read(offset))).toEqual(comparable(readSpoolRecord(fd, offset)));
    expect(() => reader.read(1)).toThrow(/No packet block at byte 1/);
    // Records appended after the reader last looked are found too.
    const more = batchOf(specs.slice(0, 1));
    const moreOffsets = new Float64Array(1);
    spool.append(more, 0, more.byteLength, moreOffsets);
    expect(reader.read(moreOffsets[0]!).seq).toBe(1);
    fs.closeSync(fd);
    spool.close();
  });

  it('reads whole windows going through the file in order, and little more than the record jumping about', async () => {
    const file = path.join(dir, 'spool-jumps.pcapng');
    const spool = PcapngSpoolWriter.create(file, { application: 'icmpcap' });
    const n = 6000;
    const batch = batchOf(Array.from({ length: n }, (_, i) => specs[i % specs.length]!));
    const offsets = new Float64Array(n);
    spool.append(batch, 0, batch.byteLength, offsets); // about 3 MiB
    await spool.drained();
    const fd = fs.openSync(file, 'r');
    const reads = vi.spyOn(fs, 'readSync');
    try {
      const requested = (): number =>
        reads.mock.calls.reduce(
          (sum, call) => sum + (((call as unknown[])[3] as number | undefined) ?? 0),
          0,
        );
      // In file order (an export of the capture as it came): one read a window, the window whole.
      const inOrder = new SpoolReader(fd, 1 << 20, spool);
      for (const offset of offsets) inOrder.readPacket(offset);
      const size = fs.fstatSync(fd).size;
      expect(reads.mock.calls.length).toBeLessThanOrEqual(Math.ceil(size / (1 << 20)) + 1);
      // In an order unrelated to the file's (an export of a view sorted by RTT): a read of about the record
      // for each, not a window of 1 MiB each (6000 reads of 1 MiB: 6 GB for a 3 MiB file).
      reads.mockClear();
      const jumping = new SpoolReader(fd, 1 << 20, spool);
      let x = 12345;
      const order = Array.from(offsets, (o) => o);
      for (let k = order.length - 1; k > 0; k--) {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        const j = x % (k + 1);
        [order[k], order[j]] = [order[j]!, order[k]!];
      }
      for (const offset of order) {
        const back = [...jumping.readPacket(offset).data];
        expect(back).toEqual([...readSpoolRecord(fd, offset).data]);
      }
      reads.mockClear(); // readSpoolRecord's own reads above are not the reader's
      for (const offset of order) jumping.readPacket(offset);
      expect(requested()).toBeLessThan(n * 16384);
    } finally {
      reads.mockRestore();
      fs.closeSync(fd);
      spool.close();
    }
  });

  it.skipIf(!canStickDisk())(
    'never blocks the event loop on a disk that does not take writes, and reads every record back at once',
    async () => {
      const disk = stuckDisk(dir, 32);
      let spool: PcapngSpoolWriter | null = null;
      try {
        const file = path.join(disk.dir, 'spool.pcapng');
        spool = PcapngSpoolWriter.create(file, { application: 'icmpcap' });
        await spool.drained();
        const fd = fs.openSync(file, 'r');
        const reader = new SpoolReader(fd, 64 << 10, spool); // a small window: reads cross file and queue
        const fd2 = fs.openSync(file, 'r');
        const exportReader = new SpoolReader(fd2, 1 << 20, spool);
        disk.freeze(8);
        const all: { offset: number; record: DecodedRecord }[] = [];
        for (let b = 0; b < 20; b++) {
          const batch = batchOf(Array.from({ length: 500 }, (_, i) => specs[(b + i) % specs.length]!));
          const offsets = new Float64Array(500);
          expect(spool.append(batch, 0, batch.byteLength, offsets)).toBe(500);
          const records = recordsOf(batch);
          // Right after the append, while its write is stuck: every record reads back whole.
          records.forEach((record, i) => {
            all.push({ offset: offsets[i]!, record });
            expect(reader.read(offsets[i]!).seq).toBe(record.seq);
          });
          // The loop goes on: a timer fires while the disk still holds the writes.
          await new Promise((resolve) => setTimeout(resolve, 1));
          expect(disk.thawed()).toBe(false);
        }
        expect(spool.backlog).toBeGreaterThan(0);
        for (const { offset, record } of all) {
          const back = exportReader.readPacket(offset);
          expect([...back.data]).toEqual([...record.data]);
        }
        disk.thaw();
        await spool.drained();
        expect(spool.backlog).toBe(0);
        spool.close();
        await spool.drained();
        fs.closeSync(fd);
        fs.closeSync(fd2);
        // Written in order, whole: the file holds every record.
        const { summary, records } = await readCaptureFileAll(file);
        expect(summary.error).toBeUndefined();
        expect(records.map((r) => r.seq)).toEqual(all.map((a) => a.record.seq));
      } finally {
        spool?.discard();
        disk.remove();
      }
    },
    30_000,
  );

  it('waits a moment for more before writing a few bytes, unless someone waits for them or it closes', async () => {
    const writes = vi.spyOn(fs, 'writev');
    const file = path.join(dir, 'gathered.pcapng');
    const spool = PcapngSpoolWriter.create(file, { application: 'icmpcap' });
    try {
      await spool.drained();
      const batch = batchOf(specs.slice(0, 2));
      const offsets = new Float64Array(2);
      const n0 = writes.mock.calls.length;
      // A batch of a live capture: no write yet (one per batch before, a trip through the thread pool each).
      spool.append(batch, 0, batch.byteLength, offsets, 0);
      spool.append(batch, 0, batch.byteLength, offsets, 0);
      expect(writes.mock.calls.length).toBe(n0);
      expect(spool.writing).toBe(false);
      // Readable meanwhile.
      const fd = fs.openSync(file, 'r');
      try {
        expect(new SpoolReader(fd, 1 << 16, spool).read(offsets[1]!).seq).toBe(1);
      } finally {
        fs.closeSync(fd);
      }
      // Written once the delay is over (timers run in the order they are due: this one is due later).
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(writes.mock.calls.length).toBe(n0 + 1);
      await spool.drained();
      // Someone waits for the bytes: the write starts at once (its blocks are encoded in the pool first).
      spool.append(batch, 0, batch.byteLength);
      expect(spool.writing).toBe(false);
      const drained = spool.drained();
      expect(spool.writing).toBe(true);
      await drained;
      expect(writes.mock.calls.length).toBe(n0 + 2);
      // A megabyte or more: at once too.
      const big = batchOf(Array.from({ length: 8000 }, (_, i) => specs[i % specs.length]!));
      spool.append(big, 0, big.byteLength);
      expect(spool.writing).toBe(true);
      await spool.drained();
      expect(writes.mock.calls.length).toBe(n0 + 3);
      // Closing: at once.
      spool.append(batch, 0, batch.byteLength);
      expect(spool.writing).toBe(false);
      spool.close();
      expect(spool.writing).toBe(true);
      await spool.drained();
      expect(writes.mock.calls.length).toBe(n0 + 4);
      expect(fs.statSync(file).size).toBe(spool.size);
    } finally {
      writes.mockRestore();
      spool.close();
    }
  });

  it("hands a closed writer's pages to the next one (no fresh memory a segment), never while a write reads them", async () => {
    // A capture's spool is a chain of segment writers; each one's fresh pages cost a page fault per 4 KiB on the
    // capture's thread. Writers follow one another here as segments do, each closed while its writes are in flight.
    const batch = batchOf(Array.from({ length: 4000 }, (_, i) => specs[i % 3]!));
    const key = (r: DecodedRecord) => `${r.tsNs} ${r.dir} ${Buffer.from(r.data).toString('hex')}`;
    const expected = recordsOf(batch).map(key);
    const writers: PcapngSpoolWriter[] = [];
    const chain = (n: number, from: number): number => {
      const faults = process.resourceUsage().minorPageFault;
      for (let k = from; k < from + n; k++) {
        const w = PcapngSpoolWriter.create(path.join(dir, `chain-${k}.pcapng`), { application: 'icmpcap' });
        for (let b = 0; b < 12; b++) w.append(batch, 0, batch.byteLength);
        w.close();
        writers.push(w);
      }
      return process.resourceUsage().minorPageFault - faults;
    };
    const pause = () => new Promise((resolve) => setTimeout(resolve, 20));
    const appended = writers.length;
    chain(2, 0);
    await Promise.all(writers.map((w) => w.drained()));
    // 24 writers of 12 batches (about 7 MB each, two of the 4 MiB pages): 168 MB through the queues.
    let faults = 0;
    for (let k = 2; k < 26; k++) {
      faults += chain(1, k);
      await pause();
    }
    await Promise.all(writers.map((w) => w.drained()));
    const bytes = writers.slice(appended).reduce((sum, w) => sum + w.size, 0);
    // Each writer with pages of its own faulted nearly once per 4 KiB written (37 900 times here); with the
    // pages handed on, about 300 (the rest of the process).
    expect(faults).toBeLessThan(bytes / 4096 / 8);
    for (const k of [0, 1, 13, 25]) {
      const { summary, records } = await readCaptureFileAll(path.join(dir, `chain-${k}.pcapng`));
      expect(summary.error).toBeUndefined();
      expect(records.length).toBe(expected.length * 12);
      expect(records.slice(0, expected.length).map(key)).toEqual(expected);
      expect(records.slice(-expected.length).map(key)).toEqual(expected);
    }
  }, 60_000);

  it('stops writing with an error, never an exception out of the loop, when a queued batch is taken from it', async () => {
    const file = path.join(dir, 'detached.pcapng');
    const spool = PcapngSpoolWriter.create(file, { application: 'icmpcap' });
    try {
      const errors: Error[] = [];
      spool.onError = (err) => errors.push(err);
      await spool.drained();
      const batch = batchOf(specs);
      spool.append(batch, 0, batch.byteLength);
      // Against the contract (a batch handed over is never changed): moved to another owner before its write.
      const moved = structuredClone(batch, { transfer: [batch] });
      expect(batch.byteLength).toBe(0);
      await spool.drained();
      if (spool.encoder === 'native') {
        expect(spool.error?.message).toMatch(/within the batch/);
        expect(errors).toEqual([spool.error]);
      } else expect(spool.error).toBeNull(); // JavaScript encoded its blocks as they came
      expect(moved.byteLength).toBeGreaterThan(0);
    } finally {
      spool.discard();
    }
  });

  it('refuses a batch with a broken record whole, the interfaces it met too: the next batch announces them', async () => {
    for (const encoder of nativeSpoolEncoder() ? (['native', 'js'] as const) : (['js'] as const)) {
      const file = path.join(dir, `refused-${encoder}.pcapng`);
      const spool = PcapngSpoolWriter.create(file, { application: 'icmpcap', encoder });
      // A record of a new interface (42), then one whose captured length is not its length.
      const broken = batchOf([specs[3]!, specs[0]!]);
      const view = new DataView(broken);
      const second = alignRecord(view.getUint32(OFF.len, true));
      view.setUint16(second + OFF.capLen, view.getUint16(second + OFF.capLen, true) + 1, true);
      expect(() => spool.append(broken, 0, broken.byteLength)).toThrow(/does not match record length/);
      const good = batchOf([specs[3]!, specs[0]!]);
      spool.append(good, 0, good.byteLength);
      spool.close();
      await spool.drained();
      const { summary, records } = await readCaptureFileAll(file);
      expect(summary.error).toBeUndefined();
      expect(summary.interfaces.map((i) => i.name)).toEqual(['if42', 'if3']);
      expect(records.map((r) => r.seq)).toEqual(recordsOf(good).map((r) => r.seq));
    }
  });

  it('says what to do when the spool cannot be created', () => {
    expect(() =>
      PcapngSpoolWriter.create(path.join(dir, 'missing', 'x.pcapng'), { application: 'icmpcap' }),
    ).toThrow(/Cannot create the capture spool .*Choose a spool directory/);
  });
});
