/**
 * Test support: h1 -- r1 -- r2 -- r3 -- h2, five network namespaces with three forwarding routers, for real
 * traceroute, mtr and tracepath runs. Needs root, iproute2 and the `paths` group of scripts/deps.sh.
 */
import { execFileSync } from 'node:child_process';

export const H1 = '10.211.1.2';
export const H2 = '10.211.4.2';
/** The address each router answers h1 from (the one on its link towards h1), in path order. */
export const ROUTERS = ['10.211.1.1', '10.211.2.2', '10.211.3.2'];

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function hasChainTools(): boolean {
  try {
    for (const tool of ['traceroute', 'mtr', 'tracepath']) run('sh', ['-c', `command -v ${tool}`]);
    run('ip', ['netns', 'list']);
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
}

export class RouterChain {
  readonly names: Record<'h1' | 'r1' | 'r2' | 'r3' | 'h2', string>;

  constructor() {
    const tag = `icp${process.pid}${Math.random().toString(36).slice(2, 6)}`;
    this.names = { h1: `${tag}h1`, r1: `${tag}r1`, r2: `${tag}r2`, r3: `${tag}r3`, h2: `${tag}h2` };
  }

  /** Builds the chain; on failure it removes whatever it made before rethrowing. */
  setUp(): void {
    const n = this.names;
    try {
      for (const ns of Object.values(n)) run('ip', ['netns', 'add', ns]);
      const links: [string, string, string, string][] = [
        [n.h1, 'eth0', n.r1, 'left'],
        [n.r1, 'right', n.r2, 'left'],
        [n.r2, 'right', n.r3, 'left'],
        [n.r3, 'right', n.h2, 'eth0'],
      ];
      for (const [a, da, b, db] of links)
        run('ip', ['link', 'add', da, 'netns', a, 'type', 'veth', 'peer', 'name', db, 'netns', b]);
      const addrs: [string, string, string][] = [
        [n.h1, 'eth0', `${H1}/24`],
        [n.r1, 'left', '10.211.1.1/24'],
        [n.r1, 'right', '10.211.2.1/24'],
        [n.r2, 'left', '10.211.2.2/24'],
        [n.r2, 'right', '10.211.3.1/24'],
        [n.r3, 'left', '10.211.3.2/24'],
        [n.r3, 'right', '10.211.4.1/24'],
        [n.h2, 'eth0', `${H2}/24`],
      ];
      for (const [ns, dev, addr] of addrs) {
        this.ns(ns, 'ip', 'addr', 'add', addr, 'dev', dev);
        this.ns(ns, 'ip', 'link', 'set', dev, 'up');
        this.ns(ns, 'ip', 'link', 'set', 'lo', 'up');
      }
      // Every error wanted: no per-host ICMP rate limit on the routers and the destination.
      for (const ns of [n.r1, n.r2, n.r3, n.h2])
        this.ns(ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv4.icmp_ratelimit=0');
      const routes: [string, ...string[]][] = [
        [n.h1, 'default', 'via', '10.211.1.1'],
        [n.r1, 'default', 'via', '10.211.2.2'],
        [n.r2, '10.211.1.0/24', 'via', '10.211.2.1'],
        [n.r2, 'default', 'via', '10.211.3.2'],
        [n.r3, 'default', 'via', '10.211.3.1'],
        [n.h2, 'default', 'via', '10.211.4.1'],
      ];
      for (const [ns, ...route] of routes) this.ns(ns, 'ip', 'route', 'add', ...route);
    } catch (err) {
      this.tearDown();
      throw err;
    }
  }

  ns(ns: string, cmd: string, ...args: string[]): string {
    return run('ip', ['netns', 'exec', ns, cmd, ...args]);
  }

  tearDown(): void {
    for (const ns of Object.values(this.names)) {
      try {
        run('ip', ['netns', 'del', ns]);
      } catch {
        // not created (set-up failed early) or already gone
      }
    }
  }
}
