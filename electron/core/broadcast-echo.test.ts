/**
 * Replies to broadcast and multicast echo (`ping -b`, `ping ff02::1%if`) count as replies from each
 * responder: on a bridge with three responder namespaces, the real capture service (AF_PACKET, in the
 * requester's namespace) shows one flow per responder with every request answered and its RTTs, nothing lost
 * to the group address, no duplicates.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Aggregates } from '../common/contract.js';

const tag = `${process.pid % 100000}${randomBytes(2).toString('hex')}`;
const HUB = `icbc-hub-${tag}`;
const REQ = `icbc-req-${tag}`;
const RESPONDERS = [1, 2, 3].map((k) => `icbc-r${k}-${tag}`);
const PINGS = 4;

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
}

const root = process.getuid?.() === 0;
let tmp: string;
let child: ChildProcess | null = null;

function setUp(): void {
  for (const ns of [HUB, REQ, ...RESPONDERS]) run('ip', ['netns', 'add', ns]);
  run('ip', ['-n', HUB, 'link', 'add', 'br0', 'type', 'bridge']);
  // The bridge is no host of the segment: without an IPv6 address of its own it answers nothing.
  run('ip', ['netns', 'exec', HUB, 'sysctl', '-q', 'net.ipv6.conf.br0.disable_ipv6=1']);
  run('ip', ['-n', HUB, 'link', 'set', 'br0', 'up']);
  [REQ, ...RESPONDERS].forEach((ns, k) => {
    const hubSide = `hp${k}`;
    run('ip', ['link', 'add', 'eq', 'netns', ns, 'type', 'veth', 'peer', 'name', hubSide, 'netns', HUB]);
    run('ip', ['-n', HUB, 'link', 'set', hubSide, 'master', 'br0']);
    run('ip', ['-n', HUB, 'link', 'set', hubSide, 'up']);
    run('ip', ['-n', ns, 'addr', 'add', `10.79.0.${10 + k}/24`, 'dev', 'eq']);
    run('ip', ['-n', ns, 'addr', 'add', `fd79::${10 + k}/64`, 'dev', 'eq', 'nodad']);
    run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    run('ip', ['-n', ns, 'link', 'set', 'eq', 'up']);
    if (k > 0) run('ip', ['netns', 'exec', ns, 'sysctl', '-q', 'net.ipv4.icmp_echo_ignore_broadcasts=0']);
  });
}

function tearDown(): void {
  child?.kill('SIGKILL');
  for (const ns of [REQ, ...RESPONDERS, HUB]) {
    try {
      run('ip', ['netns', 'del', ns]);
    } catch {
      // not created
    }
  }
}

/** The capture service in REQ on its bridge port; resolves once it captures. */
function startService(): Promise<{ stats(): Promise<Aggregates> }> {
  const config = { interface: 'eq', spoolDir: join(tmp, 'spool'), outDir: join(tmp, 'out') };
  const script = join(import.meta.dirname, 'testing', 'service-child.ts');
  const c = spawn(
    'ip',
    ['netns', 'exec', REQ, process.execPath, '--import', 'tsx', script, JSON.stringify(config)],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  child = c;
  let buffer = '';
  let stderr = '';
  const waiters: ((line: string) => void)[] = [];
  c.stdout.on('data', (d: Buffer) => {
    buffer += d.toString();
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      waiters.shift()?.(line);
    }
  });
  c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const next = (ms: number): Promise<string> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer from the capture service: ${stderr}`)), ms);
      waiters.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });
  return next(60_000).then((line) => {
    const first = JSON.parse(line) as { ready?: boolean; error?: string };
    if (!first.ready) throw new Error(`the capture service did not start: ${first.error ?? stderr}`);
    return {
      stats: async () => {
        c.stdin.write('stats\n');
        return JSON.parse(await next(60_000)) as Aggregates;
      },
    };
  });
}

function ping(args: string[]): string {
  try {
    return run('ip', [
      'netns',
      'exec',
      REQ,
      'ping',
      '-n',
      '-c',
      String(PINGS),
      '-i',
      '0.2',
      '-W',
      '2',
      ...args,
    ]);
  } catch (err) {
    return String((err as { stdout?: string }).stdout ?? err);
  }
}

describe.skipIf(!root)('replies to broadcast and multicast echo', () => {
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'icmpcap-bcast-'));
    setUp();
  });
  afterAll(() => {
    tearDown();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('count once per responder and request, each responder a flow with its RTTs', async () => {
    // Neighbours resolved first (ARP, ND), so no responder misses a request while it resolves ours.
    ping(['-b', '10.79.0.255']);
    ping(['ff02::1%eq']);
    const service = await startService();
    const v4 = ping(['-b', '10.79.0.255']);
    expect(v4).toMatch(/\+\d+ duplicates/); // ping itself saw several answers per request
    const v6 = ping(['ff02::1%eq']);
    expect(v6).toMatch(/\+\d+ duplicates/);
    const stats = await service.stats();
    const v4Responders = RESPONDERS.map((_, k) => `10.79.0.${11 + k}`);
    const v4Flows = stats.peers.filter((p) => p.family === 4);
    expect(v4Flows.map((p) => p.peer).sort()).toEqual(v4Responders);
    // Link-local responders (the request went out from fe80::, to ff02::1): three of them.
    const v6Flows = stats.peers.filter((p) => p.family === 6);
    expect(v6Flows).toHaveLength(3);
    for (const p of [...v4Flows, ...v6Flows]) {
      expect(p).toMatchObject({
        role: 'out',
        requests: PINGS,
        replies: PINGS,
        lost: 0,
        loss: 0,
        duplicates: 0,
      });
      expect(p.rttMinMs).not.toBeNull();
      expect(p.rttMaxMs!).toBeLessThan(2000);
    }
    // Nothing is counted against the group addresses themselves.
    expect(stats.peers.some((p) => p.peer === '10.79.0.255' || p.peer.startsWith('ff02'))).toBe(false);
  });
});
