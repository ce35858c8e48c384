import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchBuilder, addressOf, prng } from '../bench/synth.js';
import { type ExportRow, exportRecords } from '../files/index.js';
import { ipv4Icmp, ipv6Icmp } from '../files/testing/packets.js';
import { Ingestor } from '../ingest.js';
import type { DecodedRecord } from '../record.js';
import { CHUNK_SIZE, RecordStore } from '../store.js';
import { compileFilter } from './compile.js';

const hasTshark = spawnSync('tshark', ['-v']).status === 0;

/**
 * The same records as a pcapng file for tshark and in our store: filters that mean the same in both
 * languages must select the same records. Proves the Wireshark semantics we claim (absent fields,
 * "all not equal" `!=`, prefixes, sets, ranges) against Wireshark itself. Our `icmp.type`, `icmp.code`,
 * `icmp.id`, `icmp.seq` also apply to ICMPv6 (Wireshark's exist for ICMPv4 only), hence `ip && ...`;
 * tshark 4.0 wants commas between set members, which we accept but do not require.
 */
describe.skipIf(!hasTshark)('filters agree with tshark -Y (Wireshark) on the same records', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'icmpcap-filter-tshark-'));
  const file = path.join(dir, 'same.pcapng');
  const store = new RecordStore();
  const ingestor = new Ingestor(store, () => 'eth0');

  beforeAll(async () => {
    const rnd = prng(5);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)]!;
    const v4 = ['10.1.0.5', '10.1.2.3', '8.8.8.8', '192.168.1.1', '2.2.2.2'];
    const v6 = ['2001:db8::1', '2001:db8:1::5', 'fe80::1', '::1'];
    const b = new BatchBuilder();
    const rows: ExportRow[] = [];
    for (let k = 0; k < 400; k++) {
      const family = rnd() < 0.6 ? 4 : 6;
      const src = pick(family === 4 ? v4 : v6);
      const dst = pick(family === 4 ? v4 : v6);
      const type = pick(family === 4 ? [0, 8, 3, 11] : [128, 129, 1, 2, 135]);
      const echo = [0, 8, 128, 129].includes(type);
      const o = {
        src: Array.from(addressOf(src)),
        dst: Array.from(addressOf(dst)),
        type,
        code: echo ? 0 : Math.floor(rnd() * 4),
        id: echo ? pick([0x1234, 7, 0]) : 0,
        seq: echo ? Math.floor(rnd() * 12) : 0,
        ttl: pick([1, 63, 64, 128, 255]),
        payload: Math.floor(rnd() * 64),
      };
      const data = family === 4 ? ipv4Icmp(o) : ipv6Icmp(o);
      const tsNs = 1_700_000_000e9 + k * 1e6;
      b.add({
        ...o,
        tsNs,
        family,
        src: addressOf(src),
        dst: addressOf(dst),
        id: echo ? o.id : null,
        dir: 0,
        ifindex: 1,
        capLen: data.length,
      });
      const record: DecodedRecord = {
        flags: 0,
        hook: 255,
        dir: 0,
        tsNs: BigInt(tsNs),
        ifindex: 1,
        origLen: data.length,
        capLen: data.length,
        family,
        ttl: o.ttl,
        type,
        code: o.code,
        id: o.id,
        seq: o.seq,
        hasEcho: echo,
        src,
        dst,
        data,
      };
      rows.push({ no: k + 1, record, ifname: 'eth0' });
    }
    ingestor.ingest(b.take());
    await exportRecords(rows, { format: 'pcapng', path: file });
  });

  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  function ours(text: string): number[] {
    const f = compileFilter(text, { addresses: ingestor.addresses, interfaces: ingestor.interfaces })!;
    const out = new Uint32Array(CHUNK_SIZE);
    const n = f.scan(store.chunks[0]!, 0, store.length, out, 0, 0);
    return Array.from(out.subarray(0, n), (r) => r + 1);
  }

  function theirs(text: string): number[] {
    const run = spawnSync('tshark', ['-n', '-r', file, '-Y', text, '-T', 'fields', '-e', 'frame.number'], {
      encoding: 'utf8',
    });
    expect(run.status, run.stderr).toBe(0);
    return run.stdout
      .split('\n')
      .filter((line) => line !== '')
      .map(Number);
  }

  const filters = [
    'icmp',
    'icmpv6',
    'ip',
    'ipv6',
    'ip.addr != 10.1.0.5',
    '!(ip.addr == 10.1.0.5)',
    'ip.addr == 10.1.0.0/16 && !(ip.dst == 10.1.2.3)',
    'ip.src == 10.0.0.0/8 || ipv6.dst == 2001:db8::/32',
    'ipv6.addr != fe80::1',
    'ip.addr in {10.1.0.5, 2.2.2.2}',
    'ipv6.src in {2001:db8::/32, ::1}',
    'ip && icmp.seq != 5',
    'ip && icmp.seq in {1..5, 9}',
    'ip && icmp.seq >= 3 && icmp.seq lt 8',
    'icmp.type == 8 or icmp.type == 0',
    'ip && icmp.type in {3, 11} && icmp.code != 1',
    'icmpv6.type == 128',
    'icmpv6.type in {1..2} && icmpv6.code <= 1',
    'ip.ttl < 64',
    'ipv6.hlim >= 64 and not icmpv6.type == 135',
    'frame.len > 80',
    'frame.number in {1..50, 300}',
  ];
  for (const text of filters) {
    it(text, () => {
      const want = theirs(text);
      expect(ours(text)).toEqual(want);
    });
  }

  it('selects something and not everything with most filters', () => {
    const sizes = filters.map((f) => ours(f).length);
    expect(sizes.filter((n) => n > 0 && n < 400).length).toBeGreaterThan(filters.length - 2);
  });
});
