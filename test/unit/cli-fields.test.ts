/**
 * `icmpcap capture -r F -Y X -T fields -e ...` prints what `tshark -r F -Y X -T fields -e ...` prints, line
 * for line, and `-z icmp,srt` / `-z icmpv6,srt` print tshark's tables: on the corpus of every ICMP kind
 * (built byte by byte) and on real pings captured by tcpdump between namespaces.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIELDS } from '../../electron/common/fields.js';
import { echoTraffic, everyKind, writePcap } from '../../electron/core/fields/testing/corpus.js';
import { captureRealTraffic } from '../../electron/core/files/testing/captures.js';
import { NetnsLab, hasTools } from '../../electron/core/files/testing/lab.js';
import { runIcmpcap } from '../support/cli.js';

const hasTshark = spawnSync('tshark', ['-v']).status === 0;
const tmp = mkdtempSync(join(tmpdir(), 'icmpcap-cli-fields-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Every registry field tshark knows (ours are icmpcap.*; interface names come from the file). */
const ALL_FIELDS = FIELDS.filter((f) => f.own !== true && !f.name.startsWith('frame.interface')).map(
  (f) => f.name,
);
const ONE_PASS = ['-o', 'ip.defragment:FALSE', '-o', 'ipv6.defragment:FALSE'];

function tshark(args: string[]): string {
  const run = spawnSync('tshark', ['-n', ...ONE_PASS, ...args], {
    encoding: 'utf8',
    env: { ...process.env, TZ: 'UTC' },
  });
  expect(run.status, run.stderr).toBe(0);
  return run.stdout;
}

async function icmpcap(args: string[]): Promise<string> {
  const run = await runIcmpcap(['capture', ...args], tmp);
  expect(run.code, run.stderr).toBe(0);
  return run.stdout;
}

function fieldArgs(fields: readonly string[]): string[] {
  return fields.flatMap((f) => ['-e', f]);
}

