/**
 * Odd traffic between two network namespaces, captured by the real capture service through AF_PACKET:
 * fragmented echoes both ways (v4, v6), ICMP headers cut short, bad checksums, IP options, IPv6 extension
 * headers before ICMPv6, RFC 4884 extensions, unknown types, a VLAN tag. For each: the packets are in the
 * table with the right flags, and every export format holds them (tshark reads the pcapng and pcap exports,
 * reassembling the fragments, and finds the same packets).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Row } from '../common/contract.js';
import { parseCsv } from './files/testing/records.js';
import { A4, A6, B4, B6, hasOddTools, OddLab, type ChildResult } from './testing/odd-lab.js';

const ID = 20000 + (process.pid % 20000);

/** Cases to skip, with the reason (none today: every source walks IPv6 extension headers). */
const SKIP: Record<string, string | undefined> = {};

function tshark(file: string, args: string[]): string[][] {
  const out = execFileSync('tshark', ['-r', file, '-n', ...args], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split('|'));
}

describe.skipIf(!hasOddTools())('odd traffic through AF_PACKET: table flags and every export', () => {
  const lab = new OddLab();
  let dir = '';
  let result: ChildResult;
  const ranges = new Map<string, [number, number]>();
  let csv: Map<number, string[]>;
  let csvHeader: string[];
  let ndjson: Map<number, Record<string, unknown>>;
  /** pcapng / pcap frames, not reassembled: frame number -> [frame.len, frame.cap_len]. */
  const frames = new Map<string, Map<number, [number, number]>>();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'icmpcap-odd-'));
    lab.setUp();
    await lab.startService(dir);
    let from = await lab.mark('start');
    const step = async (name: string, send: () => void): Promise<void> => {
      send();
      const to = await lab.mark(name);
      ranges.set(name, [from, to]);
      from = to;
    };
    const bigPing = (ns: 'a' | 'b', target: string, id: number) =>
      lab.ping(ns, ['-c', '2', '-i', '0.2', '-s', '3000', '-e', String(id), target]);
    await step('ping4-in', () => bigPing('a', B4, ID));
    await step('ping4-out', () => bigPing('b', A4, ID + 1));
    await step('ping6-in', () => bigPing('a', B6, ID + 2));
    await step('ping6-out', () => bigPing('b', A6, ID + 3));
    for (const kind of [
      'short4',
      'short6',
      'badsum4',
      'badsum6',
      'options4',
      'hbh6',
      'dstopt6',
      'frag4',
      'frag6',
      'rfc4884',
      'unknown4',
      'unknown6',
      'vlan4',
    ]) {
      await step(kind, () => lab.scapy(kind, ID + 10));
    }
    result = await lab.stop();
    lab.tearDown();
    csv = new Map();
    const table = parseCsv(readFileSync(result.exports.csv, 'utf8'));
    csvHeader = table[0]!;
    for (const line of table.slice(1)) csv.set(Number(line[0]), line);
    ndjson = new Map();
    for (const line of readFileSync(result.exports.ndjson, 'utf8').split('\n').filter(Boolean)) {
      const object = JSON.parse(line) as Record<string, unknown>;
      ndjson.set(object.no as number, object);
    }
    for (const format of ['pcapng', 'pcap'] as const) {
      const rows = tshark(result.exports[format], [
        '-o',
        'ip.defragment:FALSE',
        '-o',
        'ipv6.defragment:FALSE',
        '-T',
        'fields',
        '-E',
        'separator=|',
        '-e',
        'frame.number',
        '-e',
        'frame.len',
        '-e',
        'frame.cap_len',
      ]);
      frames.set(format, new Map(rows.map(([n, len, cap]) => [Number(n), [Number(len), Number(cap)]])));
    }
  }, 180_000);

  afterAll(() => {
    lab.tearDown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** The rows captured while `name` was sent, keeping those `keep` accepts (not the neighbour discovery). */
  function rowsOf(name: string, keep: (r: Row) => boolean): Row[] {
    const [from, to] = ranges.get(name)!;
    return result.rows.filter((r) => r.no > from && r.no <= to && keep(r));
  }

  const flagsOf = (r: Row): string => (r.flags ?? []).join(' ');

  /** Every row is in every export, byte counts and flags included. */
  function expectExported(rows: Row[]): void {
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) {
      for (const format of ['pcapng', 'pcap']) {
        // Records are exported in order, so the record number is the frame number.
        const [len, cap] = frames.get(format)!.get(r.no) ?? [-1, -1];
        expect({ format, no: r.no, len }).toEqual({ format, no: r.no, len: r.len });
        expect(cap).toBeGreaterThan(0);
      }
      const line = csv.get(r.no)!;
      expect(line[csvHeader.indexOf('flags')]).toBe(flagsOf(r));
      expect(line[csvHeader.indexOf('source')]).toBe(r.src);
      const object = ndjson.get(r.no)!;
      expect(object.flags).toEqual(r.flags ?? []);
      expect(object.length).toBe(r.len);
    }
  }

  it('finishes every export job, each holding every record', () => {
    expect(result.jobs.map((j) => j.state)).toEqual(['done', 'done', 'done', 'done']);
    expect(result.rows.length).toBeGreaterThan(20);
    expect(frames.get('pcapng')!.size).toBe(result.rows.length);
    expect(frames.get('pcap')!.size).toBe(result.rows.length);
    expect(csv.size).toBe(result.rows.length);
    expect(ndjson.size).toBe(result.rows.length);
  });

  describe.each([
    ['ping4-in', 4, A4, B4, 8, 0, 0],
    ['ping4-out', 4, B4, A4, 8, 0, 1],
    ['ping6-in', 6, A6, B6, 128, 129, 2],
    ['ping6-out', 6, B6, A6, 128, 129, 3],
  ] as const)('%s: ping -s 3000', (name, family, client, server, request, reply, idOffset) => {
    it.skipIf(SKIP[name] !== undefined)(
      `shows every fragment, later ones flagged and never typed${SKIP[name] ? ` (${SKIP[name]})` : ''}`,
      () => {
        const rows = rowsOf(
          name,
          (r) => r.family === family && (r.src === client || r.src === server) && r.dst !== 'ff02::1',
        );
        const firsts = rows.filter((r) => r.flags?.includes('fragment') && !r.flags.includes('not-first'));
        const laters = rows.filter((r) => r.flags?.includes('not-first'));
        expect(firsts.map((r) => [r.src, r.type, r.id])).toEqual([
          [client, request, ID + idOffset],
          [server, reply, ID + idOffset],
          [client, request, ID + idOffset],
          [server, reply, ID + idOffset],
        ]);
        // 3008 bytes of ICMP over a 1500-byte MTU: two more fragments each way (IPv6 too).
        expect(laters).toHaveLength(8);
        for (const r of laters)
          expect([r.type, r.code, r.id, r.seq, flagsOf(r)]).toEqual([0, 0, null, null, 'fragment not-first']);
        expectExported(rows);
        // tshark reassembles the fragments of both exports into the two echoes each way (ping's 3000 bytes
        // of data: for ICMPv4 tshark shows an 8-byte timestamp, then 2992 bytes; for ICMPv6 all 3000 as data).
        const dataLen = family === 4 ? 2992 : 3000;
        for (const format of ['pcapng', 'pcap'] as const) {
          const field = family === 4 ? 'icmp' : 'icmpv6';
          const echoes = tshark(result.exports[format], [
            '-Y',
            `${field}.type == ${request} || ${field}.type == ${reply}`,
            '-T',
            'fields',
            '-E',
            'separator=|',
            '-e',
            family === 4 ? 'icmp.ident' : 'icmpv6.echo.identifier',
            '-e',
            family === 4 ? 'icmp.type' : 'icmpv6.type',
            '-e',
            'data.len',
          ]).filter(([id]) => Number(id) === ID + idOffset);
          expect(echoes.map(([, type, len]) => [Number(type), Number(len)])).toEqual([
            [request, dataLen],
            [reply, dataLen],
            [request, dataLen],
            [reply, dataLen],
          ]);
        }
      },
    );
  });

  /** Sent by `a`, apart from neighbour discovery (which goes on as it likes). */
  const fromA = (r: Row) =>
    (r.src === A4 || r.src === A6) && !(r.family === 6 && r.type >= 133 && r.type <= 137);

  it.each([
    ['short4', 4, 8, 'short'],
    ['short6', 6, 128, 'short'],
    ['badsum4', 4, 8, 'bad-checksum'],
    ['badsum6', 6, 128, 'bad-checksum'],
    ['options4', 4, 8, ''],
    ['rfc4884', 4, 11, ''],
    ['unknown4', 4, 99, ''],
    ['unknown6', 6, 250, ''],
    ['vlan4', 4, 8, ''],
  ] as const)('%s: in the table as sent, with its flags, in every export', (name, family, type, flags) => {
    const rows = rowsOf(name, (r) => fromA(r) && r.family === family);
    expect(rows.map((r) => [r.type, flagsOf(r)])).toEqual([[type, flags]]);
    expectExported(rows);
  });

  it('rfc4884: tshark finds the extension structure in the exports', () => {
    const [row] = rowsOf('rfc4884', fromA);
    for (const format of ['pcapng', 'pcap'] as const) {
      const found = tshark(result.exports[format], [
        '-Y',
        `frame.number == ${row!.no}`,
        '-T',
        'fields',
        '-e',
        'icmp.length',
        '-e',
        'icmp.ext.version',
      ]);
      expect(found).toEqual([['32\t2']]);
    }
  });

  it('frag4: a fragmented echo from scapy, reassembled by tshark from the exports', () => {
    const rows = rowsOf('frag4', (r) => r.src === A4);
    expect(rows.map(flagsOf)).toEqual(['fragment', 'fragment not-first']);
    expect(rows[0]!.type).toBe(8);
    expectExported(rows);
  });

  it.skipIf(SKIP.hbh6 !== undefined)(
    `hbh6: an MLDv2 report behind a Hop-by-Hop header${SKIP.hbh6 ? ` (${SKIP.hbh6})` : ''}`,
    () => {
      const rows = rowsOf('hbh6', (r) => r.src === A6 && r.dst === 'ff02::16');
      expect(rows.map((r) => [r.type, flagsOf(r)])).toEqual([[143, '']]);
      expectExported(rows);
    },
  );

  it.skipIf(SKIP.dstopt6 !== undefined)(
    `dstopt6: an echo behind a Destination options header${SKIP.dstopt6 ? ` (${SKIP.dstopt6})` : ''}`,
    () => {
      const rows = rowsOf('dstopt6', (r) => r.src === A6 && r.type === 128);
      expect(rows.map((r) => [r.id, flagsOf(r)])).toEqual([[ID + 10, '']]);
      expectExported(rows);
    },
  );

  it.skipIf(SKIP.frag6 !== undefined)(
    `frag6: a fragmented echo from scapy${SKIP.frag6 ? ` (${SKIP.frag6})` : ''}`,
    () => {
      const rows = rowsOf('frag6', (r) => r.src === A6);
      expect(rows.map(flagsOf)).toEqual(['fragment', 'fragment not-first']);
      expect(rows[0]!.type).toBe(128);
      expectExported(rows);
    },
  );
});
