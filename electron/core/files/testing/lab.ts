/**
 * Test support: a three-namespace network (h1 -- r -- h2) with real ICMP traffic captured by tcpdump and
 * tshark, and a helper that asks tshark for fields. Needs root, iproute2, iputils-ping, tcpdump, tshark.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

export const H1_V4 = '10.201.1.2';
export const R_V4_H1 = '10.201.1.1';
export const H2_V4 = '10.201.2.2';
export const H1_V6 = 'fd01:1::2';
export const H2_V6 = 'fd01:2::2';
export const UNREACHABLE_V4 = '10.201.9.1';
export const UNREACHABLE_V6 = 'fd01:9::1';

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function hasTools(): boolean {
  try {
    run('ip', ['netns', 'list']);
    run('tshark', ['--version']);
    run('tcpdump', ['--version']);
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
}

export class NetnsLab {
  readonly h1: string;
  readonly r: string;
  readonly h2: string;
  private readonly captures: ChildProcess[] = [];
  private stopping = false;
  /** Capturers that ended before `stopCaptures` (e.g. killed by another program); their files are short. */
  readonly earlyExits: string[] = [];

  constructor() {
    const tag = `icf${process.pid}${Math.random().toString(36).slice(2, 6)}`;
    this.h1 = `${tag}h1`;
    this.r = `${tag}r`;
    this.h2 = `${tag}h2`;
  }

  /** Builds the network; on failure it removes whatever it made before rethrowing. */
  setUp(): void {
    try {
      for (const ns of [this.h1, this.r, this.h2]) run('ip', ['netns', 'add', ns]);
      run('ip', [
        'link',
        'add',
        'eth0',
        'netns',
        this.h1,
        'type',
        'veth',
        'peer',
        'name',
        'r1',
        'netns',
        this.r,
      ]);
      run('ip', [
        'link',
        'add',
        'eth0',
        'netns',
        this.h2,
        'type',
        'veth',
        'peer',
        'name',
        'r2',
        'netns',
        this.r,
      ]);
      this.ns(this.r, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1');
      // ICMP errors are rate limited per host by default; the tests want every one of them.
      this.ns(this.r, 'sysctl', '-qw', 'net.ipv4.icmp_ratelimit=0', 'net.ipv6.icmp.ratelimit=0');
      this.addr(this.h1, 'eth0', `${H1_V4}/24`, `${H1_V6}/64`);
      this.addr(this.r, 'r1', `${R_V4_H1}/24`, 'fd01:1::1/64');
      this.addr(this.r, 'r2', '10.201.2.1/24', 'fd01:2::1/64');
      this.addr(this.h2, 'eth0', `${H2_V4}/24`, `${H2_V6}/64`);
      // A smaller MTU towards h2 makes r send Fragmentation Needed / Packet Too Big for big pings.
      this.ns(this.r, 'ip', 'link', 'set', 'r2', 'mtu', '1280');
      this.ns(this.h2, 'ip', 'link', 'set', 'eth0', 'mtu', '1280');
      for (const [ns, via4, via6] of [
        [this.h1, R_V4_H1, 'fd01:1::1'],
        [this.h2, '10.201.2.1', 'fd01:2::1'],
      ] as const) {
        this.ns(ns, 'ip', 'route', 'add', 'default', 'via', via4);
        this.ns(ns, 'ip', '-6', 'route', 'add', 'default', 'via', via6);
      }
      // An `unreachable` IPv4 route answers through ip_error(), which rate-limits to about one error a
      // second whatever icmp_ratelimit says; an nftables reject answers every packet.
      this.ns(this.r, 'ip', 'route', 'add', '10.201.9.0/24', 'via', '10.201.2.2');
      this.ns(
        this.r,
        'nft',
        'add table ip icf; add chain ip icf forwarded { type filter hook forward priority 0; };' +
          ' add rule ip icf forwarded ip daddr 10.201.9.0/24 reject with icmp type host-unreachable',
      );
      this.ns(this.r, 'ip', '-6', 'route', 'add', 'unreachable', 'fd01:9::/64');
    } catch (err) {
      this.tearDown();
      throw err;
    }
  }

  ns(ns: string, cmd: string, ...args: string[]): string {
    return run('ip', ['netns', 'exec', ns, cmd, ...args]);
  }

  private addr(ns: string, dev: string, v4: string, v6: string): void {
    this.ns(ns, 'ip', 'addr', 'add', v4, 'dev', dev);
    this.ns(ns, 'ip', '-6', 'addr', 'add', v6, 'dev', dev, 'nodad');
    this.ns(ns, 'ip', 'link', 'set', dev, 'up');
    this.ns(ns, 'ip', 'link', 'set', 'lo', 'up');
  }

  /** Starts a capturer in `ns` and resolves once it says it is listening. */
  async startCapture(ns: string, cmd: 'tcpdump' | 'tshark', args: string[]): Promise<ChildProcess> {
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.captures.push(child);
    child.once('exit', (code, signal) => {
      if (!this.stopping) this.earlyExits.push(`${cmd} ${args.join(' ')}: exit ${code ?? signal}`);
    });
    let stderr = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${cmd} did not start: ${stderr}`)), 20_000);
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (/listening on|Capturing on/.test(stderr)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${cmd} exited with ${code}: ${stderr}`));
      });
    });
    return child;
  }

  /** Stops every capturer with SIGINT (they flush their files on it) and waits for them to exit. */
  async stopCaptures(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.captures.splice(0).map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = once(child, 'exit');
        child.kill('SIGINT');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }),
    );
    this.stopping = false;
  }

  /** Pings from h1; failures (no reply is the point of some of them) are ignored. */
  ping(...args: string[]): void {
    try {
      this.ns(this.h1, 'ping', '-q', '-n', ...args);
    } catch {
      // ping exits 1 when no reply came back, which is expected for errors.
    }
  }

  tearDown(): void {
    for (const child of this.captures.splice(0)) child.kill('SIGKILL');
    for (const ns of [this.h1, this.r, this.h2]) {
      try {
        run('ip', ['netns', 'del', ns]);
      } catch {
        // not created (set-up failed early) or already gone
      }
    }
  }
}

/** `tshark -r file -T fields` for ICMP/ICMPv6 frames, first occurrence of each field (not the quoted one). */
export function tsharkFields(
  file: string,
  fields: string[],
  filter = 'icmp or icmpv6',
  extraArgs: string[] = [],
): string[][] {
  const args = ['-r', file, '-n', ...extraArgs, '-T', 'fields', '-E', 'occurrence=f', '-E', 'separator=|'];
  if (filter !== '') args.push('-Y', filter);
  for (const field of fields) args.push('-e', field);
  const out = run('tshark', args);
  return out
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.split('|'));
}
