// routeGet() and routesV4() through rtnetlink, compared with what `ip -j route get` and
// `ip -j -4 route show table main` print in the same fresh network namespace, over routes of every
// kind: an mtu on the route, a cached path MTU (learnt from a real Fragmentation Needed / Packet Too
// Big), a next hop of the other family, several next hops, unreachable / prohibit / blackhole,
// broadcast, another table. The addon runs in a child (`ip netns exec`), once more built with
// ASan+UBSan (make -C native/test addon-asan). Bad arguments are also tried in this process.
// Namespace tests need root. Run: npx vitest run native/test/routes.test.ts
import { execFileSync, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as Native from '../index.js';
import { NetnsPair, fixturesDir, nativeDir, sh } from './netns.js';

const isRoot = process.getuid?.() === 0;
const native = createRequire(import.meta.url)('../index.js') as typeof Native;

interface Failure {
  name: string;
  code?: string;
  errno?: number;
  op?: string;
  message: string;
}
interface ChildResult {
  get: Record<string, { answer: Native.RouteAnswer } | { error: Failure }>;
  routesV4: Native.Route4[] | null;
  routesV4Error: Failure | null;
  bad: ({ returned: unknown } | Failure)[];
  badWithoutArgument: { returned: unknown } | Failure;
}
/** What routeGet() gives, or the errno name it throws: the shape both sides are compared in. */
type Outcome = Native.RouteAnswer | { error: string };

// Strings that are not IP addresses (inet_pton of neither family takes them), and other values.
const BAD_STRINGS = [
  '',
  'x',
  '1.2.3',
  '::g',
  '1.2.3.4.5',
  '256.1.1.1',
  ' 1.2.3.4',
  '1.2.3.4 ',
  '1.2.3.4\0',
  'fe80::1%lo',
];
const BAD_VALUES: unknown[] = [...BAD_STRINGS, null, 5, {}, ['1.2.3.4']];

// What ip prints for the kernel's errors (strerror) -> the errno name.
const IP_ERRORS: Record<string, string> = {
  'Network is unreachable': 'ENETUNREACH',
  'No route to host': 'EHOSTUNREACH',
  'Permission denied': 'EACCES',
  'Invalid argument': 'EINVAL',
};

interface IpRoute {
  dst?: string;
  dev?: string;
  gateway?: string;
  via?: { family: string; host: string };
  prefsrc?: string;
  type?: string;
  metrics?: Record<string, unknown>[];
}

/** `ip -j route get DESTINATION` in `ns`, in the shape routeGet() answers in. */
function ipRouteGet(ns: string, destination: string): Outcome {
  const r = spawnSync('ip', ['-n', ns, '-j', 'route', 'get', destination], { encoding: 'utf8' });
  if (r.status !== 0) {
    const text = /RTNETLINK answers: (.*)/.exec(r.stderr)?.[1]?.trim() ?? r.stderr;
    return { error: IP_ERRORS[text] ?? `ip: ${text}` };
  }
  const [route] = JSON.parse(r.stdout) as IpRoute[];
  const mtu = route?.metrics?.find((m) => typeof m.mtu === 'number')?.mtu as number | undefined;
  return {
    mtu: mtu ?? null,
    dev: route?.dev ?? null,
    gateway: route?.gateway ?? route?.via?.host ?? null,
    source: route?.prefsrc ?? null,
  };
}

/** `ip -j -4 route show table main`, unicast routes only, in the shape routesV4() lists them in. */
function ipRoutesV4(ns: string): Native.Route4[] {
  const routes = JSON.parse(sh('ip', ['-n', ns, '-j', '-4', 'route', 'show', 'table', 'main'])) as IpRoute[];
  return routes
    .filter((r) => r.type === undefined || r.type === 'unicast')
    .map((r) => {
      const [dst = '', len] = r.dst === 'default' ? ['0.0.0.0', '0'] : (r.dst ?? '').split('/');
      return {
        dst,
        prefixLength: len === undefined ? 32 : Number(len),
        gateway: r.gateway ?? r.via?.host ?? null,
      };
    });
}

function outcome(r: ChildResult['get'][string] | undefined): Outcome | undefined {
  if (r === undefined) return undefined;
  return 'answer' in r ? r.answer : { error: r.error.code ?? r.error.message };
}

/** routeGet() of each destination, routesV4() and the bad arguments, in `ns`, through `addon`. */
function runChild(
  ns: string,
  get: string[],
  addon = path.join(nativeDir, 'index.js'),
  env: NodeJS.ProcessEnv = {},
): ChildResult {
  const r = spawnSync(
    'ip',
    [
      'netns',
      'exec',
      ns,
      process.execPath,
      path.join(fixturesDir, 'routes.cjs'),
      JSON.stringify({ addon, get, bad: BAD_VALUES }),
    ],
    { encoding: 'utf8', timeout: 60_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } },
  );
  expect(r.stderr).not.toMatch(/AddressSanitizer|runtime error|FATAL ERROR|terminate called/);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as ChildResult;
}

