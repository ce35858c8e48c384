/**
 * Real ICMP captured by tcpdump and tshark in network namespaces: our reader must see what tshark sees, and
 * tshark must see in our exports exactly the records we wrote.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeLabel, typeLabel } from '../../common/icmp.js';
import { Direction, REC_F_FRAGMENT, REC_F_NOT_FIRST, type DecodedRecord } from '../record.js';
import { exportRecords, type ExportRow } from './export.js';
import { readCaptureFileAll, type CaptureFileContents } from './read.js';
import { captureRealTraffic, type CaptureSet } from './testing/captures.js';
import { hasTools, NetnsLab, tsharkFields } from './testing/lab.js';
import {
  expectedTsharkRow,
  normalizeTsharkRow,
  parseCsv,
  recordBytes,
  setRecordField,
  TSHARK_FIELDS,
  TSHARK_ICMP_FILTER,
} from './testing/records.js';
import { directionName, isoTimeNs, secondsText } from './text-write.js';

const NO_REASSEMBLY = ['-o', 'ip.defragment:FALSE', '-o', 'ipv6.defragment:FALSE'];

describe.skipIf(!hasTools())('capture files with real traffic', () => {
  const lab = new NetnsLab();
  let dir: string;
  let files: CaptureSet;
  const contents = new Map<string, CaptureFileContents>();

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'icmpcap-files-'));
    lab.setUp();
    try {
      files = await captureRealTraffic(lab, dir);
    } finally {
      lab.tearDown();
    }
    for (const file of Object.values(files) as string[]) contents.set(file, await readCaptureFileAll(file));
  }, 60_000);

  afterAll(() => {
    lab.tearDown();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  function tsharkRows(file: string, extra: string[] = []): string[][] {
    return tsharkFields(file, [...TSHARK_FIELDS, ...extra], TSHARK_ICMP_FILTER, NO_REASSEMBLY);
  }

  it.each([
    ['ethPcapNs', 'pcap', 1],
    ['ethPcapUs', 'pcap', 1],
    ['sllPcap', 'pcap', 113],
    ['sll2Pcap', 'pcap', 276],
    ['multiPcapng', 'pcapng', 1],
    ['anyPcapng', 'pcapng', 113],
  ] as const)('opens %s with the fields tshark reports', (name, format, linkType) => {
    const { summary, records } = contents.get(files[name])!;
    expect(summary.error).toBeUndefined();
    expect(summary.format).toBe(format);
    expect(summary.linkTypes).toEqual([linkType]);
    const tshark = tsharkRows(files[name], ['frame.interface_name', 'sll.pkttype', 'ip.len', 'ipv6.plen']);
    expect(records.length).toBeGreaterThan(20);
    expect(records.map(expectedTsharkRow)).toEqual(tshark.map(normalizeTsharkRow));
    const interfaceNames = summary.interfaces.map((i) => i.name);
    tshark.forEach((row, i) => {
      const record = records[i]!;
      const [ifname, pkttype, ipLen, ipv6Payload] = row.slice(TSHARK_FIELDS.length);
      expect(record.origLen).toBe(ipLen ? Number(ipLen) : 40 + Number(ipv6Payload));
      expect(record.capLen).toBe(record.origLen);
      if (format === 'pcapng') expect(interfaceNames[record.ifindex]).toBe(ifname);
      const expectedDir = pkttype === '' ? Direction.Unknown : pkttype === '4' ? Direction.Out : Direction.In;
      expect(record.dir).toBe(expectedDir);
    });
    // Files without ICMP in them would make the comparison above vacuous; these are the kinds we sent.
    const kinds = new Set(records.map((r) => `${r.family}/${r.type}/${r.code}`));
    expect(kinds).toContain('4/8/0');
    expect(kinds).toContain('4/0/0');
    expect(kinds).toContain('6/128/0');
    expect(kinds).toContain('6/129/0');
  });

  it('sees ICMP errors and every fragment of a fragmented echo, later ones flagged and never typed', () => {
    const { summary, records } = contents.get(files.ethPcapNs)!;
    const kinds = new Set(records.map((r) => `${r.family}/${r.type}/${r.code}`));
    for (const kind of ['4/11/0', '6/3/0', '4/3/1', '6/1/0', '4/3/4', '6/2/0']) expect(kinds).toContain(kind);
    // IPv6 echo sent after Packet Too Big goes out in fragments; the first one still carries the ICMPv6 header.
    const IPV6_FRAGMENT_HEADER = 44;
    const firstFragments = records.filter((r) => r.family === 6 && r.data[6] === IPV6_FRAGMENT_HEADER);
    expect(firstFragments.filter((r) => !(r.flags & REC_F_NOT_FIRST)).map((r) => r.type)).toContain(128);
    const laterFragments = tsharkFields(
      files.ethPcapNs,
      ['frame.time_epoch'],
      '(ip.frag_offset > 0 && ip.proto == 1) || (ipv6.fraghdr.offset > 0 && ipv6.fraghdr.nxt == 58)',
      NO_REASSEMBLY,
    );
    expect(laterFragments.length).toBeGreaterThan(0);
    const flagged = records.filter((r) => r.flags & REC_F_NOT_FIRST);
    expect(flagged.map((r) => secondsText(r.tsNs))).toEqual(laterFragments.map((row) => row[0]));
    for (const r of flagged) {
      expect(r.flags & REC_F_FRAGMENT).toBe(REC_F_FRAGMENT);
      expect([r.type, r.code, r.hasEcho]).toEqual([0, 0, false]);
    }
    expect(summary.skippedNonIcmp).toBeGreaterThan(0); // ARP, neighbour discovery is ICMPv6
  });

  it('names the interfaces of a multi-interface pcapng', () => {
    const { summary, records } = contents.get(files.multiPcapng)!;
    expect(summary.interfaces.map((i) => i.name)).toEqual(['eth0', 'lo']);
    expect(new Set(records.map((r) => r.ifindex))).toEqual(new Set([0, 1]));
  });

  function exportRows(source: CaptureFileContents, nastyName = false): ExportRow[] {
    const names = source.summary.interfaces.map((i) => (nastyName ? `${i.name} "x", y` : i.name));
    const first = source.records[0]!.tsNs;
    return source.records.map((record, i) => ({
      no: i + 1,
      record,
      ifname: names[record.ifindex]!,
      rttMs: record.type === 0 || record.type === 129 ? 0.25 + i / 1000 : undefined,
      relativeNs: record.tsNs - first,
    }));
  }

  /** tshark's view of an export: addresses, ICMP fields, times, lengths, direction, interface. */
  function checkWithTshark(
    file: string,
    records: DecodedRecord[],
    format: 'pcapng' | 'pcap',
    names: string[],
  ) {
    const extra = ['frame.len', 'frame.cap_len', 'frame.packet_flags_direction', 'frame.interface_name'];
    const tshark = tsharkFields(file, [...TSHARK_FIELDS, ...extra], '', NO_REASSEMBLY);
    expect(tshark.map(normalizeTsharkRow)).toEqual(records.map(expectedTsharkRow));
    tshark.forEach((row, i) => {
      const r = records[i]!;
      const [len, capLen, flags, ifname] = row.slice(TSHARK_FIELDS.length);
      expect(Number(len)).toBe(r.origLen);
      expect(Number(capLen)).toBe(r.capLen);
      if (format === 'pcapng') {
        const expectedFlags = r.dir === Direction.In ? 1 : r.dir === Direction.Out ? 2 : 0;
        expect(flags === '' ? 0 : Number(flags)).toBe(expectedFlags);
        expect(ifname).toBe(names[r.ifindex]);
      }
    });
  }

  it.each(['pcapng', 'pcap'] as const)(
    'exports %s that tshark reads with the same fields',
    async (format) => {
      for (const source of [files.sll2Pcap, files.multiPcapng]) {
        const input = contents.get(source)!;
        const out = path.join(dir, `export-${path.basename(source)}.${format}`);
        const result = await exportRecords(exportRows(input), { format, path: out });
        expect(result).toEqual({ records: input.records.length, bytes: fs.statSync(out).size, path: out });
        const names = input.summary.interfaces.map((i) => i.name);
        checkWithTshark(out, input.records, format, names);
      }
    },
  );

  it('round-trips pcapng and pcap exports byte for byte', async () => {
    for (const source of [files.sll2Pcap, files.multiPcapng, files.ethPcapUs]) {
      const input = contents.get(source)!;
      const original = recordBytes(input.batches.map((b) => b.batch));
      for (const format of ['pcapng', 'pcap'] as const) {
        const out = path.join(dir, `roundtrip.${format}`);
        await exportRecords(exportRows(input), { format, path: out });
        const back = await readCaptureFileAll(out);
        expect(back.summary.error).toBeUndefined();
        expect(back.summary.skippedNonIcmp).toBe(0);
        // Interfaces are numbered in order of first appearance in the export; pcap has one and no direction.
        const firstSeen = [...new Set(input.records.map((r) => r.ifindex))];
        let expected = original.map((bytes, i) =>
          setRecordField(
            bytes,
            'ifindex',
            format === 'pcap' ? 0 : firstSeen.indexOf(input.records[i]!.ifindex),
          ),
        );
        if (format === 'pcap')
          expected = expected.map((bytes) => setRecordField(bytes, 'dir', Direction.Unknown));
        expect(recordBytes(back.batches.map((b) => b.batch))).toEqual(expected);
      }
    }
  });

  it('exports CSV that a strict RFC 4180 parser reads, quotes and commas in names included', async () => {
    const input = contents.get(files.multiPcapng)!;
    const rows = exportRows(input, true);
    const out = path.join(dir, 'export.csv');
    await exportRecords(rows, { format: 'csv', path: out });
    const table = parseCsv(fs.readFileSync(out, 'utf8'));
    expect(table[0]).toEqual([
      'no',
      'time',
      'relative_s',
      'direction',
      'interface',
      'source',
      'destination',
      'type',
      'type_name',
      'code',
      'code_name',
      'id',
      'seq',
      'ttl',
      'length',
      'captured_length',
      'rtt_ms',
      'flags',
      'pid',
      'process',
      'uid',
      'cgroup',
    ]);
    expect(table.length).toBe(rows.length + 1);
    rows.forEach((row, i) => {
      const r = row.record;
      expect(table[i + 1]).toEqual([
        String(row.no),
        isoTimeNs(r.tsNs),
        secondsText(row.relativeNs!),
        directionName(r.dir),
        row.ifname,
        r.src,
        r.dst,
        ...(r.flags & REC_F_NOT_FIRST
          ? ['', '', '', '']
          : [
              String(r.type),
              typeLabel(r.family, r.type),
              String(r.code),
              codeLabel(r.family, r.type, r.code),
            ]),
        r.hasEcho ? String(r.id) : '',
        r.hasEcho ? String(r.seq) : '',
        String(r.ttl),
        String(r.origLen),
        String(r.capLen),
        row.rttMs === undefined ? '' : row.rttMs.toFixed(3),
        r.flags & REC_F_NOT_FIRST ? 'fragment not-first' : r.flags & REC_F_FRAGMENT ? 'fragment' : '',
        // A file's records name no process (attribution is for live captures).
        '',
        '',
        '',
        '',
      ]);
      expect(row.ifname).toMatch(/"x", y$/);
    });
  });

  it('exports NDJSON with one parseable object per line and stable field names', async () => {
    const input = contents.get(files.sll2Pcap)!;
    const rows = exportRows(input, true);
    const out = path.join(dir, 'export.ndjson');
    await exportRecords(rows, { format: 'ndjson', path: out });
    const lines = fs.readFileSync(out, 'utf8').split('\n');
    expect(lines.pop()).toBe('');
    expect(lines.length).toBe(rows.length);
    lines.forEach((line, i) => {
      const row = rows[i]!;
      const r = row.record;
      const object = JSON.parse(line) as Record<string, unknown>;
      expect(object).toEqual({
        no: row.no,
        ts: r.tsNs.toString(),
        time: isoTimeNs(r.tsNs),
        relativeS: Number(secondsText(row.relativeNs!)),
        direction: directionName(r.dir),
        interface: row.ifname,
        family: r.family,
        source: r.src,
        destination: r.dst,
        ...(r.flags & REC_F_NOT_FIRST
          ? { type: null, typeName: null, code: null, codeName: null }
          : {
              type: r.type,
              typeName: typeLabel(r.family, r.type),
              code: r.code,
              codeName: codeLabel(r.family, r.type, r.code),
            }),
        id: r.hasEcho ? r.id : null,
        seq: r.hasEcho ? r.seq : null,
        ttl: r.ttl,
        length: r.origLen,
        capturedLength: r.capLen,
        rttMs: row.rttMs === undefined ? null : Number(row.rttMs.toFixed(3)),
        flags:
          r.flags & REC_F_NOT_FIRST
            ? ['fragment', 'not-first']
            : r.flags & REC_F_FRAGMENT
              ? ['fragment']
              : [],
        pid: null,
        process: null,
        uid: null,
        cgroup: null,
      });
    });
    expect(lines.some((l) => l.includes('"direction":"out"'))).toBe(true);
    expect(lines.some((l) => l.includes('"direction":"in"'))).toBe(true);
  });
});
