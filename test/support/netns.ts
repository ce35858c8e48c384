/**
 * Two network namespaces joined by a veth pair: the project's own test hosts. Addresses come from the
 * documentation ranges (198.51.100.0/24, 2001:db8::/32) and exist only inside the namespaces.
 */
import { execFileSync, spawnSync } from 'node:child_process';

export interface NetnsPair {
  /** The side the capture runs in. */
  a: string;
  /** The side that sends traffic. */
  b: string;
  ifA: string;
  ifB: string;
  v4: { a: string; b: string };
  v6: { a: string; b: string };
  exec(ns: string, cmd: string[], opts?: { timeoutMs?: number }): string;
  destroy(): void;
}

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

export function createNetnsPair(tag: string): NetnsPair {
  const suffix = `${tag}${process.pid % 100000}`;
  const a = `icmpcap-a-${suffix}`;
  const b = `icmpcap-b-${suffix}`;
  const ifA = `ica${process.pid % 100000}`;
  const ifB = `icb${process.pid % 100000}`;
  const pair: NetnsPair = {
    a,
    b,
    ifA,
    ifB,
    v4: { a: '198.51.100.1', b: '198.51.100.2' },
    v6: { a: '2001:db8:77::1', b: '2001:db8:77::2' },
    exec(ns, cmd, opts) {
      return execFileSync('ip', ['netns', 'exec', ns, ...cmd], {
        encoding: 'utf8',
        timeout: opts?.timeoutMs ?? 30_000,
      });
    },
    destroy() {
      for (const ns of [a, b]) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    },
  };
  pair.destroy(); // leftovers of an earlier run with the same pid
  try {
    ip(['netns', 'add', a]);
    ip(['netns', 'add', b]);
    ip(['link', 'add', ifA, 'netns', a, 'type', 'veth', 'peer', 'name', ifB, 'netns', b]);
    for (const [ns, dev, v4, v6] of [
      [a, ifA, pair.v4.a, pair.v6.a],
      [b, ifB, pair.v4.b, pair.v6.b],
    ] as const) {
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      ip(['-n', ns, 'addr', 'add', `${v4}/24`, 'dev', dev]);
      ip(['-n', ns, '-6', 'addr', 'add', `${v6}/64`, 'dev', dev, 'nodad']);
      ip(['-n', ns, 'link', 'set', dev, 'up']);
    }
  } catch (err) {
    pair.destroy();
    throw err;
  }
  return pair;
}
