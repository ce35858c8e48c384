/**
 * Damaged files: a truncated or corrupt capture yields everything before the damage and then a summary error
 * with the byte offset; random mutations never make the reader throw, hang or allocate what a length claims.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forEachRecord } from '../record.js';
import { readCaptureBytes, readCaptureFileAll, type FileSummary } from './read.js';
import { captureRealTraffic } from './testing/captures.js';
import { hasTools, NetnsLab } from './testing/lab.js';
import { recordBytes } from './testing/records.js';
import { xorshift32 } from '../testing/random.js';

interface Sample {
  name: string;
  bytes: Uint8Array;
  format: 'pcap' | 'pcapng';
  /** Offsets where a unit (file header, packet record, block) starts, and the file's end. */
  boundaries: number[];
}

/** Unit boundaries of a well-formed little-endian file, found independently of the reader. */
function boundariesOf(bytes: Uint8Array, format: 'pcap' | 'pcapng'): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = [0];
  let at = format === 'pcap' ? 24 : 0;
  while (at < bytes.length) {
    if (at > 0) out.push(at);
    at += format === 'pcap' ? 16 + view.getUint32(at + 8, true) : view.getUint32(at + 4, true);
  }
  out.push(bytes.length);
  return out;
}

function read(bytes: Uint8Array): { summary: FileSummary; records: Uint8Array[] } {
  const batches: ArrayBuffer[] = [];
  const summary = readCaptureBytes(bytes, (b) => batches.push(b.batch), 7);
  return { summary, records: recordBytes(batches) };
}

