/**
 * Wireshark's extcap interface, with Debian's tshark 4.0: `tshark -D` lists icmpcap, and
 * `tshark -i icmpcap -a duration:3` captures real pings between two namespaces with their direction
 * and interface, honouring the options of icmpcap's dialog (interfaces, ICMP filter).
 *
 * tshark 4.0 has no personal extcap folder and ignores WIRESHARK_EXTCAP_DIR when run as root (it counts
 * as "special privileges"), so tshark runs as nobody with WIRESHARK_EXTCAP_DIR pointing at a temporary
 * folder; the extcap then captures as nobody through icmpcap-helper (CAP_NET_RAW on a copy), which is
 * how a desktop user in the icmpcap group captures too.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NetnsPair, createNetnsPair } from '../../../test/support/netns.js';
import { encodeRecord } from '../files/packet.js';
import { ipv4Icmp } from '../files/testing/packets.js';
import { OFF } from '../record.js';
import { extcapMain } from './extcap.js';
import { PcapngStream, filterSpec, recordFilter } from './stream.js';

const ID = 20000 + (process.pid % 20000);
const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
let pair: NetnsPair;
let tmp: string;
let env: Record<string, string>;

beforeAll(() => {
  execFileSync('bash', ['scripts/deps.sh', 'files', 'test'], { stdio: 'inherit' });
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-extcap-'));
  chmodSync(tmp, 0o755);
  const extcapDir = join(tmp, 'extcap');
  const home = join(tmp, 'home');
  mkdirSync(extcapDir, { mode: 0o755 });
  mkdirSync(home, { mode: 0o777 });
  chmodSync(home, 0o777);
  writeFileSync(
    join(extcapDir, 'icmpcap'),
    `#!/bin/sh\nexec ${process.execPath} ${resolve('bin/icmpcap-extcap.mjs')} "$@"\n`,
    { mode: 0o755 },
  );
  const helper = join(tmp, 'icmpcap-helper');
  copyFileSync('native/build/Release/icmpcap-helper', helper);
  chmodSync(helper, 0o755);
  execFileSync('setcap', ['cap_net_raw+ep', helper]);
  env = { HOME: home, WIRESHARK_EXTCAP_DIR: extcapDir, ICMPCAP_HELPER: helper, PATH: process.env.PATH ?? '' };
  pair = createNetnsPair('xcap');
});

afterAll(() => {
  pair?.destroy();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** tshark as nobody in namespace A with the temporary extcap folder. */
function tsharkArgs(args: string[]): string[] {
  return [
    'netns',
    'exec',
    pair.a,
    ...NOBODY,
    'env',
    ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
    'tshark',
    ...args,
  ];
}

