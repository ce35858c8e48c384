import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  echo4,
  echo6,
  echoTraffic,
  everyKind,
  type Packet,
  recordOf,
  writePcap,
} from '../fields/testing/corpus.js';
import { SrtCollector, type SrtTap, cFixed, formatSrtReport, parseSrtArg } from './srt.js';

const hasTshark = spawnSync('tshark', ['-v']).status === 0;

describe('srt formatting', () => {
  it('rounds exact ties to even as printf does', () => {
    expect(cFixed(0.0625, 3)).toBe('0.062');
    expect(cFixed(0.0635, 3)).toBe((0.0635).toFixed(3));
    expect(cFixed(1.0375, 3)).toBe('1.038');
    expect(cFixed(12.5, 0)).toBe('12');
    expect(cFixed(2.25, 1)).toBe('2.2');
  });

  it('parses -z arguments', () => {
    expect(parseSrtArg('icmp,srt')).toEqual({ family: 4, filter: null });
    expect(parseSrtArg('icmpv6,srt,ipv6.addr==::1')).toEqual({ family: 6, filter: 'ipv6.addr==::1' });
    expect(parseSrtArg('io,stat,1')).toBeNull();
  });
});

describe.skipIf(!hasTshark)('-z icmp,srt and icmpv6,srt print what tshark prints', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'icmpcap-srt-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  function compare(name: string, packets: Packet[]): void {
    const file = path.join(dir, `${name}.pcap`);
    writePcap(file, packets);
    const records = packets.map((p) => recordOf(p));
    const peers = [...new Set(records.filter((r) => r.hasEcho).map((r) => r.src))].slice(0, 8);
    const taps: SrtTap[] = [{ family: 4 }, { family: 6 }];
    for (const peer of peers) {
      const v6 = peer.includes(':');
      taps.push({
        family: v6 ? 6 : 4,
        filter: `${v6 ? 'ipv6' : 'ip'}.addr==${peer}`,
        accept: (r) => r.src === peer || r.dst === peer,
      });
    }
    const args = ['-q', '-n', '-r', file, '-o', 'ip.defragment:FALSE', '-o', 'ipv6.defragment:FALSE'];
    for (const t of taps)
      args.push('-z', `icmp${t.family === 6 ? 'v6' : ''},srt${t.filter ? `,${t.filter}` : ''}`);
    const run = spawnSync('tshark', args, { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    const collector = new SrtCollector(taps);
    for (const r of records) collector.add(r);
    expect(formatSrtReport(collector.srtTables())).toBe(run.stdout);
  }

  it('every ICMP kind: lost, late (3 s), duplicate and broadcast replies, fragments, errors quoting echo', () => {
    compare('every', everyKind());
  });
  it('2000 IPv4 exchanges over 3 peers with loss, duplicates and reordering', () => {
    compare('v4', echoTraffic(7, 2000, 4));
  });
  it('1500 IPv6 exchanges', () => {
    compare('v6', echoTraffic(8, 1500, 6));
  });
  it('no echo at all prints the empty table', () => {
    compare(
      'none',
      everyKind().filter((p) => recordOf(p).type === 11),
    );
  });
});