describe.skipIf(!hasTools())('damaged capture files', () => {
  const lab = new NetnsLab();
  let dir: string;
  const samples: Sample[] = [];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'icmpcap-damage-'));
    lab.setUp();
    let files;
    try {
      files = await captureRealTraffic(lab, dir, false);
    } finally {
      lab.tearDown();
    }
    for (const [name, file, format] of [
      ['Ethernet pcap', files.ethPcapNs, 'pcap'],
      ['SLL2 pcap', files.sll2Pcap, 'pcap'],
      ['two-interface pcapng', files.multiPcapng, 'pcapng'],
    ] as const) {
      const bytes = new Uint8Array(fs.readFileSync(file));
      samples.push({ name, bytes, format, boundaries: boundariesOf(bytes, format) });
    }
  }, 180_000);

  afterAll(() => {
    lab.tearDown();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('keeps every record before a cut at any byte and reports where the cut unit starts', () => {
    for (const sample of samples) {
      const full = read(sample.bytes);
      expect(full.summary.error).toBeUndefined();
      expect(full.records.length).toBeGreaterThan(10);
      const recordsAt = new Map<number, number>();
      for (const b of sample.boundaries) recordsAt.set(b, read(sample.bytes.subarray(0, b)).records.length);
      // Records compared as one byte string per prefix: deep equality of thousands of arrays is too slow.
      const fullBytes = Buffer.concat(full.records);
      const prefixEnd = [0];
      for (const r of full.records) prefixEnd.push(prefixEnd.at(-1)! + r.length);
      let unitStart = 0;
      for (let cut = 0; cut < sample.bytes.length; cut++) {
        if (sample.boundaries.includes(cut)) unitStart = cut;
        const { summary, records } = read(sample.bytes.subarray(0, cut));
        const isPrefix = Buffer.concat(records).equals(fullBytes.subarray(0, prefixEnd[records.length]));
        expect(isPrefix, `${sample.name} cut at ${cut}: records are not a prefix`).toBe(true);
        const cleanEnd = cut === unitStart && cut >= (sample.format === 'pcap' ? 24 : 28);
        if (cleanEnd) {
          expect(summary.error).toBeUndefined();
        } else {
          expect(summary.error?.offset, `${sample.name} cut at ${cut}`).toBe(unitStart);
          expect(summary.error?.message).toMatch(/truncated|too short/);
          expect(records.length).toBe(recordsAt.get(unitStart));
        }
      }
    }
  });

  it('reports corrupt pcapng blocks with their offset after the records before them', async () => {
    const sample = samples.find((s) => s.format === 'pcapng')!;
    const full = read(sample.bytes);
    const at = sample.boundaries[Math.floor(sample.boundaries.length / 2)]!; // some block in the middle
    const before = read(sample.bytes.subarray(0, at)).records;
    expect(before.length).toBeGreaterThan(0);
    const cases: [string, (v: DataView) => void, number, RegExp][] = [
      [
        'length beyond the file',
        (v) => v.setUint32(at + 4, 0x00fffff0, true),
        at,
        /truncated.*needs 16777200 bytes/,
      ],
      ['absurd length', (v) => v.setUint32(at + 4, 0x7ffffff0, true), at + 4, /invalid length 2147483632/],
      [
        'length not a multiple of 4',
        (v) => v.setUint32(at + 4, v.getUint32(at + 4, true) + 2, true),
        at + 4,
        /invalid length/,
      ],
      ['length below the minimum', (v) => v.setUint32(at + 4, 8, true), at + 4, /invalid length 8/],
      [
        'trailing length differs',
        (v) => v.setUint32(at + v.getUint32(at + 4, true) - 4, 4096, true),
        -1,
        /does not match its trailing copy 4096/,
      ],
      [
        'packet of an unknown interface',
        (v) => v.setUint32(at + 8, 9, true),
        at + 8,
        /interface 9, but the section has 2/,
      ],
      [
        'captured length beyond the block',
        (v) => v.setUint32(at + 20, 5000, true),
        at + 20,
        /5000 captured bytes/,
      ],
      [
        'section with a bad byte-order magic',
        (v) => {
          v.setUint32(at, 0x0a0d0d0a, true);
          v.setUint32(at + 8, 0x12345678, true);
        },
        at + 8,
        /byte-order magic/,
      ],
    ];
    for (const [what, damage, offset, message] of cases) {
      const bytes = sample.bytes.slice();
      const view = new DataView(bytes.buffer);
      expect(view.getUint32(at, true), 'the damaged block is a packet block').toBe(6);
      damage(view);
      const expectedOffset =
        offset === -1 ? at + new DataView(sample.bytes.buffer).getUint32(at + 4, true) - 4 : offset;
      const { summary, records } = read(bytes);
      expect(summary.error?.offset, what).toBe(expectedOffset);
      expect(summary.error?.message, what).toMatch(message);
      expect(records, what).toEqual(before);
      // The chunked file reader agrees, and a huge length does not make it allocate that much.
      const file = path.join(dir, 'damaged.pcapng');
      fs.writeFileSync(file, bytes);
      const fromFile = await readCaptureFileAll(file);
      expect(fromFile.summary).toEqual(summary);
    }
    expect(full.records.length).toBeGreaterThan(before.length);
  });

  it('reports a corrupt pcap record length and a file that is not a capture', () => {
    const sample = samples.find((s) => s.format === 'pcap')!;
    const at = sample.boundaries[5]!;
    const bytes = sample.bytes.slice();
    new DataView(bytes.buffer).setUint32(at + 8, 0x10000000, true);
    const { summary, records } = read(bytes);
    expect(summary.error?.offset).toBe(at);
    expect(summary.error?.message).toMatch(/268435456 captured bytes.*damaged/);
    expect(records).toEqual(read(sample.bytes.subarray(0, at)).records);
    const notCapture = read(new TextEncoder().encode('GIF89a, certainly not a capture')).summary.error;
    expect(notCapture?.offset).toBe(0);
    expect(notCapture?.message).toMatch(/not a pcap or pcapng file/);
  });

  it('survives 100,000 random mutations without throwing, hanging or inventing records', async () => {
    const random = xorshift32(0x1c3c4a9).next; // seeded: a failing mutation can be replayed
    const pick = <T>(items: readonly T[]): T => items[random() % items.length]!;
    const blockTypes = [0x0a0d0d0a, 1, 2, 3, 4, 5, 6, 0xbad, 0x80000001];
    let errors = 0;
    let recordsSeen = 0;
    for (let iteration = 0; iteration < 100_000; iteration++) {
      const sample = samples[iteration % samples.length]!;
      let bytes = sample.bytes.slice();
      const view = new DataView(bytes.buffer);
      const mutations = 1 + (random() % 3);
      for (let m = 0; m < mutations; m++) {
        const boundary = pick(sample.boundaries.slice(0, -1));
        switch (random() % 5) {
          case 0: // bit flips
            for (let k = 1 + (random() % 4); k > 0; k--)
              bytes[random() % bytes.length]! ^= 1 << (random() % 8);
            break;
          case 1: // truncation
            bytes = bytes.subarray(0, random() % bytes.length);
            break;
          case 2: {
            // a length field: pcapng block length / trailing length, pcap captured / original length
            const field = sample.format === 'pcapng' ? boundary + 4 : boundary + 8 + 4 * (random() % 2);
            const value = pick([
              0,
              4,
              8,
              12,
              16,
              0xffffffff,
              0x7fffffff,
              bytes.length + 4,
              random(),
              random() % 256,
            ]);
            if (field + 4 <= bytes.length) view.setUint32(field, value, random() % 2 === 0);
            break;
          }
          case 3: // block type (pcapng) or timestamp words (pcap)
            if (boundary + 4 <= bytes.length) view.setUint32(boundary, pick([...blockTypes, random()]), true);
            break;
          default: // a byte anywhere set to an interesting value
            bytes[random() % bytes.length] = pick([0, 0xff, 0x80, 0x7f, 1]);
        }
      }
      const summary = readCaptureBytes(bytes, (batch) => {
        // Every record the reader emits must be well formed.
        expect(forEachRecord(batch.batch, () => undefined)).toBe(batch.records);
        recordsSeen += batch.records;
      });
      if (summary.error) {
        errors++;
        expect(summary.error.offset).toBeGreaterThanOrEqual(0);
        expect(summary.error.offset).toBeLessThanOrEqual(bytes.length);
      }
      // A record needs at least 20 bytes of IP (a fragment or a cut ICMP header is recorded, flagged) and
      // 16 bytes of framing in the file.
      expect(summary.records).toBeLessThanOrEqual(bytes.length / 36);
      if (iteration % 1000 === 0) {
        // Now and then through the chunked file reader too.
        const file = path.join(dir, 'fuzz.bin');
        fs.writeFileSync(file, bytes);
        expect((await readCaptureFileAll(file)).summary).toEqual(summary);
      }
    }
    expect(errors).toBeGreaterThan(10_000); // the mutations did damage files
    expect(recordsSeen).toBeGreaterThan(100_000); // and files still gave records
  });
});
