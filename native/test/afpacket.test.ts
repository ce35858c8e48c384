// Host tests of the AF_PACKET source with real packets: two network namespaces joined by a
// veth pair, ping from one, capture in the other. Needs root (namespaces, setcap).
// Run: npx vitest run native/test/afpacket.test.ts
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ChildCapture,
  NetnsPair,
  nativeDir,
  ping,
  sh,
  type CaptureResult,
  type CapturedRecord,
} from './netns.js';

const isRoot = process.getuid?.() === 0;
/** The system's python (a version manager's shim takes a second to start). */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const helperBuilt = path.join(nativeDir, 'build', 'Release', 'icmpcap-helper');
/** Runs the helper as icmpcap does, with a Unix SOCK_SEQPACKET socket on fd 3, and prints its exit status. */
const HELPER_FIXTURE = path.join(nativeDir, 'test', 'fixtures', 'run_helper.py');
const DIR_IN = 0;
const DIR_OUT = 1;
const HOOK_NONE = 255;
const F_HAS_ECHO = 0x4;
const N = 20;

function echoes(r: CaptureResult, family: 4 | 6, dir: number, type: number): CapturedRecord[] {
  return r.records.filter((x) => x.family === family && x.dir === dir && x.type === type);
}

function expectPingExchange(
  r: CaptureResult,
  family: 4 | 6,
  client: string,
  server: string,
  n: number,
): void {
  expect(r.error).toBeNull();
  expect(r.framingErrors).toBe(0);
  const [reqType, repType, ipLen] = family === 4 ? [8, 0, 84] : [128, 129, 104];
  const requests = echoes(r, family, DIR_IN, reqType);
  const replies = echoes(r, family, DIR_OUT, repType);
  expect(requests).toHaveLength(n);
  expect(replies).toHaveLength(n);
  // Nothing else of this family's echo traffic (no duplicates, no wrong directions).
  expect(
    r.records.filter((x) => x.family === family && (x.type === reqType || x.type === repType)),
  ).toHaveLength(2 * n);
  expect(requests.map((x) => x.seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
  expect(replies.map((x) => x.seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
  const id = requests[0]?.id;
  for (const [i, x] of [...requests, ...replies].entries()) {
    const isReq = i < n;
    expect(x.id).toBe(id);
    expect(x.saddr).toBe(isReq ? client : server);
    expect(x.daddr).toBe(isReq ? server : client);
    expect(x.ttl).toBe(64);
    expect(x.hook).toBe(HOOK_NONE);
    expect(x.flags & F_HAS_ECHO).toBe(F_HAS_ECHO);
    expect(x.origLen).toBe(ipLen);
    expect(x.capLen).toBe(ipLen);
    expect(x.len).toBe(72 + ipLen);
    expect(x.ipVersion).toBe(family);
    expect(x.pad).toBe(0);
    expect(x.code).toBe(0);
  }
  // Each reply follows its request; timestamps are nanoseconds of CLOCK_REALTIME.
  for (let i = 0; i < n; i++) {
    expect(BigInt(replies[i]!.ts) >= BigInt(requests[i]!.ts)).toBe(true);
  }
  const nowNs = BigInt(Date.now()) * 1_000_000n;
  const first = BigInt(requests[0]!.ts);
  expect(first > nowNs - 3_600_000_000_000n && first <= nowNs).toBe(true);
}

function lastEventIsStopped(r: CaptureResult): void {
  expect(r.events.at(-1)?.type).toBe('stopped');
  expect(r.events.filter((e) => e.type === 'stopped')).toHaveLength(1);
}

describe.skipIf(!isRoot)('AF_PACKET source, real packets between network namespaces', () => {
  let net: NetnsPair;
  let tmp: string;

  beforeAll(() => {
    if (!existsSync(path.join(nativeDir, 'build', 'Release', 'icmpcap.node')))
      throw new Error('native addon not built: run npm run build:native');
    net = new NetnsPair();
    net.addVeth('vA', 'vB', ['10.201.0.1', '10.201.0.2'], ['fd00:201::1', 'fd00:201::2']);
    tmp = mkdtempSync(path.join(tmpdir(), 'icmpcap-test-'));
    chmodSync(tmp, 0o755);
  });

  afterAll(() => {
    net?.destroy();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('captures N IPv4 echo requests in and N replies out with exact fields', async () => {
    const cap = new ChildCapture(net.b, { source: 'afpacket', interfaces: ['vB'] });
    await cap.ready;
    ping(net.a, '10.201.0.2', N);
    const r = await cap.stop();
    expectPingExchange(r, 4, '10.201.0.1', '10.201.0.2', N);
    expect(new Set(r.records.map((x) => x.ifindex)).size).toBe(1);
    expect(r.stats?.source).toBe('afpacket');
    expect(r.stats?.captured).toBe(r.records.length);
    expect(r.stats?.delivered).toBe(r.records.length);
    expect(r.stats?.droppedKernel).toBe(0);
    expect(r.probe?.find((p) => p.source === 'afpacket')).toMatchObject({ available: true, via: 'helper' });
    lastEventIsStopped(r);
  });

  it('captures N ICMPv6 echo requests in and N replies out on all interfaces', async () => {
    const cap = new ChildCapture(net.b, { source: 'afpacket' });
    await cap.ready;
    ping(net.a, 'fd00:201::2', N);
    const r = await cap.stop();
    expectPingExchange(r, 6, 'fd00:201::1', 'fd00:201::2', N);
    // Only ICMP/ICMPv6 passes the filter (neighbour discovery is ICMPv6 too).
    for (const x of r.records)
      expect(x.family === 4 ? x.ipVersion === 4 : [128, 129, 133, 134, 135, 136, 143].includes(x.type)).toBe(
        true,
      );
    lastEventIsStopped(r);
  });

  it('truncates to snaplen and flags it', async () => {
    const cap = new ChildCapture(net.b, { source: 'afpacket', interfaces: ['vB'], snaplen: 64 });
    await cap.ready;
    ping(net.a, '10.201.0.2', 3, ['-s', '1000']);
    const r = await cap.stop();
    const req = echoes(r, 4, DIR_IN, 8);
    expect(req).toHaveLength(3);
    for (const x of req) {
      expect(x.origLen).toBe(1028);
      expect(x.capLen).toBe(64);
      expect(x.len).toBe(72 + 64);
      expect(x.flags & 0x2).toBe(0x2);
    }
  });

  it('captures through icmpcap-helper as an unprivileged user', async () => {
    const helper = path.join(tmp, 'icmpcap-helper');
    copyFileSync(helperBuilt, helper);
    chmodSync(helper, 0o755);
    sh('setcap', ['cap_net_raw+ep', helper]);
    const nobody = { uid: 65534, gid: 65534 };
    const cap = new ChildCapture(
      net.b,
      { source: 'afpacket', interfaces: ['vB'], helperPath: helper },
      nobody,
    );
    await cap.ready;
    ping(net.a, '10.201.0.2', N);
    const r = await cap.stop();
    expectPingExchange(r, 4, '10.201.0.1', '10.201.0.2', N);
    expect(r.probe?.find((p) => p.source === 'afpacket')).toMatchObject({ available: true, via: 'helper' });
    lastEventIsStopped(r);
  });

  it('explains the fix when the helper lacks CAP_NET_RAW', async () => {
    const helper = path.join(tmp, 'icmpcap-helper-nocap');
    copyFileSync(helperBuilt, helper);
    chmodSync(helper, 0o755);
    const cap = new ChildCapture(
      net.b,
      { source: 'afpacket', interfaces: ['vB'], helperPath: helper },
      { uid: 65534, gid: 65534 },
    );
    const r = await cap.result;
    // The advice (chgrp, chmod, setcap) is electron/core/advice.ts's, from kind + helperPath.
    expect(r.error).toMatchObject({ code: 'EPERM', kind: 'helper-no-capability', helperPath: helper });
    expect(r.error?.message).toContain('icmpcap: helper socket(AF_PACKET): EPERM');
    const p = r.probe?.find((x) => x.source === 'afpacket');
    expect(p).toMatchObject({ available: false, kind: 'helper-no-capability', helperPath: helper });
  });

  it('explains the fix when the helper is missing', async () => {
    const helper = path.join(tmp, 'no-such-helper');
    const cap = new ChildCapture(
      net.b,
      { source: 'afpacket', helperPath: helper },
      { uid: 65534, gid: 65534 },
    );
    const r = await cap.result;
    expect(r.error).toMatchObject({ code: 'ENOENT', kind: 'helper-missing', helperPath: helper });
    expect(r.error?.message).toContain(`icmpcap: helper ${helper}: ENOENT`);
    expect(r.probe?.find((x) => x.source === 'afpacket')?.available).toBe(false);
  });

  it('the helper refuses each bad argument for its own reason, and a missing fd 3', () => {
    // Run as icmpcap runs it (fd 3 a SOCK_SEQPACKET socket): only the arguments decide. Each bad list is the
    // good one with one thing changed, and the good one is accepted on the same path (exit 0): so the change
    // is what was refused (exit 2, a line naming the argument and why, then the usage), not the way the
    // helper was run.
    const run = (args: string[]): { status: number; stderr: string } => {
      const r = spawnSync('ip', ['netns', 'exec', net.b, PYTHON, HELPER_FIXTURE, helperBuilt, ...args], {
        encoding: 'utf8',
      });
      return { status: Number(r.stdout), stderr: r.stderr };
    };
    const USAGE = /^usage: icmpcap-helper --snaplen 64\.\.65535/;
    const snap = ['--snaplen', '256'];
    const ring = ['--ring-bytes', '65536'];
    const lo = ['--ifindex', '1'];
    // 64 interfaces of the namespace, each once: lo, vB and veth pairs made for this test (the host kernel has
    // no dummy interfaces).
    const made: string[] = [];
    for (let k = 0; k < 31; k++) {
      // A pair left by an earlier attempt goes first.
      spawnSync('ip', ['-n', net.b, 'link', 'del', `hd${k}`]);
      execFileSync('ip', ['-n', net.b, 'link', 'add', `hd${k}`, 'type', 'veth', 'peer', 'name', `he${k}`]);
      made.push(`hd${k}`);
    }
    const links = (
      JSON.parse(execFileSync('ip', ['-n', net.b, '-j', 'link', 'show'], { encoding: 'utf8' })) as {
        ifindex: number;
      }[]
    ).map((l) => String(l.ifindex));
    expect(links.length).toBe(64);
    // Past 64, made-up numbers: refused before any socket is bound.
    const ifindexes = (n: number): string[] =>
      [...links, ...Array.from({ length: 8 }, (_, k) => String(100_000 + k))]
        .slice(0, n)
        .flatMap((i) => ['--ifindex', i]);
    try {
      const RET_ALL = '000600000000ffff'; // ret #0xffff: one classic BPF instruction, code jt jf k
      const good: [string, string[]][] = [
        ['the base list', [...snap, ...ring, ...lo]],
        ['in another order', [...lo, ...ring, ...snap]],
        ['no --ifindex: all interfaces', [...snap, ...ring]],
        ['--ifindex 0: all interfaces', [...snap, ...ring, '--ifindex', '0']],
        ['the smallest snaplen', ['--snaplen', '64', ...ring, ...lo]],
        ['the largest snaplen', ['--snaplen', '65535', ...ring, ...lo]],
        ['64 sockets, the most it has rings for', [...snap, ...ring, ...ifindexes(64)]],
        ['a filter', [...snap, ...ring, ...lo, '--filter', RET_ALL]],
      ];
      for (const [why, args] of good) expect(run(args), why).toEqual({ status: 0, stderr: '' });
      // Each refusal names the argument and what is wrong with it on its first line, then the usage.
      const bad: [string, string[], string][] = [
        ['snaplen below 64', ['--snaplen', '63', ...ring, ...lo], '--snaplen 63: must be 64..65535'],
        ['snaplen 10', ['--snaplen', '10', ...ring, ...lo], '--snaplen 10: must be 64..65535'],
        ['snaplen above 65535', ['--snaplen', '65536', ...ring, ...lo], '--snaplen 65536: must be 64..65535'],
        ['snaplen not a number', ['--snaplen', 'big', ...ring, ...lo], '--snaplen big: must be 64..65535'],
        ['snaplen signed', ['--snaplen', '+256', ...ring, ...lo], '--snaplen +256: must be 64..65535'],
        ['snaplen with a tail', ['--snaplen', '256k', ...ring, ...lo], '--snaplen 256k: must be 64..65535'],
        ['snaplen empty', ['--snaplen', '', ...ring, ...lo], '--snaplen "": must be 64..65535'],
        ['no snaplen', [...ring, ...lo], '--snaplen is required'],
        ['snaplen without its value, last', [...ring, ...lo, '--snaplen'], '--snaplen: its value is missing'],
        ['snaplen twice, the same', [...snap, ...ring, ...lo, ...snap], '--snaplen given twice'],
        ['snaplen twice, another', [...snap, ...ring, '--snaplen', '64', ...lo], '--snaplen given twice'],
        ['snaplen twice, at once', [...snap, ...snap, ...ring, ...lo], '--snaplen given twice'],
        [
          'ring bytes below 64 KiB',
          [...snap, '--ring-bytes', '65535', ...lo],
          '--ring-bytes 65535: must be 65536..1073741824',
        ],
        [
          'ring bytes above 1 GiB',
          [...snap, '--ring-bytes', String(2 ** 30 + 1), ...lo],
          '--ring-bytes 1073741825: must be 65536..1073741824',
        ],
        [
          'ring bytes times the sockets above 1 GiB',
          [...snap, '--ring-bytes', String(2 ** 29 + 1), ...ifindexes(2)],
          '--ring-bytes 536870913: times 2 sockets is more than 1073741824 over all sockets',
        ],
        ['no ring bytes', [...snap, ...lo], '--ring-bytes is required'],
        ['ring bytes twice', [...snap, ...ring, ...ring, ...lo], '--ring-bytes given twice'],
        [
          'ring bytes without its value, last',
          [...snap, ...lo, '--ring-bytes'],
          '--ring-bytes: its value is missing',
        ],
        [
          '65 sockets',
          [...snap, ...ring, ...ifindexes(65)],
          '--ifindex 100000: more than 64 of them (one socket each)',
        ],
        ['an interface twice', [...snap, ...ring, ...lo, '--ifindex', '2', ...lo], '--ifindex 1 given twice'],
        [
          'all interfaces beside one',
          [...snap, ...ring, ...lo, '--ifindex', '0'],
          '--ifindex 0: 0 (all interfaces) goes alone, without other --ifindex',
        ],
        [
          'one beside all interfaces',
          [...snap, ...ring, '--ifindex', '0', ...lo],
          '--ifindex 1: 0 (all interfaces) goes alone, without other --ifindex',
        ],
        [
          'all interfaces twice',
          [...snap, ...ring, '--ifindex', '0', '--ifindex', '0'],
          '--ifindex 0 given twice',
        ],
        [
          'ifindex above 2^31 - 1',
          [...snap, ...ring, '--ifindex', '2147483648'],
          '--ifindex 2147483648: must be 0..2147483647',
        ],
        ['ifindex negative', [...snap, ...ring, '--ifindex', '-1'], '--ifindex -1: must be 0..2147483647'],
        [
          'an interface name for an ifindex',
          [...snap, ...ring, '--ifindex', 'lo'],
          '--ifindex lo: must be 0..2147483647',
        ],
        [
          'ifindex without its value, last',
          [...snap, ...ring, '--ifindex'],
          '--ifindex: its value is missing',
        ],
        [
          '--interface: no longer taken',
          [...snap, ...ring, '--interface', 'lo'],
          '--interface: unknown option',
        ],
        ['an unknown flag', [...snap, ...ring, ...lo, '--bogus', '1'], '--bogus: unknown option'],
        ['a word that is no flag', [...snap, ...ring, ...lo, 'bogus', '1'], 'bogus: unknown option'],
        ['a word that is no flag, last', [...snap, ...ring, ...lo, 'bogus'], 'bogus: unknown option'],
        [
          'filter hex in capitals',
          [...snap, ...ring, ...lo, '--filter', RET_ALL.toUpperCase()],
          '--filter: character 13 is not a lowercase hex digit',
        ],
        [
          'filter not hex',
          [...snap, ...ring, ...lo, '--filter', 'zz0600000000ffff'],
          '--filter: character 1 is not a lowercase hex digit',
        ],
        [
          'filter not whole instructions',
          [...snap, ...ring, ...lo, '--filter', RET_ALL.slice(1)],
          '--filter: 15 hex digits: not whole instructions of 16 hex digits each',
        ],
        [
          'filter empty',
          [...snap, ...ring, ...lo, '--filter', ''],
          '--filter "": must be 1..2048 instructions of 16 hex digits each',
        ],
        [
          'filter longer than 2048 instructions',
          [...snap, ...ring, ...lo, '--filter', RET_ALL.repeat(2049)],
          '--filter: 2049 instructions: must be 1..2048',
        ],
        [
          'filter twice',
          [...snap, ...ring, ...lo, '--filter', RET_ALL, '--filter', RET_ALL],
          '--filter given twice',
        ],
        [
          'filter without its value, last',
          [...snap, ...ring, ...lo, '--filter'],
          '--filter: its value is missing',
        ],
      ];
      for (const [why, args, message] of bad) {
        const r = run(args);
        expect(r.status, why).toBe(2);
        const [first, ...rest] = r.stderr.split('\n');
        expect(first, why).toBe(`icmpcap-helper: ${message}`);
        expect(rest.join('\n'), why).toMatch(USAGE);
      }
      // Hex that parses into a program the kernel refuses (no ret at the end): the arguments passed, the
      // socket option failed, and the helper says which (exit 1, not 2).
      expect(run([...snap, ...ring, ...lo, '--filter', '0020000000000000']).status).toBe(1);
      // The good list with no socket on fd 3: refused before the arguments are read, for that reason.
      const noSocket = spawnSync(helperBuilt, [...snap, ...ring, ...lo], { encoding: 'utf8' });
      expect(noSocket.status).toBe(2);
      expect(noSocket.stderr).toBe('icmpcap-helper: fd 3 is not a Unix SOCK_SEQPACKET socket\n');
    } finally {
      for (const link of made) execFileSync('ip', ['-n', net.b, 'link', 'del', link]);
    }
  });

  it('the helper bounds its packet rings: 64 KiB to 1 GiB each, 1 GiB over all its sockets', () => {
    // As icmpcap runs it (fd 3 a SOCK_SEQPACKET socket), so only the arguments decide: 0 accepted, 2 refused.
    const run = (args: string[]): number =>
      Number(
        sh('ip', ['netns', 'exec', net.b, PYTHON, HELPER_FIXTURE, helperBuilt, '--snaplen', '256', ...args]),
      );
    // lo, vB, then made-up interface numbers (refused before any socket is bound): a socket each.
    const vB = String(
      (
        JSON.parse(execFileSync('ip', ['-n', net.b, '-j', 'link', 'show', 'vB'], { encoding: 'utf8' })) as {
          ifindex: number;
        }[]
      )[0]!.ifindex,
    );
    const lo = (n: number): string[] =>
      ['1', vB, ...Array.from({ length: Math.max(0, n - 2) }, (_, k) => String(100_000 + k))]
        .slice(0, n)
        .flatMap((i) => ['--ifindex', i]);
    expect(run(['--ring-bytes', '65536', ...lo(1)])).toBe(0);
    expect(run(['--ring-bytes', String(1 << 20), ...lo(2)])).toBe(0);
    for (const bad of [
      ['--ring-bytes', '65535', ...lo(1)],
      ['--ring-bytes', String(2 ** 30 + 1), ...lo(1)],
      // Each within bounds, together more than 1 GiB.
      ['--ring-bytes', String(2 ** 29 + 1), ...lo(2)],
      ['--ring-bytes', String(2 ** 28), ...lo(5)],
      ['--ring-bytes', '65536', ...lo(65)], // more sockets than the helper has rings for
      ['--ring-bytes', '+65536', ...lo(1)],
      ['--ring-bytes', '0x10000', ...lo(1)],
      ['--ring-bytes', '', ...lo(1)],
      ['--ring-bytes', '18446744073709617152', ...lo(1)], // 2^64 + 65536
      ['--ring-bytes', '65536', '--ring-bytes', String(2 ** 30), ...lo(1)],
      lo(1),
    ])
      expect(run(bad), bad.slice(0, 4).join(' ')).toBe(2);
  });

  it('rejects an unknown interface with ENODEV and a remedy', async () => {
    const cap = new ChildCapture(net.b, { source: 'afpacket', interfaces: ['nosuch0'] });
    const r = await cap.result;
    expect(r.error).toMatchObject({ code: 'ENODEV', kind: 'no-such-interface' });
    expect(r.error?.message).toMatch(/icmpcap: open: interface nosuch0: ENODEV — no such interface/);
  });

  it('ends the capture with interface-gone when the interface is deleted', async () => {
    net.addVeth('vC', 'vD', ['10.202.0.1', '10.202.0.2'], ['fd00:202::1', 'fd00:202::2']);
    const cap = new ChildCapture(net.b, { source: 'afpacket', interfaces: ['vD'] });
    await cap.ready;
    ping(net.a, '10.202.0.2', 3);
    sh('ip', ['-n', net.b, 'link', 'del', 'vD']);
    const r = await cap.result; // ends by itself: no stop sent
    const gone = r.events.filter((e) => e.type === 'interface-gone');
    expect(gone).toHaveLength(1);
    expect(gone[0]).toMatchObject({ ifname: 'vD', errno: 'ENODEV' });
    expect(gone[0]?.message).toContain('vD');
    lastEventIsStopped(r);
    expect(echoes(r, 4, DIR_IN, 8)).toHaveLength(3);
    expect(echoes(r, 4, DIR_OUT, 0)).toHaveLength(3);
  });

  it('counts kernel drops exactly when JavaScript stops consuming (small ring)', async () => {
    // A pair without IPv6: every ICMP frame on it is one of ours, even the dropped ones.
    net.addVeth('vE', 'vF', ['10.205.0.1', '10.205.0.2'], null);
    const flag = path.join(tmp, 'unblock');
    // What can wait while JavaScript is blocked: the batches queued for it (at most 4096 records each), the
    // one being filled and the ring: 41 441 records in 11 batches in one run. 20 000 pings (40 000 frames) fit
    // in that whenever the batches came full (0 drops, seen once in CI); 50 000 (100 000 frames) never do.
    const count = 50000;
    const cap = new ChildCapture(net.b, {
      source: 'afpacket',
      interfaces: ['vF'],
      ringBytes: 65536,
      snaplen: 64,
      blockUntilFile: flag,
    });
    await cap.ready;
    ping(net.a, '10.205.0.2', count, ['-f', '-i', '0']);
    execFileSync('touch', [flag]);
    const r = await cap.stop();
    expect(r.framingErrors).toBe(0);
    const s = r.stats!;
    // What the capture saw, should it drop nothing (a flake seen once in CI: 0 drops, cause not known).
    const seen = JSON.stringify({ stats: s, batches: r.batches, records: r.records.length });
    expect(s.droppedKernel, seen).toBeGreaterThan(0);
    // Every frame the filter accepted was either captured or counted as dropped.
    expect(r.records.every((x) => x.family === 4 && (x.type === 8 || x.type === 0))).toBe(true);
    expect(s.captured).toBe(r.records.length);
    expect(r.records.length + s.droppedKernel).toBe(2 * count);
    expect(r.events.some((e) => e.type === 'overflow')).toBe(true);
  });
});

describe.skipIf(!isRoot)('AF_PACKET source, interface life cycle', () => {
  let net: NetnsPair;
  beforeAll(() => {
    net = new NetnsPair();
    net.addVeth('vA', 'vB', ['10.206.0.1', '10.206.0.2'], null);
  });
  afterAll(() => net?.destroy());

  it('a port leaving a bridge (RTM_DELLINK of family AF_BRIDGE) does not end the capture', async () => {
    sh('ip', ['-n', net.b, 'link', 'add', 'br0', 'type', 'bridge']);
    sh('ip', ['-n', net.b, 'link', 'set', 'vB', 'master', 'br0']);
    const cap = new ChildCapture(net.b, { source: 'afpacket', interfaces: ['vB'] });
    await cap.ready;
    sh('ip', ['-n', net.b, 'link', 'set', 'vB', 'nomaster']); // as docker/libvirt detaching a veth
    sh('ip', ['-n', net.b, 'link', 'set', 'vB', 'up']);
    ping(net.a, '10.206.0.2', 3);
    const r = await cap.stop();
    expect(r.events.filter((e) => e.type === 'interface-gone')).toEqual([]);
    expect(r.records.filter((x) => x.type === 8 && x.dir === DIR_IN).map((x) => x.seq)).toEqual([1, 2, 3]);
    lastEventIsStopped(r);
  });
});

describe.skipIf(!isRoot)('AF_PACKET source, the odd packets', () => {
  let net: NetnsPair;
  beforeAll(() => {
    net = new NetnsPair();
    net.addVeth('vA', 'vB', ['10.207.0.1', '10.207.0.2'], ['fd00:207::1', 'fd00:207::2']);
  });
  afterAll(() => net?.destroy());

  const F_FRAGMENT = 0x8;
  const F_NOT_FIRST = 0x10;

  it('fragments: the first decoded and flagged, the others flagged and never typed', async () => {
    const cap = new ChildCapture(net.b, { source: 'afpacket', interfaces: ['vB'] });
    await cap.ready;
    ping(net.a, '10.207.0.2', 3, ['-s', '3000']); // 3 fragments each way at MTU 1500
    ping(net.a, 'fd00:207::2', 3, ['-s', '3000']);
    const r = await cap.stop();
    for (const family of [4, 6]) {
      const [req, rep] = family === 4 ? [8, 0] : [128, 129];
      const frags = r.records.filter((x) => x.family === family && x.flags & F_FRAGMENT);
      const first = frags.filter((x) => !(x.flags & F_NOT_FIRST));
      const rest = frags.filter((x) => x.flags & F_NOT_FIRST);
      expect(first.filter((x) => x.type === req && x.dir === DIR_IN).map((x) => x.seq)).toEqual([1, 2, 3]);
      expect(first.filter((x) => x.type === rep && x.dir === DIR_OUT).map((x) => x.seq)).toEqual([1, 2, 3]);
      expect(rest).toHaveLength(12); // 2 more per datagram, 6 datagrams
      for (const x of rest)
        expect([x.type, x.code, x.id, x.seq, x.flags & F_HAS_ECHO]).toEqual([0, 0, 0, 0, 0]);
    }
  });

  it('MLD behind a hop-by-hop header is captured, as the module captures it', async () => {
    const cap = new ChildCapture(net.b, { source: 'afpacket', interfaces: ['vB'] });
    await cap.ready;
    // A new address joins its solicited-node group: an MLDv2 report (143) with router alert.
    sh('ip', ['-n', net.a, 'addr', 'add', 'fd00:207::77/64', 'dev', 'vA', 'nodad']);
    await new Promise((r) => setTimeout(r, 1500)); // reports go out at once, then repeat within 1 s
    const r = await cap.stop();
    const mld = r.records.filter((x) => x.family === 6 && x.type === 143);
    expect(mld.length).toBeGreaterThan(0);
    for (const x of mld) expect([x.daddr, x.ttl]).toEqual(['ff02::16', 1]); // MLDv2 reports
  });

  it('frames with the VLAN tag still inline are captured from the IP header on', async () => {
    const cap = new ChildCapture(net.a, { source: 'afpacket', interfaces: ['vA'] });
    await cap.ready;
    sh('ip', [
      'netns',
      'exec',
      net.a,
      'python3',
      path.join(nativeDir, 'test', 'fixtures', 'send_tagged.py'),
      'vA',
      '10.207.0.1',
      '10.207.0.9',
      '4',
    ]);
    const r = await cap.stop();
    const tagged = r.records.filter((x) => x.id === 0x4242 && x.type === 8);
    expect(tagged.map((x) => x.seq)).toEqual([1, 2, 3, 4]);
    for (const x of tagged) {
      expect(x.ipVersion).toBe(4); // the record's bytes start at the IP header
      expect([x.saddr, x.daddr, x.dir, x.origLen]).toEqual(['10.207.0.1', '10.207.0.9', DIR_OUT, 20 + 32]);
    }
  });

  it('1,500-byte pings at the default snap length: everything drains, without spinning', async () => {
    net.addVeth('vG', 'vH', ['10.208.0.1', '10.208.0.2'], null);
    const count = 20000;
    const cap = new ChildCapture(net.b, { source: 'afpacket', interfaces: ['vH'] });
    await cap.ready;
    ping(net.a, '10.208.0.2', count, ['-f', '-i', '0', '-s', '1472']);
    const r = await cap.stop();
    const s = r.stats!;
    expect(r.framingErrors).toBe(0);
    expect(s.captured).toBe(r.records.length);
    expect(s.captured + s.droppedKernel).toBe(2 * count);
    // Batches fill by bytes here (328-byte records): the reader must flush them, not spin
    // on a readable socket until the flush timer fires.
    expect(s.wakeups).toBeLessThan(4 * s.batches + 100);
  });
});

describe.skipIf(!isRoot)('AF_PACKET source, capture filter in the kernel', () => {
  let net: NetnsPair;
  beforeAll(() => {
    net = new NetnsPair();
    net.addVeth('vA', 'vB', ['10.209.0.1', '10.209.0.2'], ['fd00:209::1', 'fd00:209::2']);
    sh('ip', ['-n', net.a, 'addr', 'add', '10.209.0.11/24', 'dev', 'vA']);
  });
  afterAll(() => net?.destroy());

  it('a filter for one host and one type keeps only that, before user space', async () => {
    const cap = new ChildCapture(net.b, {
      source: 'afpacket',
      interfaces: ['vB'],
      filter: {
        typesV4: [8],
        families: [4],
        addresses: [{ family: 4, address: '10.209.0.11', prefixLength: 32, side: 'src' }],
      },
    });
    await cap.ready;
    ping(net.a, '10.209.0.2', 20, ['-I', '10.209.0.11']); // kept: requests from .11
    ping(net.a, '10.209.0.2', 20); // from .1: filtered out
    ping(net.a, 'fd00:209::2', 20); // IPv6: filtered out
    const r = await cap.stop();
    expect(r.error).toBeNull();
    // What reached user space: exactly the 20 requests from .11; the 100 other packets
    // (replies, the other host, IPv6, neighbour discovery) stayed in the kernel.
    expect(r.records.map((x) => [x.type, x.saddr, x.dir])).toEqual(
      Array.from({ length: 20 }, () => [8, '10.209.0.11', DIR_IN]),
    );
    expect(r.records.map((x) => x.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(r.stats?.captured).toBe(20);
  });

  it('rejects a malformed filter with EINVAL naming the field', async () => {
    const cap = new ChildCapture(net.b, {
      source: 'afpacket',
      filter: { addresses: [{ family: 4, address: 'not-an-ip', prefixLength: 32, side: 'any' }] },
    });
    const r = await cap.result;
    expect(r.error?.code).toBe('EINVAL');
    expect(r.error?.message).toContain('filter.addresses[0].address');
  });
});
