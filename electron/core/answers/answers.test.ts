/**
 * Errors to flows and passive traceroute, with real parts: real traceroute / mtr / tracepath runs through three
 * forwarding routers captured by `icmpcap capture` (AF_PACKET), and RFC 4884 extensions read beside tshark.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCaptureFileAll } from '../files/index.js';
import { decodeRecord, forEachRecord } from '../record.js';
import { pcapFile } from '../files/testing/file-builder.js';
import { decodeError, PathBuilder, ProblemTable, routeMtu, type TracedPath } from './index.js';
import { H1, H2, ROUTERS, RouterChain, hasChainTools } from './testing/chain.js';

function hasTshark(): boolean {
  try {
    execFileSync('tshark', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function checksum(b: Uint8Array, start: number, end: number): number {
  let sum = 0;
  for (let i = start; i < end; i += 2) sum += (b[i]! << 8) | (i + 1 < end ? b[i + 1]! : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** A Time Exceeded from 192.0.2.1 quoting UDP 10.0.0.2:40000 > 198.51.100.7:33437, with RFC 4884 extensions. */
function timeExceededWithExtensions(): Uint8Array {
  const quoted = new Uint8Array(128); // RFC 4884: the original datagram padded to 128 bytes
  quoted.set([0x45, 0, 0, 60, 0x12, 0x34, 0, 0, 1, 17, 0, 0, 10, 0, 0, 2, 198, 51, 100, 7]);
  quoted.set([0x9c, 0x40, 0x82, 0x9d, 0, 40, 0, 0], 20);
  const mpls = [
    [0, 12, 1, 1], // object header: length 12, class 1 (MPLS label stack), C-Type 1
    [0x03, 0xe8, 0x10, 0x01], // label 16001, TC 0, not bottom, TTL 1
    [0x00, 0x01, 0x8b, 0x01], // label 24, TC 5, bottom of stack, TTL 1
  ].flat();
  const ifInfo = [
    [0, 28, 2, 0x0f], // length 28, class 2 (interface information), incoming, ifIndex + address + name + MTU
    [0, 0, 0, 7], // ifIndex 7
    [0, 1, 0, 0, 192, 0, 2, 1], // AFI 1 (IPv4), 192.0.2.1
    [8, 0x65, 0x74, 0x68, 0x37, 0, 0, 0], // name sub-object: length 8, "eth7"
    [0, 0, 0x05, 0xdc], // MTU 1500
  ].flat();
  const ext = new Uint8Array([0x20, 0, 0, 0, ...mpls, ...ifInfo]);
  const extSum = checksum(ext, 0, ext.length);
  ext[2] = extSum >> 8;
  ext[3] = extSum & 0xff;
  const icmp = new Uint8Array(8 + quoted.length + ext.length);
  icmp.set([11, 0, 0, 0, 0, 32, 0, 0]); // Time Exceeded, length 32 words of original datagram
  icmp.set(quoted, 8);
  icmp.set(ext, 8 + quoted.length);
  const s = checksum(icmp, 0, icmp.length);
  icmp[2] = s >> 8;
  icmp[3] = s & 0xff;
  const ip = new Uint8Array(20 + icmp.length);
  ip.set([0x45, 0, ip.length >> 8, ip.length & 0xff, 0, 1, 0, 0, 64, 1, 0, 0, 192, 0, 2, 1, 10, 0, 0, 2]);
  const h = checksum(ip, 0, 20);
  ip[10] = h >> 8;
  ip[11] = h & 0xff;
  ip.set(icmp, 20);
  return ip;
}