/** Captures 3 s through the extcap while B pings A (v4 and v6) until tshark is done; returns the fields. */
async function captureWhilePinging(options: string[]): Promise<string[][]> {
  const file = join(tmp, `capture-${Math.random().toString(36).slice(2)}.pcapng`);
  writeFileSync(file, '', { mode: 0o666 });
  chmodSync(file, 0o666);
  const tshark = spawn('ip', tsharkArgs(['-i', 'icmpcap', ...options, '-a', 'duration:3', '-w', file]), {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  tshark.stderr.on('data', (d: Buffer) => (err += d.toString()));
  // Pings for as long as tshark runs (its extcap takes a moment to start), at most 30 s.
  const pings = [pair.v4.a, pair.v6.a].map((target) =>
    spawn('ip', ['netns', 'exec', pair.b, 'ping', '-q', '-i', '0.1', '-w', '30', '-e', String(ID), target], {
      stdio: 'ignore',
    }),
  );
  const code = await new Promise<number | null>((r) => tshark.once('exit', r));
  for (const p of pings) p.kill('SIGINT');
  await Promise.all(
    pings.map((p) => new Promise((r) => (p.exitCode === null ? p.once('exit', r) : r(null)))),
  );
  expect([code, err]).toEqual([0, expect.stringContaining('Capturing on') as unknown]);
  const out = execFileSync(
    'tshark',
    [
      '-r',
      file,
      '-T',
      'fields',
      '-E',
      'separator=|',
      '-e',
      'frame.interface_name',
      '-e',
      'frame.packet_flags_direction',
      '-e',
      'ip.src',
      '-e',
      'ipv6.src',
      '-e',
      'ip.dst',
      '-e',
      'ipv6.dst',
      '-e',
      'icmp.type',
      '-e',
      'icmpv6.type',
      '-e',
      'icmp.ident',
      '-e',
      'icmpv6.echo.identifier',
      '-e',
      'icmp.seq',
      '-e',
      'icmpv6.echo.sequence_number',
    ],
    { encoding: 'utf8' },
  );
  return out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split('|'))
    .map((r) => [r[0]!, String(Number(r[1])), ...r.slice(2)]);
}

describe('the icmpcap extcap in tshark', () => {
  it('is listed by tshark -D', () => {
    const out = execFileSync('ip', tsharkArgs(['-D']), { encoding: 'utf8' });
    expect(out).toMatch(/^\d+\. icmpcap \(icmpcap: ICMP and ICMPv6 \(AF_PACKET via icmpcap-helper\)\)$/m);
  });

  it('captures real pings with their direction and interface', async () => {
    const rows = await captureWhilePinging(['-o', `extcap.icmpcap.interfaces:${pair.ifA}`]);
    // Fields: iface, dir, src4, src6, dst4, dst6, type4, type6, id4, id6, seq4, seq6.
    const ours = rows.filter((r) => Number(r[8] || r[9]) === ID);
    const requests = ours.filter((r) => r[6] === '8' || r[7] === '128');
    const replies = ours.filter((r) => r[6] === '0' || r[7] === '129');
    expect(requests.length).toBeGreaterThanOrEqual(4);
    for (const r of requests) {
      expect(r.slice(0, 6)).toEqual(
        r[2] ? [pair.ifA, '1', pair.v4.b, '', pair.v4.a, ''] : [pair.ifA, '1', '', pair.v6.b, '', pair.v6.a],
      );
    }
    for (const r of replies) {
      expect(r.slice(0, 6)).toEqual(
        r[2] ? [pair.ifA, '2', pair.v4.a, '', pair.v4.b, ''] : [pair.ifA, '2', '', pair.v6.a, '', pair.v6.b],
      );
    }
    // Each request's reply is there (the capture may end between a request and its reply).
    const key = (r: string[]) => `${r[2] ? 4 : 6}/${r[10] || r[11]}`;
    const answered = new Set(replies.map(key));
    expect(requests.filter((r) => !answered.has(key(r))).length).toBeLessThanOrEqual(2);
    expect(new Set(requests.map((r) => (r[2] ? 4 : 6)))).toEqual(new Set([4, 6]));
  });

  it("applies icmpcap's filter options from the dialog", async () => {
    const rows = await captureWhilePinging([
      '-o',
      'extcap.icmpcap.types:echo-reply',
      '-o',
      `extcap.icmpcap.hosts:dst ${pair.v4.b}`,
    ]);
    expect(rows.length).toBeGreaterThanOrEqual(2);
    for (const r of rows) expect([r[1], r[4], r[6]]).toEqual(['2', pair.v4.b, '0']);
  });
});

describe('the extcap protocol and stream', () => {
  const run = async (args: string[]) => {
    let out = '';
    let err = '';
    const code = await extcapMain(args, { out: (t) => (out += t), err: (t) => (err += t), version: '1.2.3' });
    return { code, out, err };
  };

  it("describes icmpcap's capture options for Wireshark's dialog", async () => {
    const config = await run(['--extcap-interface', 'icmpcap', '--extcap-config']);
    expect(config.code).toBe(0);
    for (const call of [
      '--source',
      '--interfaces',
      '--snaplen',
      '--families',
      '--types',
      '--directions',
      '--hosts',
    ])
      expect(config.out).toContain(`{call=${call}}`);
    expect(config.out).toContain('{value=lo}');
    expect((await run(['--extcap-interface', 'icmpcap', '--extcap-dlts'])).out).toContain('{number=101}');
  });

  it('refuses what it cannot do, saying why', async () => {
    expect(await run(['--bogus'])).toMatchObject({
      code: 2,
      err: expect.stringContaining("'--bogus'") as unknown,
    });
    expect(await run(['--extcap-interface', 'eth0', '--extcap-dlts'])).toMatchObject({ code: 2 });
    expect(
      await run([
        '--extcap-interface',
        'icmpcap',
        '--capture',
        '--fifo',
        '/nonexistent',
        '--extcap-capture-filter',
        'icmp',
      ]),
    ).toMatchObject({ code: 2, err: expect.stringContaining('BPF capture filters are not used') as unknown });
    expect(() => filterSpec({ types: 'echo-requestx' })).toThrow('not an ICMP type name');
    expect(() => filterSpec({ hosts: 'src 300.1.1.1' })).toThrow('hosts:');
  });

  it('writes direction flags and the sending process as a packet comment, as tshark reads them', () => {
    const out = new Uint8Array(4096);
    const packet = ipv4Icmp({ src: [192, 0, 2, 1], dst: [192, 0, 2, 2], type: 8, id: 7, seq: 1 });
    const size = encodeRecord(
      packet,
      { tsNs: 1_700_000_000_000_000_000n, ifindex: 1, dir: 1, origLen: packet.length },
      out,
      0,
    )!;
    const view = new DataView(out.buffer);
    view.setUint16(OFF.flags, view.getUint16(OFF.flags, true) | 0x40, true);
    view.setUint32(36, process.pid, true);
    const size2 = encodeRecord(
      ipv4Icmp({ src: [192, 0, 2, 2], dst: [192, 0, 2, 1], type: 0, id: 7, seq: 1 }),
      { tsNs: 1_700_000_000_001_000_000n, ifindex: 1, dir: 0, origLen: packet.length },
      out,
      size,
    )!;
    const chunks: Uint8Array[] = [];
    const stream = new PcapngStream((b) => chunks.push(b.slice()), {
      application: 'icmpcap test',
      snaplen: 256,
      ifname: () => 'veth-test',
      filter: recordFilter(filterSpec({ families: 'ipv4' })),
    });
    expect(stream.append(out.slice(0, size + size2).buffer)).toBe(2);
    const file = join(tmp, 'comment.pcapng');
    writeFileSync(file, Buffer.concat(chunks));
    const fields = spawnSync(
      'tshark',
      [
        '-r',
        file,
        '-T',
        'fields',
        '-E',
        'separator=|',
        '-e',
        'frame.interface_name',
        '-e',
        'frame.packet_flags_direction',
        '-e',
        'icmp.type',
        '-e',
        'frame.comment',
      ],
      { encoding: 'utf8' },
    );
    const name = execFileSync('cat', [`/proc/${process.pid}/comm`], { encoding: 'utf8' }).trim();
    expect(fields.stdout.trim().split('\n')).toEqual([
      `veth-test|0x00000002|8|process ${name} (pid ${process.pid})`,
      'veth-test|0x00000001|0|',
    ]);
  });
});
