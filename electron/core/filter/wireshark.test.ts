import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FieldMap, FieldSession, extractFields, formatFieldValues } from '../fields/extract.js';
import { type Packet, everyKind, echoTraffic, recordOf, writePcap } from '../fields/testing/corpus.js';
import { MAX_RECORD_SIZE, encodeRecord } from '../files/index.js';
import { Ingestor } from '../ingest.js';
import type { DecodedRecord } from '../record.js';
import { CHUNK_SIZE, RecordStore } from '../store.js';
import { compileFilter } from './compile.js';
import { FilterSyntaxError } from './parse.js';

const hasTshark = spawnSync('tshark', ['-v']).status === 0;
const TSHARK_OPTS = ['-n', '-o', 'ip.defragment:FALSE', '-o', 'ipv6.defragment:FALSE'];

/**
 * The same packets in a pcap for tshark and in our store (columns + each record's fields from its
 * bytes): every filter must select the same frames as `tshark -Y`. Filters run in batches: the file
 * is repeated once per filter (each copy shifted in time) and one tshark run evaluates
 * `(frame.number in {copy k} && (filter k)) || ...`, so hundreds of filters cost a few tshark runs.
 */
describe.skipIf(!hasTshark)('display filters select what tshark -Y selects', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'icmpcap-wireshark-'));
  // Only what our sources record (encodeRecord drops non-first fragments: they carry no ICMP header).
  const packets: Packet[] = [
    ...everyKind(3),
    ...echoTraffic(11, 60, 4).slice(0, 80),
    ...echoTraffic(12, 40, 6).slice(0, 50),
  ]
    .sort((a, b) => (a.tsNs < b.tsNs ? -1 : a.tsNs > b.tsNs ? 1 : 0))
    .filter(
      (p) =>
        encodeRecord(
          p.data,
          { tsNs: p.tsNs, ifindex: 1, dir: 0, origLen: p.data.length },
          new Uint8Array(MAX_RECORD_SIZE),
          0,
        ) !== null,
    );
  const N = packets.length;
  const store = new RecordStore();
  const ingestor = new Ingestor(store, () => 'eth0');
  const records: DecodedRecord[] = packets.map((p) => recordOf(p, 0));
  const session = new FieldSession();
  const fieldMaps: FieldMap[] = records.map((r) => extractFields(r, session.context(r, 'eth0')));
  const env = {
    addresses: ingestor.addresses,
    interfaces: ingestor.interfaces,
    fields: (i: number) => fieldMaps[i] ?? null,
    quoted: ingestor.quoted,
  };

  beforeAll(() => {
    const batch = new Uint8Array(N * MAX_RECORD_SIZE);
    let at = 0;
    for (const p of packets)
      at += encodeRecord(p.data, { tsNs: p.tsNs, ifindex: 1, dir: 0, origLen: p.data.length }, batch, at)!;
    ingestor.ingest(batch.slice(0, at).buffer);
    expect(store.length).toBe(N);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  function ours(text: string): number[] {
    const f = compileFilter(text, env)!;
    const out = new Uint32Array(CHUNK_SIZE);
    const n = f.scan(store.chunks[0]!, 0, store.length, out, 0, 0);
    return Array.from(out.subarray(0, n), (r) => r + 1);
  }

  let runs = 0;
  /** tshark's selections for many filters in one run (see the describe comment). */
  function theirs(filters: readonly string[]): number[][] {
    const copies: Packet[] = [];
    filters.forEach((_, k) => {
      for (const p of packets) copies.push({ tsNs: p.tsNs + BigInt(k) * 100_000_000_000n, data: p.data });
    });
    const file = path.join(dir, `batch-${filters.length}-${Math.random().toString(36).slice(2)}.pcap`);
    writePcap(file, copies);
    const combined = filters
      .map((f, k) => `(frame.number >= ${k * N + 1} && frame.number <= ${(k + 1) * N} && (${f}))`)
      .join(' || ');
    const run = spawnSync(
      'tshark',
      [...TSHARK_OPTS, '-r', file, '-Y', combined, '-T', 'fields', '-e', 'frame.number'],
      {
        encoding: 'utf8',
        maxBuffer: 64 << 20,
      },
    );
    fs.rmSync(file);
    runs++;
    if (run.status !== 0) {
      if (filters.length === 1)
        throw new Error(`tshark rejected ${filters[0]}: ${run.stderr.split('\n')[1]}`);
      const half = Math.ceil(filters.length / 2);
      return [...theirs(filters.slice(0, half)), ...theirs(filters.slice(half))];
    }
    const out: number[][] = filters.map(() => []);
    for (const line of run.stdout.split('\n')) {
      if (line === '') continue;
      const n = Number(line) - 1;
      out[Math.floor(n / N)]!.push((n % N) + 1);
    }
    return out;
  }

  /** Filters that only mean the same when frame numbers and times are the file's own: one run each. */
  function theirsAlone(text: string): number[] {
    const file = path.join(dir, 'alone.pcap');
    if (!fs.existsSync(file)) writePcap(file, packets);
    const run = spawnSync(
      'tshark',
      [...TSHARK_OPTS, '-r', file, '-Y', text, '-T', 'fields', '-e', 'frame.number'],
      { encoding: 'utf8' },
    );
    if (run.status !== 0) throw new Error(`tshark rejected ${text}: ${run.stderr}`);
    return run.stdout
      .split('\n')
      .filter((l) => l !== '')
      .map(Number);
  }

  const HAND = [
    // The defects of issue 15
    'icmp.type == 3',
    'icmp.type == 128',
    'icmpv6.type == 128',
    'icmp.code == 010',
    'icmp.code == 8',
    'icmp.code == 0x0d',
    'icmp.code == 0b1101',
    "icmp.type == '\\x08'",
    'frame.len > 100',
    'frame.len == 84',
    'ip.dst == 198.51.100.7',
    'ip.dst != 198.51.100.7',
    'ip.dst === 198.51.100.7',
    'ip.dst !== 10.0.0.2',
    'ip.addr ~= 10.0.0.2',
    'icmp.resptime > 20',
    'icmp.resptime',
    'icmp.resp_to',
    'icmpv6.resp_to',
    'icmpv6.resptime < 10',
    'icmp.no_resp',
    'icmpv6.echo.identifier == 0x4321',
    'icmpv6.echo.sequence_number in {1..5}',
    'icmpv6.echo.sequence_number > 10',
    // Protocols and presence
    'icmp',
    'icmpv6',
    'ip',
    'ipv6',
    'udp',
    'tcp',
    'icmp.ident',
    'icmp.seq',
    'icmp.mtu',
    'icmpv6.mtu',
    'icmp.ext',
    'icmpv6.opt',
    '!icmp.ident',
    'not ip',
    // Fields of both layers
    'ip.src == 10.0.0.2',
    'ip.src#1 == 10.0.0.2',
    'ip.src#2 == 10.0.0.2',
    'ip.dst#2 == 198.51.100.0/24',
    'ip.addr#[1-2] == 10.0.0.2',
    'ip.ttl == 1',
    'ip.ttl == 64',
    'all ip.ttl > 1',
    'any ip.ttl > 64',
    'ip.proto == 17',
    'ip.proto == 0b1',
    'icmp.type == 8',
    'icmp.type == 0 && icmp.ident == 0x1234',
    'icmp.seq in {1..5, 9}',
    'icmp.seq not in {1..5, 9}',
    'icmp.seq >= 3 && icmp.seq lt 8',
    'icmp.ident_le == 1',
    'icmp.seq_le > 255',
    'icmp.type in {3, 11} && icmp.code != 1',
    'udp.dstport == 33434',
    'udp.port in {33434..33440}',
    'udp.dstport >= udp.srcport + 1',
    'udp.srcport - 40000 < 3',
    'tcp.dstport == 443',
    'icmpv6.type == 1 && udp.dstport == 33434',
    'ipv6.dst == 2001:db8:9::/48',
    'ipv6.addr != fe80::1',
    'ipv6.addr == fe80::/10',
    'ipv6.src in {2001:db8::/32, ::1}',
    'ipv6.hlim >= 64 and not icmpv6.type == 135',
    'ipv6.nxt == 0',
    'ipv6.flow > 0',
    'ipv6.tclass == 0xb8',
    'ip.dsfield == 0xb8',
    'ip.dsfield.dscp == 46',
    'ip.flags.df == 1',
    'ip.flags.df == True',
    'ip.flags.df',
    'ip.flags.mf',
    'ip.frag_offset > 0',
    'ip.id == 0xabcd',
    'ip.len > 100',
    'icmp.checksum.status == 1',
    'icmp.checksum.status == 2',
    'icmpv6.checksum.status != 1',
    'icmp.mtu == 1500',
    'icmpv6.mtu < 1400',
    'icmp.pointer == 20',
    'icmpv6.pointer == 40',
    'icmp.redir_gw == 10.0.0.254',
    'icmp.length == 32',
    'icmp.ext.class == 1',
    'icmpv6.nd.ns.target_address == 2001:db8::1',
    'icmpv6.nd.na.flag.s',
    'icmpv6.nd.na.flag.r == 0',
    'icmpv6.nd.ra.flag.m == 1',
    'icmpv6.nd.ra.router_lifetime == 30000',
    'icmpv6.opt.prefix == 2001:db8:5::',
    'icmpv6.opt.prefix.flag.a',
    'icmpv6.opt.mtu == 1500',
    'icmpv6.opt.src_linkaddr == 02:00:00:00:00:02',
    'icmpv6.nd.rd.target_address == fe80::9',
    // Operators and functions
    'icmp.type & 8',
    'icmp.type & 0x08 == 8',
    'ip.ttl * 2 > 100',
    'ip.ttl % 2 == 1',
    '{ip.ttl + 1} * 2 == 130',
    'ip.ttl -1 == 63',
    'len(ip.src) == 4',
    'count(ip.addr) == 4',
    'count(icmpv6.opt) > 1',
    'string(icmp.type) matches "^1"',
    'string(ip.dst) contains "198.51"',
    'ip.src_host matches "^10\\\\."',
    'ip.src_host matches "^10[.]0[.]0[.]2$"',
    'ip.dst_host contains "100"',
    'upper(ip.src_host) == "10.0.0.2"',
    'max(ip.ttl, 1) == 64',
    'min(ip.ttl) < 2',
    'abs(ip.ttl) == 64',
    // Slices and byte strings
    'icmp[0:2] == 08:00',
    'icmp[0] == 0x03',
    'icmp[0] == 03',
    'icmp[-1] == 0x47',
    'frame[-1] == 0x47',
    'frame[0] == 0x45',
    'frame[0] & 0xf0 == 0x60',
    'ip[9] == 01',
    'ip.src[0] == 0x0a',
    'ip.src[0:2] == 0a:00',
    'ipv6[24:2] == ff:02',
    'icmp[4:4] == 00:00:05:dc',
    'frame[1:3] contains 00:54',
    'icmp contains 10:11:12',
    'icmpv6 contains "abc"',
    'icmp[2:2] & ff:00 == 00:00',
    'udp[2:2] == 82:9a',
    // Logic
    'icmp.type == 8 or icmp.type == 0',
    'ip && !(ip.addr == 10.0.0.2)',
    'ip.addr == 10.0.0.0/8 && !(ip.dst == 10.0.0.2)',
    'ip.src == 10.0.0.0/8 || ipv6.dst == 2001:db8::/32',
    'not icmp.type == 8 and ip',
    'icmp.type == 8 and ip.dst == 8.8.8.8 or icmpv6.type == 129',
    '!(icmp.type in {0, 8}) && icmp',
  ];
  const ALONE = [
    'frame.number in {1..50, 100}',
    'frame.number % 7 == 0',
    'frame.time_relative < 1.5',
    'frame.time_delta > 1',
    'frame.time_relative > 0.5 && icmp',
  ];

  /** Generated filters: each field against values the capture has, with every operator. */
  function generated(): string[] {
    const fields = [
      'ip.src',
      'ip.dst',
      'ip.addr',
      'ip.ttl',
      'ip.id',
      'ip.len',
      'ip.proto',
      'ip.dsfield',
      'ipv6.src',
      'ipv6.dst',
      'ipv6.addr',
      'ipv6.hlim',
      'ipv6.plen',
      'ipv6.flow',
      'icmp.type',
      'icmp.code',
      'icmp.ident',
      'icmp.seq',
      'icmp.checksum',
      'icmpv6.type',
      'icmpv6.code',
      'icmpv6.echo.identifier',
      'icmpv6.echo.sequence_number',
      'icmpv6.checksum',
      'udp.srcport',
      'udp.dstport',
      'tcp.srcport',
      'frame.len',
      'frame.cap_len',
      'icmp.resptime',
      'icmpv6.resptime',
      'icmp.mtu',
    ];
    let s = 7;
    const rnd = (): number => {
      s = (s * 1103515245 + 12345) & 0x7fffffff;
      return s / 0x7fffffff;
    };
    const pick = <T>(l: readonly T[]): T => l[Math.floor(rnd() * l.length)]!;
    const out: string[] = [];
    for (const f of fields) {
      const vals = [
        ...new Set(
          fieldMaps.flatMap((m) =>
            formatFieldValues(f, m.get(f))
              .split(',')
              .filter((v) => v !== ''),
          ),
        ),
      ];
      if (vals.length === 0) continue;
      const numeric = !f.includes('src') && !f.includes('dst') && !f.includes('addr');
      const ops = numeric
        ? ['==', '!=', '===', '!==', '<', '<=', '>', '>=', 'eq', 'ne', 'gt', 'le']
        : ['==', '!=', '===', '!==', 'eq', 'ne'];
      for (let k = 0; k < 8; k++) {
        const v = pick(vals);
        out.push(`${f} ${pick(ops)} ${v}`);
      }
      const set = [pick(vals), pick(vals), pick(vals)];
      out.push(`${f} in {${set.join(', ')}}`, `${f} not in {${set.join(',')}}`);
      if (numeric && !f.includes('resptime'))
        out.push(`${f} in {${[pick(vals), pick(vals)].sort((a, b) => Number(a) - Number(b)).join('..')}}`);
    }
    // Random combinations.
    const atoms = out.slice();
    for (let k = 0; k < 60; k++) {
      const a = pick(atoms);
      const b = pick(atoms);
      out.push(pick([`${a} && ${b}`, `${a} || ${b}`, `!(${a}) && ${b}`, `(${a}) and not (${b})`]));
    }
    return out;
  }

  const ALL = [...HAND, ...generated()];

  it(`${ALL.length} filters (${HAND.length} hand-written, the rest generated) select the same frames`, () => {
    const mismatches: string[] = [];
    for (let from = 0; from < ALL.length; from += 60) {
      const batch = ALL.slice(from, from + 60);
      const want = theirs(batch);
      batch.forEach((text, k) => {
        const got = ours(text);
        if (JSON.stringify(got) !== JSON.stringify(want[k]))
          mismatches.push(
            `${text}: ours ${JSON.stringify(got).slice(0, 120)} tshark ${JSON.stringify(want[k]).slice(0, 120)}`,
          );
      });
    }
    for (const text of ALONE) {
      const got = ours(text);
      const want = theirsAlone(text);
      if (JSON.stringify(got) !== JSON.stringify(want))
        mismatches.push(`${text}: ours ${JSON.stringify(got)} tshark ${JSON.stringify(want)}`);
    }
    console.log(
      'tshark runs',
      runs,
      'sizes',
      ALL.slice(0, 30)
        .map((f) => ours(f).length)
        .join(' '),
    );
    expect(mismatches).toEqual([]);
  });

  it('most hand-written filters select something and not everything', () => {
    const sizes = HAND.map((f) => ours(f).length);
    const useful = sizes.filter((n) => n > 0 && n < N).length;
    expect(useful).toBeGreaterThan(HAND.length * 0.85);
  });

  it("errors point at the character, as tshark's do", () => {
    const at = (text: string): number => {
      try {
        compileFilter(text, env);
      } catch (e) {
        if (e instanceof FilterSyntaxError) return e.position;
        throw e;
      }
      return -1;
    };
    expect(at('icmp.type == ')).toBe(13);
    expect(at('ip.src == 10.0.0.300')).toBe(10);
    expect(at('icmp.typo == 3')).toBe(0);
    expect(at('ip.ttl = 3')).toBe(7);
    expect(at('ip.ttl === 64')).toBe(-1);
    expect(at('ip.src_host matches "("')).toBe(20);
    expect(at('ip.src matches "x"')).toBe(7);
    expect(at('len(ip.ttl) == 1')).toBe(0);
    expect(at('icmp.type == packet-too-big')).toBe(13);
  });
});