describe('errors to flows', () => {
  it('decodes the quoted flow, the MPLS label stack and RFC 5837 interface information as tshark does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'icmpcap-answers-'));
    try {
      const file = join(dir, 'ext.pcap');
      writeFileSync(
        file,
        pcapFile(228, [{ tsNs: 1_700_000_000_000_000_000n, frame: timeExceededWithExtensions() }]),
      );
      const { records } = await readCaptureFileAll(file);
      expect(records).toHaveLength(1);
      const report = decodeError(records[0]!);
      expect(report?.kind).toBe('time-exceeded');
      expect(report?.flow).toMatchObject({
        protocol: 'udp',
        src: '10.0.0.2',
        dst: '198.51.100.7',
        srcPort: 40000,
        dstPort: 33437,
        quotedTtl: 1,
      });
      expect(report?.interfaces).toEqual([
        { role: 'incoming', ifindex: 7, address: '192.0.2.1', name: 'eth7', mtu: 1500 },
      ]);
      const ours = report!.mpls;
      expect(ours.map((m) => m.label)).toEqual([16001, 24]);
      if (!hasTshark()) return;
      const out = execFileSync(
        'tshark',
        [
          '-r',
          file,
          '-T',
          'fields',
          '-E',
          'separator=;',
          '-e',
          'icmp.mpls.label',
          '-e',
          'icmp.mpls.exp',
          '-e',
          'icmp.mpls.ttl',
          '-e',
          'icmp.int_info.index',
          '-e',
          'icmp.int_info.ipv4',
          '-e',
          'icmp.int_info.name',
          '-e',
          'icmp.int_info.mtu',
        ],
        { encoding: 'utf8' },
      ).trim();
      const [labels, exps, ttls, ifindex, address, name, mtu] = out.split(';');
      expect(labels).toBe(ours.map((m) => m.label).join(','));
      expect(exps).toBe(ours.map((m) => m.exp).join(','));
      expect(ttls).toBe(ours.map((m) => m.ttl).join(','));
      expect([ifindex, address, name, mtu]).toEqual(['7', '192.0.2.1', 'eth7', '1500']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const canRun = hasChainTools();

/**
 * Runs `icmpcap capture --source afpacket -w file -z ...` in h1 around `traffic`, stops it with ^C and returns
 * what it printed.
 */
async function captureWhile(
  chain: RouterChain,
  file: string,
  stats: string[],
  traffic: () => void,
): Promise<string> {
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      chain.names.h1,
      process.execPath,
      'bin/icmpcap.mjs',
      'capture',
      '--source',
      'afpacket',
      '-w',
      file,
      ...stats.flatMap((z) => ['-z', z]),
    ],
    { env: { ...process.env, XDG_CACHE_HOME: join(dirname(file), 'cache') } },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (/capturing on/.test(stderr)) resolve();
    });
    void exited.then(() => reject(new Error(`icmpcap capture ended: ${stderr}`)));
  });
  traffic();
  // AF_PACKET hands blocks over within its block timeout; then stop as a user would, with ^C.
  await new Promise((r) => setTimeout(r, 1000));
  child.kill('SIGINT');
  await exited;
  return stdout;
}

