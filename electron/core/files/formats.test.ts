/**
 * Every container variant and link type the reader supports, written byte by byte and cross-checked with
 * tshark's dissection of the same file.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeRecord, Direction, REC_F_TRUNCATED, type DecodedRecord } from '../record.js';
import { LINKTYPE } from './linktypes.js';
import { encodeRecord, MAX_RECORD_SIZE } from './packet.js';
import { openCaptureFile, readCaptureBytes, readCaptureFileAll, type CaptureBatch } from './read.js';
import { link, PcapngBuilder, pcapFile } from './testing/file-builder.js';
import { hasTools, tsharkFields } from './testing/lab.js';
import { ipv4Error, ipv4Icmp, ipv6Icmp } from './testing/packets.js';
import { expectedTsharkRow, normalizeTsharkRow, recordBytes, TSHARK_FIELDS } from './testing/records.js';

const T0 = 1_795_329_960_123_456_789n;
const V4 = [
  ipv4Icmp({ type: 8, id: 77, seq: 1 }),
  ipv4Icmp({ type: 0, id: 77, seq: 1, ttl: 63 }),
  ipv4Error(11, 0, ipv4Icmp({ ttl: 1 }), { src: [10, 1, 1, 1] }),
  ipv4Error(3, 4, ipv4Icmp({ payload: 1400 }), { src: [10, 1, 1, 1] }),
];
const V6 = [
  ipv6Icmp({ type: 128, id: 5, seq: 9 }),
  ipv6Icmp({ type: 129, id: 5, seq: 9, ttl: 60 }),
  ipv6Icmp({ type: 1, code: 3, id: 0, seq: 0 }),
  ipv6Icmp({ type: 2, code: 0, id: 0, seq: 1280, payload: 200 }),
];
const ALL = [...V4, ...V6];

/** The records a live source would have produced for these IP packets. */
function expected(packets: Uint8Array[], tsNs: (i: number) => bigint, ifindex = 0, dir = Direction.Unknown) {
  return packets.map((packet, i) => {
    const out = new Uint8Array(MAX_RECORD_SIZE);
    encodeRecord(packet, { tsNs: tsNs(i), ifindex, dir, origLen: packet.length }, out, 0);
    return decodeRecord(new DataView(out.buffer), 0);
  });
}

const nsEach = (i: number): bigint => T0 + BigInt(i) * 1_000_001n;
const usEach = (i: number): bigint => (nsEach(i) / 1000n) * 1000n;

function comparable(records: DecodedRecord[]) {
  return records.map((r) => ({ ...r, data: [...r.data] }));
}