describe.skipIf(!hasTshark)('capture -T fields and -z srt print what tshark prints', () => {
  const every = join(tmp, 'every.pcap');
  const echoes = join(tmp, 'echoes.pcap');
  beforeAll(() => {
    // What tshark dissects as ICMP: icmpcap's file reader still leaves out the packets it cannot decode
    // as ICMP (non-first fragments, short ICMP headers; issue 11), which would shift frame numbers.
    const raw = join(tmp, 'every-raw.pcap');
    writePcap(raw, everyKind());
    tshark(['-r', raw, '-Y', 'icmp || icmpv6', '-w', every]);
    writePcap(
      echoes,
      [...echoTraffic(7, 40, 4), ...echoTraffic(8, 30, 6)].sort((a, b) => (a.tsNs < b.tsNs ? -1 : 1)),
    );
  });

  // Filters whose fields have one occurrence: tshark's icmpv6.type == 128 also matches the request an error
  // quotes, ours the outer message only.
  const filters = ['', 'icmp.type == 0', 'icmpv6.type == 129', 'frame.number <= 5'];
  it.each(filters)('every field of every ICMP kind, -Y "%s"', async (filter) => {
    const y = filter ? ['-Y', filter] : [];
    const opts = ['-E', 'separator=|', '-E', 'occurrence=a', '-E', 'aggregator=,'];
    const theirs = tshark(['-r', every, ...y, '-T', 'fields', ...opts, ...fieldArgs(ALL_FIELDS)]);
    const ours = await icmpcap(['-r', every, ...y, '-T', 'fields', ...opts, ...fieldArgs(ALL_FIELDS)]);
    expect(theirs.length).toBeGreaterThan(0);
    expect(ours.split('\n')).toEqual(theirs.split('\n'));
  });

  it('-E header, quote, separator and occurrence as tshark reads them', async () => {
    const fields = ['frame.number', 'ip.src', 'ip.dst', 'icmp.type', 'icmp.seq', 'icmp.resptime'];
    for (const e of [
      ['header=y', 'quote=d', 'separator=,'],
      ['occurrence=f', 'separator=/s'],
      ['occurrence=l', 'quote=s', 'aggregator=;'],
    ]) {
      const opts = e.flatMap((o) => ['-E', o]);
      const theirs = tshark(['-r', every, '-T', 'fields', ...opts, ...fieldArgs(fields)]);
      const ours = await icmpcap(['-r', every, '-T', 'fields', ...opts, ...fieldArgs(fields)]);
      expect(ours, e.join(' ')).toBe(theirs);
    }
  });

  it('-T json with -e has tshark layers', async () => {
    const fields = ['ip.src', 'icmp.type', 'icmpv6.type'];
    const strip = (text: string) => (JSON.parse(text) as { _source: unknown }[]).map((p) => p._source);
    const theirs = tshark(['-r', echoes, '-c', '6', '-T', 'json', ...fieldArgs(fields)]);
    const ours = await icmpcap(['-r', echoes, '-c', '6', '-T', 'json', ...fieldArgs(fields)]);
    expect(strip(ours)).toEqual(strip(theirs));
  });

  it.each(['icmp,srt', 'icmpv6,srt', 'icmp,srt,ip.addr == 10.0.0.2', 'icmpv6,srt,frame.number > 20'])(
    '-z %s equals tshark',
    async (stat) => {
      for (const file of [every, echoes]) {
        const theirs = tshark(['-r', file, '-q', '-z', stat.replaceAll(' ', '')]);
        const ours = await icmpcap(['-r', file, '-q', '-z', stat.replaceAll(' ', '')]);
        expect(ours).toBe(theirs);
      }
    },
  );

  it('-z icmpcap,peers prints loss and RTT per peer; a bad -z or -e is a usage error', async () => {
    const out = await icmpcap(['-r', echoes, '-q', '-z', 'icmpcap,peers']);
    expect(out).toMatch(/^Peer +Requests +Replies +Lost +% Loss +Min +Mean +Median +P95 +Max +Jitter/m);
    expect(out.split('\n').filter((l) => /^\d+\.\d+\.\d+\.\d+ |^[0-9a-f:]+ /.test(l)).length).toBeGreaterThan(
      0,
    );
    const badZ = await runIcmpcap(['capture', '-r', echoes, '-z', 'io,stat,1'], tmp);
    expect(badZ.code).toBe(2);
    expect(badZ.stderr).toMatch(/-z io,stat,1: icmpcap computes icmp,srt/);
    const badE = await runIcmpcap(['capture', '-r', echoes, '-T', 'fields', '-e', 'icmp.tpye'], tmp);
    expect(badE.code).toBe(2);
    expect(badE.stderr).toMatch(/-e icmp\.tpye: there is no such field/);
  });
});

describe.skipIf(!hasTshark || !hasTools())('capture -T fields on real pings captured by tcpdump', () => {
  const lab = new NetnsLab();
  let file = '';
  beforeAll(async () => {
    lab.setUp();
    file = (await captureRealTraffic(lab, tmp, false)).ethPcapNs;
  });
  afterAll(() => lab.tearDown());

  it('line for line, and the srt tables', async () => {
    const fields = [
      'frame.number',
      'ip.src',
      'ipv6.dst',
      'icmp.type',
      'icmpv6.type',
      'icmp.seq',
      'icmp.resptime',
      'icmpv6.resptime',
    ];
    // Only ICMP in the file: frame numbers agree (icmpcap reads ICMP packets only).
    const theirs = tshark(['-r', file, '-Y', 'icmp || icmpv6', '-T', 'fields', ...fieldArgs(fields)]);
    const icmpOnly = join(tmp, 'icmp-only.pcap');
    tshark(['-r', file, '-Y', 'icmp || icmpv6', '-w', icmpOnly]);
    const theirsOnly = tshark(['-r', icmpOnly, '-T', 'fields', ...fieldArgs(fields)]);
    const ours = await icmpcap(['-r', icmpOnly, '-T', 'fields', ...fieldArgs(fields)]);
    expect(theirs.split('\n').length).toBe(theirsOnly.split('\n').length);
    expect(ours).toBe(theirsOnly);
    expect(await icmpcap(['-r', icmpOnly, '-q', '-z', 'icmp,srt', '-z', 'icmpv6,srt'])).toBe(
      tshark(['-r', icmpOnly, '-q', '-z', 'icmp,srt', '-z', 'icmpv6,srt']),
    );
  });
});
