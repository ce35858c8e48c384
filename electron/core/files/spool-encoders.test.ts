/**
 * The spool's two block encoders (the native addon's and JavaScript's) write the same bytes, record the same
 * locations and refuse the same records, on batches no capture test makes: any captured length, every
 * direction, pad records, hundreds of interfaces appearing mid-batch, timestamps near 2^64.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alignRecord, OFF, REC_F_PAD, RECORD_HEADER_SIZE } from '../record.js';
import { nativeSpoolEncoder } from '../native.js';
import { PcapngSpoolWriter, SpoolReader } from './spool.js';
import { xorshift32 } from '../testing/random.js';
import { hasTools } from './testing/lab.js';

/** Seeded (a failure can be replayed from its seed): numbers in [0, 1). */
const random = (seed: number): (() => number) => xorshift32(seed).fraction;

interface RawRecord {
  capLen: number;
  ifindex: number;
  dir: number;
  tsHi: number;
  tsLo: number;
  origLen: number;
}

/** Records as the addon delivers them (8-byte aligned, any bytes after the header), pad records between. */
function rawBatch(rnd: () => number, count: number, ifindexes: number[]): ArrayBuffer {
  const records: (RawRecord | { pad: number })[] = [];
  for (let i = 0; i < count; i++) {
    if (rnd() < 0.05) records.push({ pad: 8 + Math.floor(rnd() * 40) });
    const big = rnd() < 0.05;
    const capLen = big ? 257 + Math.floor(rnd() * 3000) : Math.floor(rnd() * 257);
    records.push({
      capLen,
      ifindex: ifindexes[Math.floor(rnd() * ifindexes.length)]!,
      dir: Math.floor(rnd() * 5), // 4 is no direction the kernel writes: no flags, as 2 and 3
      tsHi: Math.floor(rnd() * 2 ** 32),
      tsLo: Math.floor(rnd() * 2 ** 32),
      origLen: capLen + Math.floor(rnd() * 100),
    });
  }
  let bytes = 0;
  for (const r of records)
    bytes += 'pad' in r ? alignRecord(r.pad) : alignRecord(RECORD_HEADER_SIZE + r.capLen);
  const out = new Uint8Array(bytes);
  const view = new DataView(out.buffer);
  for (let k = 0; k < bytes; k++) out[k] = (rnd() * 256) | 0; // nothing depends on zeroed padding
  let at = 0;
  for (const r of records) {
    if ('pad' in r) {
      view.setUint32(at + OFF.len, r.pad, true);
      view.setUint16(at + OFF.flags, REC_F_PAD, true);
      at += alignRecord(r.pad);
      continue;
    }
    const len = RECORD_HEADER_SIZE + r.capLen;
    view.setUint32(at + OFF.len, len, true);
    view.setUint16(at + OFF.flags, 0, true);
    out[at + OFF.dir] = r.dir;
    view.setUint32(at + OFF.tsNs, r.tsLo, true);
    view.setUint32(at + OFF.tsNs + 4, r.tsHi, true);
    view.setUint32(at + OFF.ifindex, r.ifindex, true);
    view.setUint32(at + OFF.origLen, r.origLen, true);
    view.setUint16(at + OFF.capLen, r.capLen, true);
    at += alignRecord(len);
  }
  return out.buffer;
}

const native = nativeSpoolEncoder();