describe.skipIf(!canRun)('passive traceroute through three routers', () => {
  const chain = new RouterChain();
  let dir = '';
  let cliOut = '';
  let paths: TracedPath[] = [];
  /** The same capture through the insights tap's path: echo records read from their bytes (echoAt). */
  let pathsFromBytes: TracedPath[] = [];
  let problems: ReturnType<ProblemTable['list']> = [];
  const printed: Record<string, string> = {};

  beforeAll(async () => {
    execFileSync('bash', ['scripts/deps.sh', 'paths'], { stdio: 'inherit' });
    chain.setUp();
    dir = mkdtempSync(join(tmpdir(), 'icmpcap-paths-'));
    chmodSync(dir, 0o777); // the CLI drops root before it writes
    const file = join(dir, 'trace.pcapng');
    const h1 = chain.names.h1;
    const tool = (cmd: string, ...args: string[]): string => chain.ns(h1, cmd, ...args);
    cliOut = await captureWhile(chain, file, ['icmpcap,paths', 'icmpcap,problems'], () => {
      printed.icmp = tool('traceroute', '-n', '-I', '-q', '3', H2);
      printed.mtr = tool('mtr', '-n', '-r', '-c', '3', H2);
      printed.udp = tool('traceroute', '-n', '-q', '3', H2);
      printed.tracepath = tool('tracepath', '-n', H2);
    });
    const { records, batches } = await readCaptureFileAll(file);
    const builder = new PathBuilder();
    const table = new ProblemTable();
    for (const r of records) {
      builder.add(r);
      table.add(r);
    }
    paths = builder.paths();
    const fromBytes = new PathBuilder();
    for (const { batch } of batches)
      forEachRecord(batch, (view, offset) => {
        const r = decodeRecord(view, offset);
        if (!(r.hasEcho && [0, 8, 128, 129].includes(r.type))) fromBytes.add(r);
        else fromBytes.echoAt(view, offset);
      });
    pathsFromBytes = fromBytes.paths();
    problems = table.list();
  }, 120_000);

  afterAll(() => {
    chain.tearDown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** The hop count each tool printed: its last hop line's number, or tracepath's "hops N". */
  function toolHops(text: string): number {
    const resume = /Resume: .*hops (\d+)/.exec(text);
    if (resume) return Number(resume[1]);
    const lines = text.trim().split('\n');
    const m = /^\s*(\d+)[.|\s]/.exec(lines[lines.length - 1]!);
    return Number(m?.[1] ?? NaN);
  }

  it('rebuilds each run: the routers in order, then the destination, as many hops as the tool printed', () => {
    const exact = paths.filter((p) => !p.inferred);
    const inferred = paths.filter((p) => p.inferred);
    // traceroute -I then mtr (ICMP, exact); traceroute then tracepath (UDP, inferred from the quotes).
    expect(exact).toHaveLength(2);
    expect(inferred).toHaveLength(2);
    const runs: [TracedPath, string][] = [
      [exact[0]!, printed.icmp!],
      [exact[1]!, printed.mtr!],
      [inferred[0]!, printed.udp!],
      [inferred[1]!, printed.tracepath!],
    ];
    for (const [path, text] of runs) {
      expect(path.source).toBe(H1);
      expect(path.destination).toBe(H2);
      expect(path.reached).toBe(true);
      expect(path.hops.map((h) => h.addresses)).toEqual([...ROUTERS, H2].map((a) => [a]));
      expect(path.hops.length).toBe(toolHops(text));
      expect(path.hops[path.hops.length - 1]!.destination).toBe(true);
    }
  });

  it('gives the same paths when echo records are read from their bytes (the insights tap)', () => {
    expect(paths.length).toBe(4);
    expect(pathsFromBytes).toEqual(paths);
  });

  it('gives exact ICMP paths an RTT and loss per hop from the captured probes', () => {
    for (const path of paths.filter((p) => !p.inferred)) {
      for (const hop of path.hops) {
        expect(hop.sent).toBeGreaterThanOrEqual(3);
        expect(hop.answered).toBe(hop.sent);
        expect(hop.lossPct).toBe(0);
        expect(hop.rttMs).toHaveLength(hop.answered);
        for (const rtt of hop.rttMs) expect(rtt).toBeGreaterThan(0);
      }
    }
  });

  it('groups the errors by the flow they report', () => {
    const echoFlow = problems.find(
      (p) => p.flow?.protocol === 'icmp' && p.count === 9 && p.events.length === 3,
    );
    expect(echoFlow?.events.map((e) => e.reporter)).toEqual(ROUTERS);
    const unreachable = problems.filter((p) => p.events.some((e) => e.kind === 'unreachable'));
    expect(unreachable.length).toBeGreaterThan(0);
    for (const p of unreachable) {
      expect(p.flow).toMatchObject({ protocol: 'udp', src: H1, dst: H2 });
      expect(p.events[0]!.what).toBe(`port unreachable (from ${H2})`);
    }
  });

  it('prints the same paths and problems with capture -z', () => {
    expect(cliOut).toContain('Traced paths (passive)');
    expect(cliOut.match(new RegExp(`${H1} > ${H2} \\((icmp|udp)[^)]*\\): 4 hops\\n`, 'g'))).toHaveLength(4);
    expect(cliOut).toContain('ICMP problems by flow');
    for (const r of ROUTERS) expect(cliOut).toContain(`TTL exceeded at ${r}`);
  });
});

describe.skipIf(!canRun)('path-MTU check', () => {
  const chain = new RouterChain();
  let dir = '';

  beforeAll(() => {
    chain.setUp();
    // The last link is smaller: r3 answers 1400-byte packets with Fragmentation Needed, MTU 1280.
    chain.ns(chain.names.r3, 'ip', 'link', 'set', 'right', 'mtu', '1280');
    dir = mkdtempSync(join(tmpdir(), 'icmpcap-pmtu-'));
    chmodSync(dir, 0o777);
  });

  afterAll(() => {
    chain.tearDown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const h1Route = (): number | null => {
    const out = chain.ns(chain.names.h1, 'ip', '-j', 'route', 'get', H2);
    return (JSON.parse(out) as { metrics?: { mtu?: number }[] }[])[0]?.metrics?.[0]?.mtu ?? null;
  };
  const bigPing = (): void => {
    try {
      chain.ns(
        chain.names.h1,
        'ping',
        '-n',
        '-q',
        '-c',
        '2',
        '-i',
        '0.2',
        '-W',
        '1',
        '-M',
        'do',
        '-s',
        '1400',
        H2,
      );
    } catch {
      // no reply is the point: the packets are too big for the path
    }
  };

  it('shows the flow, the MTU offered and that the kernel took it', async () => {
    expect(h1Route()).toBeNull();
    const out = await captureWhile(chain, join(dir, 'taken.pcapng'), ['icmpcap,problems'], bigPing);
    expect(h1Route()).toBe(1280);
    expect(out).toContain(`icmp ${H1} > ${H2} id=`);
    expect(out).toContain(`fragmentation needed at ${ROUTERS[2]}: MTU 1280`);
    expect(out).toContain(`path MTU: the kernel uses 1280 towards ${H2} (offered 1280)`);
    expect(out).not.toContain('black hole');
  });

  it('warns of a black hole when a firewall drops the message before the kernel sees it', async () => {
    const h1 = chain.names.h1;
    chain.ns(h1, 'ip', 'route', 'flush', 'cache');
    expect(h1Route()).toBeNull();
    // AF_PACKET sees the message on the wire; nftables then drops it on the way in.
    chain.ns(
      h1,
      'nft',
      'add table ip icpbh; add chain ip icpbh in { type filter hook input priority 0; };' +
        ' add rule ip icpbh in icmp type destination-unreachable icmp code frag-needed drop',
    );
    const out = await captureWhile(chain, join(dir, 'dropped.pcapng'), ['icmpcap,problems'], bigPing);
    expect(h1Route()).toBeNull();
    expect(out).toContain(`fragmentation needed at ${ROUTERS[2]}: MTU 1280: 2x`);
    expect(out).toMatch(
      new RegExp(
        `WARNING: path MTU black hole\\? 2 errors offered MTU 1280, but the kernel's route to ${H2} has no MTU`,
      ),
    );
    // Bad input to the route query is refused in words, not passed to `ip`.
    expect(() => routeMtu('-h')).toThrow(/not an IP address/);
  });
});