describe('capture file formats', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'icmpcap-formats-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function open(name: string, bytes: Uint8Array) {
    const file = path.join(dir, name);
    fs.writeFileSync(file, bytes);
    const contents = await readCaptureFileAll(file);
    // The in-memory reader must agree with the chunked file reader.
    const batches: CaptureBatch[] = [];
    const summary = readCaptureBytes(bytes, (b) => batches.push(b));
    expect(summary).toEqual(contents.summary);
    expect(recordBytes(batches.map((b) => b.batch))).toEqual(
      recordBytes(contents.batches.map((b) => b.batch)),
    );
    return { file, ...contents };
  }

  function checkWithTshark(file: string, records: DecodedRecord[]) {
    if (!hasTools()) return;
    const rows = tsharkFields(file, TSHARK_FIELDS, 'icmp or icmpv6', ['-o', 'ip.defragment:FALSE']);
    expect(rows.map(normalizeTsharkRow)).toEqual(records.map(expectedTsharkRow));
  }

  // AF_INET6 as BSDs, FreeBSD and macOS write it (tshark does not take Linux's 10 here; we do, tested below).
  const af6 = [24, 28, 30];
  const pcapCases: [string, number, Uint8Array[], (ip: Uint8Array, i: number, le: boolean) => Uint8Array][] =
    [
      ['Ethernet', LINKTYPE.ETHERNET, ALL, (ip) => link.ethernet(ip)],
      ['Ethernet with an 802.1Q tag', LINKTYPE.ETHERNET, ALL, (ip) => link.ethernet(ip, [0x8100])],
      [
        'Ethernet with 802.1ad + 802.1Q tags',
        LINKTYPE.ETHERNET,
        ALL,
        (ip) => link.ethernet(ip, [0x88a8, 0x8100]),
      ],
      ['raw IP (101)', LINKTYPE.RAW, ALL, (ip) => ip],
      ['raw IP (DLT 12)', LINKTYPE.RAW_DLT12, ALL, (ip) => ip],
      ['raw IP (DLT 14)', LINKTYPE.RAW_DLT14, ALL, (ip) => ip],
      ['IPv4 (228)', LINKTYPE.IPV4, V4, (ip) => ip],
      ['IPv6 (229)', LINKTYPE.IPV6, V6, (ip) => ip],
      [
        'null, AF in the file byte order',
        LINKTYPE.NULL,
        ALL,
        (ip, i, le) => link.null(ip, ip[0]! >> 4 === 6 ? af6[i % 3]! : 2, le),
      ],
      [
        'null, AF in the other byte order',
        LINKTYPE.NULL,
        ALL,
        (ip, i, le) => link.null(ip, ip[0]! >> 4 === 6 ? 24 : 2, !le),
      ],
      ['null, Linux AF_INET6', LINKTYPE.NULL, V6, (ip, _i, le) => link.null(ip, 10, le)],
      ['loop (108)', LINKTYPE.LOOP, ALL, (ip) => link.null(ip, ip[0]! >> 4 === 6 ? 24 : 2, false)],
    ];

  for (const [name, linkType, packets, wrap] of pcapCases) {
    for (const le of [true, false]) {
      for (const nano of [true, false]) {
        it(`reads pcap ${name}, ${le ? 'little' : 'big'}-endian, ${nano ? 'ns' : 'us'}`, async () => {
          const frames = packets.map((ip, i) => ({ tsNs: nsEach(i), frame: wrap(ip, i, le) }));
          const { file, summary, records } = await open('link.pcap', pcapFile(linkType, frames, le, nano));
          expect(summary).toMatchObject({
            format: 'pcap',
            records: packets.length,
            skippedNonIcmp: 0,
            sections: 1,
          });
          expect(summary.linkTypes).toEqual([linkType]);
          expect(comparable(records)).toEqual(comparable(expected(packets, nano ? nsEach : usEach)));
          if (le && nano && !name.includes('Linux')) checkWithTshark(file, records);
        });
      }
    }
  }

  it('takes the direction from Linux cooked headers and skips non-IP frames', async () => {
    const arp = new Uint8Array(28);
    const frames = [
      { tsNs: nsEach(0), frame: link.sll(V4[0]!, 4) }, // PACKET_OUTGOING
      { tsNs: nsEach(1), frame: link.sll(V4[1]!, 0) }, // PACKET_HOST
      { tsNs: nsEach(2), frame: concatArp(arp) },
    ];
    const { summary, records } = await open('sll.pcap', pcapFile(LINKTYPE.LINUX_SLL, frames));
    expect(summary).toMatchObject({ records: 2, skippedNonIcmp: 1 });
    expect(records.map((r) => r.dir)).toEqual([Direction.Out, Direction.In]);
  });

  it('marks packets cut by the snap length as truncated', async () => {
    const ip = V4[3]!;
    const frame = link.ethernet(ip);
    const { records } = await open(
      'snap.pcap',
      pcapFile(
        LINKTYPE.ETHERNET,
        [{ tsNs: T0, frame: frame.subarray(0, 96), origLen: frame.length }],
        true,
        true,
        96,
      ),
    );
    expect(records[0]).toMatchObject({ capLen: 82, origLen: ip.length, flags: REC_F_TRUNCATED });
  });

  it('reads pcapng sections of both byte orders, all packet blocks, tsresol and tsoffset', async () => {
    const b = new PcapngBuilder();
    b.section(true)
      .interface(LINKTYPE.ETHERNET, { name: 'eth0' }) // default resolution: microseconds
      .interface(LINKTYPE.RAW, { name: 'lo', tsresol: 9 })
      .block(0x00000bad, Uint8Array.of(1, 2, 3, 4, 5)) // unknown: skipped
      .enhanced(0, nsEach(0) / 1000n, link.ethernet(ALL[0]!), undefined, 2)
      .enhanced(1, nsEach(1), ALL[1]!, undefined, 1)
      .block(4, new Uint8Array(4)) // name resolution block
      .enhanced(0, nsEach(2) / 1000n, link.ethernet(ALL[2]!))
      .section(false)
      .interface(LINKTYPE.RAW, { name: 'ms', tsresol: 3, snaplen: 64 })
      .interface(LINKTYPE.ETHERNET, { name: 'pow2', tsresol: 0x80 | 20, tsoffset: 100n })
      .enhanced(1, 5n << 20n, link.ethernet(ALL[3]!)) // 5 s after the offset
      .obsolete(0, 1_795_329_960_001n, ALL[4]!, 1)
      .simple(ALL[5]!.subarray(0, 64), ALL[5]!.length) // simple packet: interface 0, no timestamp
      .enhanced(0, 1_795_329_961_002n, ALL[6]!)
      .block(5, new Uint8Array(12)); // interface statistics block
    const { file, summary, records } = await open('sections.pcapng', b.bytes());
    expect(summary).toMatchObject({ format: 'pcapng', sections: 2, records: 7, skippedNonIcmp: 0 });
    expect(summary.interfaces).toEqual([
      { id: 0, name: 'eth0', linkType: 1 },
      { id: 1, name: 'lo', linkType: 101 },
      { id: 2, name: 'ms', linkType: 101 },
      { id: 3, name: 'pow2', linkType: 1 },
    ]);
    expect(summary.linkTypes).toEqual([1, 101]);
    expect(records.map((r) => r.ifindex)).toEqual([0, 1, 0, 3, 2, 2, 2]);
    expect(records.map((r) => r.dir)).toEqual([
      Direction.Out,
      Direction.In,
      Direction.Unknown,
      Direction.Unknown,
      Direction.In,
      Direction.Unknown,
      Direction.Unknown,
    ]);
    expect(records.map((r) => r.tsNs)).toEqual([
      usEach(0),
      nsEach(1),
      usEach(2),
      105_000_000_000n,
      1_795_329_960_001_000_000n,
      0n,
      1_795_329_961_002_000_000n,
    ]);
    expect(records[5]).toMatchObject({ capLen: 64, origLen: ALL[5]!.length, flags: REC_F_TRUNCATED | 4 });
    if (hasTools()) {
      // tshark agrees on the packets; timestamps are checked above (tshark has none for simple packets, and
      // tshark 4.0 mixes up interface names across sections, so those are not compared with it).
      const rows = tsharkFields(file, TSHARK_FIELDS, 'icmp or icmpv6');
      const dropTime = (row: string) => row.split(' ').slice(1).join(' ');
      expect(rows.map((r) => dropTime(normalizeTsharkRow(r)))).toEqual(
        records.map((r) => dropTime(expectedTsharkRow(r))),
      );
    }
  });

  it('reads a large file in chunks exactly like the in-memory reader, with progress and cancel', async () => {
    const b = new PcapngBuilder().section(true).interface(LINKTYPE.RAW, { name: 'raw', tsresol: 9 });
    const count = 60_000;
    for (let i = 0; i < count; i++) b.enhanced(0, T0 + BigInt(i), ALL[i % ALL.length]!);
    const bytes = b.bytes();
    expect(bytes.length).toBeGreaterThan(8 << 20); // more than two read chunks
    const file = path.join(dir, 'large.pcapng');
    fs.writeFileSync(file, bytes);
    const progress: number[] = [];
    const batches: ArrayBuffer[] = [];
    const reader = openCaptureFile(file, { batchRecords: 5000, onProgress: (done) => progress.push(done) });
    let result = await reader.next();
    while (!result.done) {
      expect(result.value.records).toBeLessThanOrEqual(5000);
      batches.push(result.value.batch);
      result = await reader.next();
    }
    expect(result.value).toMatchObject({ records: count });
    expect(progress.at(-1)).toBe(bytes.length);
    const inMemory: ArrayBuffer[] = [];
    readCaptureBytes(bytes, (batch) => inMemory.push(batch.batch), 5000);
    const fromFile = Buffer.concat(batches.map((x) => new Uint8Array(x)));
    // Buffer.equals, not toEqual: a deep comparison of megabytes is far too slow.
    expect(fromFile.equals(Buffer.concat(inMemory.map((x) => new Uint8Array(x))))).toBe(true);
    expect(fromFile.length).toBeGreaterThan(count * 72);

    // Batches that start small (the first run cold code) and double up to batchRecords: the same bytes.
    const ramped = openCaptureFile(file, { batchRecords: 5000, firstBatchRecords: 64 });
    const sizes: number[] = [];
    const rampedBatches: ArrayBuffer[] = [];
    for (let r = await ramped.next(); !r.done; r = await ramped.next()) {
      sizes.push(r.value.records);
      rampedBatches.push(r.value.batch);
    }
    expect(sizes.slice(0, 8)).toEqual([64, 128, 256, 512, 1024, 2048, 4096, 5000]);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(count);
    expect(Buffer.concat(rampedBatches.map((x) => new Uint8Array(x))).equals(fromFile)).toBe(true);

    const controller = new AbortController();
    const cancelled = openCaptureFile(file, { batchRecords: 5000, signal: controller.signal });
    await cancelled.next();
    controller.abort();
    await expect(cancelled.next()).rejects.toThrow(/abort/i);
  });
});

function concatArp(arp: Uint8Array): Uint8Array {
  const frame = link.sll(new Uint8Array(0), 0);
  const out = new Uint8Array(frame.length + arp.length);
  out.set(frame);
  new DataView(out.buffer).setUint16(14, 0x0806); // ETH_P_ARP
  out.set(arp, frame.length);
  return out;
}