describe('our per-peer figures', () => {
  const t0 = 1_700_000_000_000_000_000n;
  const ms = (n: number): bigint => BigInt(Math.round(n * 1e6));

  it('count broadcast and multicast replies per responder, duplicates, late and reordered replies', () => {
    const packets: Packet[] = [
      // ping -b: two requests, hosts .7 and .8 answer the first, only .7 the second
      { tsNs: t0, data: echo4('10.0.0.2', '10.0.0.255', 8, 5, 1) },
      { tsNs: t0 + ms(1), data: echo4('10.0.0.7', '10.0.0.2', 0, 5, 1) },
      { tsNs: t0 + ms(2), data: echo4('10.0.0.8', '10.0.0.2', 0, 5, 1) },
      { tsNs: t0 + ms(1000), data: echo4('10.0.0.2', '10.0.0.255', 8, 5, 2) },
      { tsNs: t0 + ms(1003), data: echo4('10.0.0.7', '10.0.0.2', 0, 5, 2) },
      { tsNs: t0 + ms(1004), data: echo4('10.0.0.7', '10.0.0.2', 0, 5, 2) }, // duplicate
      // unicast: seq 1 late (1.5 s), seq 2 answered before it (reordered for seq 1)
      { tsNs: t0 + ms(2000), data: echo4('10.0.0.2', '10.1.0.1', 8, 6, 1) },
      { tsNs: t0 + ms(2100), data: echo4('10.0.0.2', '10.1.0.1', 8, 6, 2) },
      { tsNs: t0 + ms(2110), data: echo4('10.1.0.1', '10.0.0.2', 0, 6, 2) },
      { tsNs: t0 + ms(3500), data: echo4('10.1.0.1', '10.0.0.2', 0, 6, 1) },
      // ping ff02::1
      { tsNs: t0 + ms(4000), data: echo6('fe80::2', 'ff02::1', 128, 9, 1) },
      { tsNs: t0 + ms(4001), data: echo6('fe80::a', 'fe80::2', 129, 9, 1) },
      { tsNs: t0 + ms(4002), data: echo6('fe80::b', 'fe80::2', 129, 9, 1) },
    ];
    const c = new SrtCollector();
    for (const p of packets) c.add(recordOf(p));
    const by = new Map(c.peerStats().map((p) => [p.peer, p]));
    expect(by.get('10.0.0.7')).toMatchObject({ requests: 2, replies: 2, lost: 0, duplicates: 1 });
    expect(by.get('10.0.0.8')).toMatchObject({ requests: 2, replies: 1, lost: 1, lossPercent: 50 });
    expect(by.get('10.1.0.1')).toMatchObject({ requests: 2, replies: 2, late: 1, reordered: 1, maxMs: 1500 });
    expect(by.get('fe80::a')).toMatchObject({ requests: 1, replies: 1 });
    expect(by.get('fe80::b')).toMatchObject({ requests: 1, replies: 1 });
    // tshark's own table does not match broadcast replies (other addresses) but does match the late one
    const v4 = c.srtTables()[0]!;
    expect([v4.requests, v4.replies]).toEqual([4, 2]);
  });

  it('jitter is RFC 3550 smoothing of successive RTT differences; javg their mean', () => {
    const rtts = [10, 14, 11, 30, 12];
    const c = new SrtCollector();
    rtts.forEach((rtt, k) => {
      c.add(recordOf({ tsNs: t0 + ms(k * 1000), data: echo4('10.0.0.2', '10.9.0.1', 8, 1, k) }));
      c.add(recordOf({ tsNs: t0 + ms(k * 1000 + rtt), data: echo4('10.9.0.1', '10.0.0.2', 0, 1, k) }));
    });
    const [p] = c.peerStats();
    let j = 0;
    const d = [4, 3, 19, 18];
    for (const x of d) j += (x - j) / 16;
    expect(p!.jitterMs).toBeCloseTo(j, 9);
    expect(p!.jitterLastMs).toBeCloseTo(18, 9);
    expect(p!.jitterAvgMs).toBeCloseTo(11, 9);
    expect(p!.jitterMaxMs).toBeCloseTo(19, 9);
    expect(p!.p95Ms).toBeCloseTo(30, 9);
    expect(p!.medianMs).toBeCloseTo(12, 9);
  });

  it('judges loss against the clock while idle: unanswered requests are lost once their wait is over', () => {
    const c = new SrtCollector();
    for (let k = 0; k < 3; k++)
      c.add(recordOf({ tsNs: t0 + ms(k * 1000), data: echo4('10.0.0.2', '10.66.0.1', 8, 3, k) }));
    expect(c.peerStats(t0 + ms(2500))[0]).toMatchObject({ requests: 2, lost: 2, lossPercent: 100 });
    expect(c.peerStats(t0 + ms(60_000))[0]).toMatchObject({ requests: 3, lost: 3, lossPercent: 100 });
    expect(c.peerStats()[0]).toMatchObject({ requests: 3, lost: 3 });
  });
});