function expectBadArgumentsThrown(res: ChildResult): void {
  res.bad.forEach((b, k) => {
    const value = BAD_VALUES[k];
    expect({ value, ...b }).toMatchObject({
      value,
      name: 'TypeError',
      code: 'EINVAL',
      message:
        typeof value === 'string'
          ? `icmpcap: routeGet: not an IP address: ${value}`
          : 'icmpcap: routeGet(destination) needs an IP address as a string',
    });
  });
  expect(res.badWithoutArgument).toMatchObject({ name: 'TypeError', code: 'EINVAL' });
}

describe('routeGet with arguments that are not IP addresses', () => {
  it('throws a TypeError naming the text, in this process, and never crashes', () => {
    for (const value of BAD_VALUES) {
      let thrown: unknown;
      try {
        native.routeGet(value as string);
      } catch (e) {
        thrown = e;
      }
      expect(thrown, String(value)).toBeInstanceOf(TypeError);
      expect((thrown as { code?: string }).code).toBe('EINVAL');
      if (typeof value === 'string')
        expect((thrown as Error).message).toBe(`icmpcap: routeGet: not an IP address: ${value}`);
    }
    expect(() => (native.routeGet as () => unknown)()).toThrow(TypeError);
  });
});

describe.skipIf(!isRoot)('routeGet and routesV4 against ip, in a network namespace', () => {
  let net: NetnsPair;
  const inA = (...args: string[]) => sh('ip', ['-n', net.a, ...args]);
  const inB = (...args: string[]) => sh('ip', ['-n', net.b, ...args]);

  // A's routes of every kind; B routes 10.88.0.0/24 and fd88::/64 into a link of MTU 1280, so
  // that A's larger packets there come back as Fragmentation Needed / Packet Too Big.
  beforeAll(() => {
    net = new NetnsPair();
    net.addVeth('vA', 'vB', ['10.207.0.1', '10.207.0.2'], ['fd00:207::1', 'fd00:207::2']);
    inA('route', 'add', 'default', 'via', '10.207.0.2');
    inA('route', 'add', '10.77.0.0/24', 'via', '10.207.0.2', 'mtu', '1300');
    inA('-6', 'route', 'add', 'fd77::/64', 'via', 'fd00:207::2', 'mtu', '1350');
    inA('route', 'add', '10.78.0.0/16', 'dev', 'vA', 'metric', '5');
    inA('route', 'add', '10.79.0.0/24', 'via', 'inet6', 'fd00:207::2');
    inA('route', 'add', '10.80.0.0/24', 'nexthop', 'via', '10.207.0.2', 'nexthop', 'via', '10.207.0.3');
    inA('route', 'add', 'unreachable', '10.66.0.0/24');
    inA('route', 'add', 'prohibit', '10.67.0.0/24');
    inA('route', 'add', 'blackhole', '10.68.0.0/24');
    inA('route', 'add', 'broadcast', '10.82.0.255', 'dev', 'vA', 'table', 'main');
    inA('route', 'add', '10.99.0.0/24', 'via', '10.207.0.2', 'table', '100');
    inA('-6', 'route', 'add', 'unreachable', 'fd66::/64');
    inA('-6', 'route', 'add', 'prohibit', 'fd67::/64');
    inA('-6', 'route', 'add', 'blackhole', 'fd68::/64');
    inA('-6', 'route', 'add', 'fd88::/64', 'via', 'fd00:207::2');
    sh('ip', [
      'netns',
      'exec',
      net.b,
      'sysctl',
      '-qw',
      'net.ipv4.ip_forward=1',
      'net.ipv6.conf.all.forwarding=1',
    ]);
    inB('link', 'add', 'w0', 'mtu', '1280', 'type', 'veth', 'peer', 'name', 'w1', 'mtu', '1280');
    inB('link', 'set', 'w0', 'up');
    inB('link', 'set', 'w1', 'up');
    inB('route', 'add', '10.88.0.0/24', 'dev', 'w0');
    inB('-6', 'route', 'add', 'fd88::/64', 'dev', 'w0');
  });
  afterAll(() => net?.destroy());

  // Covered by the mtu routes and not, the default route, the gateway's own address, A's own, on
  // link, a next hop of the other family, several next hops, no route (IPv6 has no default here),
  // unreachable / prohibit / blackhole of both families, broadcast, loopback, an IPv4-mapped address.
  const destinations = [
    '10.77.0.5',
    '10.77.0.255',
    '8.8.8.8',
    '10.207.0.2',
    '10.207.0.1',
    '10.207.0.3',
    '10.78.1.2',
    '10.79.0.5',
    '10.80.0.5',
    '10.66.0.1',
    '10.67.0.1',
    '10.68.0.1',
    '10.82.0.255',
    '10.99.0.1',
    '127.0.0.1',
    'fd77::5',
    'fd77::ffff:1',
    'fd77:0:0:1::5',
    'fd00:207::2',
    'fd00:207::1',
    'fd99::1',
    'fd66::1',
    'fd67::1',
    'fd68::1',
    '::1',
    '::ffff:10.77.0.5',
  ];

  function compareRouteGet(ns: string, res: ChildResult): void {
    for (const d of destinations)
      expect({ d, got: outcome(res.get[d]) }).toEqual({ d, got: ipRouteGet(ns, d) });
  }

  it('routeGet answers as ip route get does: dev, gateway, preferred source and the route mtu', () => {
    const res = runChild(net.a, destinations);
    compareRouteGet(net.a, res);
    // What ip says, written out: a test that fails should it and the addon both go wrong.
    const got = (d: string) => outcome(res.get[d]);
    expect(got('10.77.0.5')).toEqual({ mtu: 1300, dev: 'vA', gateway: '10.207.0.2', source: '10.207.0.1' });
    expect(got('fd77::5')).toEqual({ mtu: 1350, dev: 'vA', gateway: 'fd00:207::2', source: 'fd00:207::1' });
    expect(got('8.8.8.8')).toEqual({ mtu: null, dev: 'vA', gateway: '10.207.0.2', source: '10.207.0.1' });
    expect(got('10.207.0.2')).toEqual({ mtu: null, dev: 'vA', gateway: null, source: '10.207.0.1' });
    expect(got('fd00:207::2')).toEqual({ mtu: null, dev: 'vA', gateway: null, source: 'fd00:207::1' });
    expect(got('10.207.0.1')).toEqual({ mtu: null, dev: 'lo', gateway: null, source: '10.207.0.1' });
    expect(got('10.79.0.5')).toMatchObject({ dev: 'vA', gateway: 'fd00:207::2' });
    expect(got('fd99::1')).toEqual({ error: 'ENETUNREACH' });
    expect(got('10.66.0.1')).toEqual({ error: 'EHOSTUNREACH' });
    expect(got('10.67.0.1')).toEqual({ error: 'EACCES' });
    expect(res.get['fd99::1']).toMatchObject({
      error: {
        name: 'Error',
        code: 'ENETUNREACH',
        errno: 101,
        op: 'route get fd99::1',
        message: 'icmpcap: route get fd99::1: ENETUNREACH \u2014 Network is unreachable',
      },
    });
    expectBadArgumentsThrown(res);

    // B: no route but its own subnet's, so IPv4 has no route either.
    const resB = runChild(net.b, destinations);
    compareRouteGet(net.b, resB);
    expect(outcome(resB.get['10.77.0.5'])).toEqual({ error: 'ENETUNREACH' });
  });

  // Sends A's large packets towards B's link of MTU 1280 until the kernel holds a path-MTU
  // exception for the destination (the first ones may go while neighbours are still resolved).
  function learnPathMtu(destination: string): void {
    for (let k = 0; k < 20; k++) {
      const r = ipRouteGet(net.a, destination);
      if ('mtu' in r && r.mtu === 1280) return;
      spawnSync('ip', [
        'netns',
        'exec',
        net.a,
        'ping',
        '-n',
        '-q',
        '-c',
        '1',
        '-W',
        '1',
        '-M',
        'do',
        '-s',
        '1400',
        destination,
      ]);
    }
    throw new Error(
      `no path-MTU exception for ${destination}: ${JSON.stringify(ipRouteGet(net.a, destination))}`,
    );
  }

  it('a cached path MTU (ip route get: cache expires ... mtu 1280) is the route mtu', () => {
    const before = runChild(net.a, ['10.88.0.5', 'fd88::5']);
    expect(outcome(before.get['10.88.0.5'])).toMatchObject({ mtu: null, gateway: '10.207.0.2' });
    expect(outcome(before.get['fd88::5'])).toMatchObject({ mtu: null, gateway: 'fd00:207::2' });
    learnPathMtu('10.88.0.5');
    learnPathMtu('fd88::5');
    expect(sh('ip', ['-n', net.a, 'route', 'get', '10.88.0.5'])).toMatch(/cache expires \d+sec mtu 1280/);
    const after = runChild(net.a, ['10.88.0.5', 'fd88::5', '10.88.0.6']);
    for (const d of ['10.88.0.5', 'fd88::5', '10.88.0.6'])
      expect({ d, got: outcome(after.get[d]) }).toEqual({ d, got: ipRouteGet(net.a, d) });
    expect(outcome(after.get['10.88.0.5'])).toEqual({
      mtu: 1280,
      dev: 'vA',
      gateway: '10.207.0.2',
      source: '10.207.0.1',
    });
    expect(outcome(after.get['fd88::5'])).toEqual({
      mtu: 1280,
      dev: 'vA',
      gateway: 'fd00:207::2',
      source: 'fd00:207::1',
    });
    expect(outcome(after.get['10.88.0.6'])).toMatchObject({ mtu: null });
  });

  it('routesV4 lists the unicast routes of the main table as ip does, without cached exceptions', () => {
    learnPathMtu('10.88.0.5'); // the kernel dumps the exception (RTM_F_CLONED) among the routes
    const res = runChild(net.a, []);
    expect(res.routesV4Error).toBeNull();
    expect(res.routesV4).toEqual(ipRoutesV4(net.a));
    expect(res.routesV4).toEqual(
      expect.arrayContaining([
        { dst: '0.0.0.0', prefixLength: 0, gateway: '10.207.0.2' },
        { dst: '10.77.0.0', prefixLength: 24, gateway: '10.207.0.2' },
        { dst: '10.78.0.0', prefixLength: 16, gateway: null },
        { dst: '10.79.0.0', prefixLength: 24, gateway: 'fd00:207::2' },
        { dst: '10.80.0.0', prefixLength: 24, gateway: null },
        { dst: '10.207.0.0', prefixLength: 24, gateway: null },
      ]),
    );
    expect(res.routesV4).toHaveLength(6); // not: unreachable, prohibit, blackhole, broadcast, table 100, 10.88.0.5
    const resB = runChild(net.b, []);
    expect(resB.routesV4).toEqual(ipRoutesV4(net.b));
    expect(resB.routesV4).toEqual([
      { dst: '10.88.0.0', prefixLength: 24, gateway: null },
      { dst: '10.207.0.0', prefixLength: 24, gateway: null },
    ]);
  });

  it('under ASan+UBSan: the same answers, bad arguments thrown, nothing touched out of bounds', () => {
    execFileSync('make', ['-s', '-C', path.join(nativeDir, 'test'), 'addon-asan'], { stdio: 'inherit' });
    const lib = (name: string) => sh('gcc', [`-print-file-name=${name}`]).trim();
    const env = {
      LD_PRELOAD: `${lib('libasan.so')}:${lib('libubsan.so')}`,
      ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1',
      UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
    };
    const asan = runChild(
      net.a,
      destinations,
      path.join(nativeDir, 'test', 'build', 'asan', 'icmpcap.node'),
      env,
    );
    compareRouteGet(net.a, asan);
    expect(asan.routesV4).toEqual(ipRoutesV4(net.a));
    expectBadArgumentsThrown(asan);
  }, 900_000);
});