describe.runIf(native !== null)('spool encoders: native and JavaScript', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'icmpcap-spool-enc-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** Appends the same batches to a spool of each encoder; returns both files and both location lists. */
  function both(
    batches: ArrayBuffer[],
    announce: [number, string][] = [],
    name = 'x',
    base = 0,
    ifname?: (ifindex: number) => string,
  ) {
    const files: Buffer[] = [];
    const locations: number[][] = [];
    const counts: number[][] = [];
    for (const encoder of ['native', 'js'] as const) {
      const file = path.join(dir, `${name}-${encoder}.pcapng`);
      const spool = PcapngSpoolWriter.create(file, { application: 'test', snaplen: 262144, encoder });
      expect(spool.encoder).toBe(encoder);
      for (const [ifindex, ifname] of announce) spool.interfaceId(ifindex, ifname);
      const offsets: number[] = [];
      const appended: number[] = [];
      for (const batch of batches) {
        const out = new Float64Array(batch.byteLength / 72 + 1).fill(-1);
        const n = spool.append(batch, 0, batch.byteLength, out, 0, base, ifname);
        appended.push(n);
        offsets.push(...out.subarray(0, n));
        expect(out[n]).toBe(-1); // nothing written past the records appended
      }
      spool.flush();
      spool.close();
      files.push(fs.readFileSync(file));
      locations.push(offsets);
      counts.push(appended);
    }
    return { files, locations, counts };
  }

  it('write the same bytes and the same locations, over 40 random batches', () => {
    const rnd = random(20261201);
    const ifindexes = [1, 2, 3, 0, 0xffffffff, 7];
    for (let k = 0; k < 300; k++) ifindexes.push(1000 + Math.floor(rnd() * 1e6));
    const batches: ArrayBuffer[] = [];
    for (let b = 0; b < 40; b++) batches.push(rawBatch(rnd, 1 + Math.floor(rnd() * 2000), ifindexes));
    const { files, locations, counts } = both(batches, [
      [2, 'eth0'],
      [7, 'wlan0'],
    ]);
    expect(counts[0]).toEqual(counts[1]);
    expect(counts[0]!.reduce((a, b) => a + b, 0)).toBeGreaterThan(30_000);
    expect(locations[0]).toEqual(locations[1]);
    expect(files[0]!.length).toBe(files[1]!.length);
    expect(files[0]!.equals(files[1]!)).toBe(true);
  });

  it('encode in the thread pool on the way to the file: the same file, and the same bytes read before it', async () => {
    const rnd = random(424242);
    const ifindexes = [1, 2, 3, 9];
    for (let k = 0; k < 40; k++) ifindexes.push(2000 + k);
    const batches: ArrayBuffer[] = [];
    for (let b = 0; b < 30; b++) batches.push(rawBatch(rnd, 1 + Math.floor(rnd() * 4000), ifindexes));
    // The reference: JavaScript's blocks, written by flush().
    const { files, locations } = both(batches, [], 'pool-ref');
    const file = path.join(dir, 'pool.pcapng');
    const spool = PcapngSpoolWriter.create(file, { application: 'test', snaplen: 262144, encoder: 'native' });
    const fd = fs.openSync(file, 'r');
    const refFd = fs.openSync(path.join(dir, 'pool-ref-js.pcapng'), 'r');
    try {
      const reader = new SpoolReader(fd, 1 << 16, spool);
      const ref = new SpoolReader(refFd, 1 << 16);
      const got: number[] = [];
      let whileWriting = 0;
      for (const batch of batches) {
        const out = new Float64Array(batch.byteLength / 72 + 1);
        const n = spool.append(batch, 0, batch.byteLength, out, 0);
        got.push(...out.subarray(0, n));
        if (spool.writing) whileWriting++;
        // Blocks just laid out, read back at once: before their write starts, or while the pool encodes them.
        for (const k of [got.length - n, got.length - 1, Math.floor(rnd() * got.length)]) {
          const offset = got[k]!;
          expect({ ...reader.readPacket(offset), data: [] }).toEqual({ ...ref.readPacket(offset), data: [] });
          expect(reader.readPacket(offset).data).toEqual(ref.readPacket(offset).data);
        }
        if (rnd() < 0.5) await new Promise((resolve) => setImmediate(resolve));
      }
      spool.close();
      await spool.drained();
      expect(whileWriting).toBeGreaterThan(0);
      expect(got).toEqual(locations[1]);
      const written = fs.readFileSync(file);
      expect(written.length).toBe(files[1]!.length);
      expect(written.equals(files[1]!)).toBe(true);
    } finally {
      fs.closeSync(fd);
      fs.closeSync(refFd);
    }
  });

  it('each location is a packet block of the record it names', () => {
    const rnd = random(7);
    const batch = rawBatch(rnd, 3000, [5, 6, 9]);
    const file = path.join(dir, 'read-back.pcapng');
    const spool = PcapngSpoolWriter.create(file, { application: 'test', encoder: 'native' });
    const offsets = new Float64Array(3000);
    const n = spool.append(batch, 0, batch.byteLength, offsets, 0);
    const fd = fs.openSync(file, 'r');
    try {
      const reader = new SpoolReader(fd, 1 << 20, spool);
      const view = new DataView(batch);
      let i = 0;
      for (let at = 0; at + 8 <= batch.byteLength;) {
        const len = view.getUint32(at + OFF.len, true);
        if (!(view.getUint16(at + OFF.flags, true) & REC_F_PAD)) {
          const packet = reader.readPacket(offsets[i++]!);
          const capLen = view.getUint16(at + OFF.capLen, true);
          expect(packet.data).toEqual(new Uint8Array(batch, at + RECORD_HEADER_SIZE, capLen));
          expect(packet.tsLo).toBe(view.getUint32(at + OFF.tsNs, true));
          expect(packet.origLen).toBe(view.getUint32(at + OFF.origLen, true));
        }
        at += alignRecord(len);
      }
      expect(i).toBe(n);
    } finally {
      fs.closeSync(fd);
      spool.close();
    }
  });

  it('refuse a broken record with the same message, wherever it is', () => {
    const rnd = random(99);
    const batch = rawBatch(rnd, 50, [1, 2]);
    const view = new DataView(batch);
    // The 20th record: its length first too long for the batch, then not 72 + its captured length.
    let at = 0;
    for (let i = 0; i < 20;) {
      if (!(view.getUint16(at + OFF.flags, true) & REC_F_PAD)) i++;
      if (i < 20) at += alignRecord(view.getUint32(at + OFF.len, true));
    }
    const len = view.getUint32(at + OFF.len, true);
    const errors = (mutate: () => void, restore: () => void) => {
      mutate();
      const messages = (['native', 'js'] as const).map((encoder) => {
        const spool = PcapngSpoolWriter.create(path.join(dir, `bad-${encoder}.pcapng`), {
          application: 'test',
          encoder,
        });
        try {
          spool.append(batch, 0, batch.byteLength, new Float64Array(60), 0);
          return 'no error';
        } catch (err) {
          return (err as Error).message;
        } finally {
          spool.close();
        }
      });
      restore();
      return messages;
    };
    const tooLong = errors(
      () => view.setUint32(at + OFF.len, batch.byteLength, true),
      () => view.setUint32(at + OFF.len, len, true),
    );
    expect(tooLong[0]).toBe(`bad record length ${batch.byteLength} at byte ${at} of the batch`);
    expect(tooLong[1]).toBe(tooLong[0]);
    const capLen = view.getUint16(at + OFF.capLen, true);
    const mismatch = errors(
      () => view.setUint16(at + OFF.capLen, capLen + 1, true),
      () => view.setUint16(at + OFF.capLen, capLen, true),
    );
    expect(mismatch[0]).toBe(
      `captured length ${capLen + 1} does not match record length ${len} at byte ${at}`,
    );
    expect(mismatch[1]).toBe(mismatch[0]);
  });

  it('turns arguments out of range into a TypeError, never a read or write outside them', () => {
    const batch = rawBatch(random(3), 10, [1]);
    const out = new Uint8Array(1 << 16);
    const result = new Float64Array(4);
    const table = Uint32Array.of(1, 0);
    const call = (args: Partial<Record<number, unknown>>) => {
      const base: unknown[] = [batch, 0, batch.byteLength, out, 0, table, null, 0, 0, result];
      for (const [k, v] of Object.entries(args)) base[Number(k)] = v;
      return () => (native!.blocks as (...a: unknown[]) => number)(...base);
    };
    expect(call({ 1: batch.byteLength + 8 })).toThrow(TypeError);
    expect(call({ 2: batch.byteLength + 8 })).toThrow(/within the batch/);
    expect(call({ 1: -1 })).toThrow(TypeError);
    expect(call({ 1: 0.5 })).toThrow(TypeError);
    expect(call({ 0: new SharedArrayBuffer(8) })).toThrow(/ArrayBuffer/);
    expect(call({ 3: new Uint16Array(8) })).toThrow(/Uint8Array/);
    expect(call({ 4: out.length + 1 })).toThrow(/outAt/);
    expect(call({ 5: Uint32Array.of(2, 0, 1, 1) })).toThrow(/sorted/);
    expect(call({ 6: new Float32Array(4) })).toThrow(/offsets/);
    expect(call({ 7: 5, 6: new Float64Array(4) })).toThrow(/offsetsAt/);
    expect(call({ 9: new Float64Array(3) })).toThrow(/result/);
    // A page too small for the next block: it stops there and says how much it needs.
    expect(call({ 3: new Uint8Array(40) })()).toBe(4);
    expect(result[2]).toBe(0);
    expect(result[3]).toBeGreaterThan(40 - 1);
    // Room for three locations: it stops at the fourth.
    expect(call({ 6: new Float64Array(3) })()).toBe(5);
    expect(result[2]).toBe(3);
    // An interface not in the table: it stops at its record and names it.
    expect(call({ 5: new Uint32Array(0) })()).toBe(1);
    const first =
      new DataView(batch).getUint16(OFF.flags, true) & REC_F_PAD
        ? alignRecord(new DataView(batch).getUint32(0, true))
        : 0;
    expect(result).toEqual(Float64Array.of(first, 0, 0, 1));
  });

  it('encodes runs in the pool only as they were laid out, and refuses a malformed run before queuing it', async () => {
    const batch = rawBatch(random(5), 40, [1, 2]);
    const table = Uint32Array.of(1, 0, 2, 1);
    const result = new Float64Array(4);
    expect(native!.blocks(batch, 0, batch.byteLength, null, 0, table, null, 0, 0, result)).toBe(0);
    const length = result[1]!;
    const reference = new Uint8Array(length);
    expect(native!.blocks(batch, 0, batch.byteLength, reference, 0, table, null, 0, 0, result)).toBe(0);
    const run = { batch, byteOffset: 0, byteLength: batch.byteLength, interfaces: table, outAt: 8, length };
    const encode = (runs: unknown[]) =>
      new Promise<Error | undefined>((resolve) => native!.runs(runs as never, resolve));
    const out = new Uint8Array(length + 16).fill(0xee);
    expect(await encode([{ ...run, out }])).toBeUndefined();
    expect(out.subarray(8, 8 + length)).toEqual(reference);
    expect([...out.subarray(0, 8), ...out.subarray(8 + length)]).toEqual(new Array(16).fill(0xee));
    // A run that does not come out as long as its layout said: an error, said as one.
    const err = await encode([{ ...run, out: new Uint8Array(length + 16), length: length - 4 }]);
    expect(err?.message).toMatch(/did not encode as it was laid out/);
    // Malformed: a TypeError at once, and no callback.
    let called = 0;
    const bad = (patch: object) => () => native!.runs([{ ...run, out, ...patch }] as never, () => called++);
    expect(bad({ outAt: length + 16 })).toThrow(/within out/);
    expect(bad({ byteLength: batch.byteLength + 8 })).toThrow(/within the batch/);
    expect(bad({ interfaces: Uint32Array.of(2, 0, 1, 1) })).toThrow(/sorted/);
    expect(bad({ out: new Uint16Array(4) })).toThrow(/Uint8Array/);
    expect(() => native!.runs({} as never, () => called++)).toThrow(TypeError);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(called).toBe(0);
  });

  it.runIf(hasTools())('a spool the addon wrote reads back in tshark, packet for packet', () => {
    const batch = rawBatch(random(11), 500, [1, 2, 3]);
    const { files } = both([batch], [], 'tshark');
    expect(files[0]!.equals(files[1]!)).toBe(true);
    const expected: string[] = [];
    const view = new DataView(batch);
    for (let at = 0; at + 8 <= batch.byteLength; at += alignRecord(view.getUint32(at + OFF.len, true))) {
      if (view.getUint16(at + OFF.flags, true) & REC_F_PAD) continue;
      expected.push(`${view.getUint16(at + OFF.capLen, true)}\t${view.getUint32(at + OFF.origLen, true)}`);
    }
    const file = path.join(dir, 'tshark-native.pcapng');
    const fields = ['-T', 'fields', '-e', 'frame.cap_len', '-e', 'frame.len'];
    const out = execFileSync('tshark', ['-r', file, ...fields], { encoding: 'utf8' });
    expect(out.trim().split('\n')).toEqual(expected);
  });
});
