// Network namespaces joined by veth pairs, for host tests with real packets. Names are
// unique per run; destroy() removes everything whatever happened.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const nativeDir = path.resolve(import.meta.dirname, '..');
export const fixturesDir = path.join(nativeDir, 'test', 'fixtures');

let staged: string | undefined;

/**
 * A copy of what a child process run as another user needs (the addon, index.js, the
 * fixtures) in a folder anyone may enter: the checkout itself may sit under a folder others
 * cannot enter (a `mktemp -d` clone, a home directory with mode 0750). Returns the staged
 * native/ folder; removed when the test process exits.
 */
export function stagedNativeDir(): string {
  if (staged) return staged;
  const root = mkdtempSync(path.join(tmpdir(), 'icmpcap-stage-'));
  chmodSync(root, 0o755);
  const dir = path.join(root, 'native');
  const files = [
    'index.js',
    'package.json',
    path.join('build', 'Release', 'icmpcap.node'),
    path.join('test', 'fixtures', 'capture.cjs'),
    path.join('test', 'fixtures', 'watch.cjs'),
  ];
  for (const f of files) {
    mkdirSync(path.dirname(path.join(dir, f)), { recursive: true, mode: 0o755 });
    copyFileSync(path.join(nativeDir, f), path.join(dir, f));
    chmodSync(path.join(dir, f), 0o644);
  }
  for (const d of ['', 'build', path.join('build', 'Release'), 'test', path.join('test', 'fixtures')])
    chmodSync(path.join(dir, d), 0o755);
  process.on('exit', () => rmSync(root, { recursive: true, force: true }));
  staged = dir;
  return dir;
}

/** A user to run a child as: uid, gid, and supplementary groups (none by default). */
export interface RunAs {
  uid: number;
  gid: number;
  groups?: number[];
}

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
}

export class NetnsPair {
  readonly a: string;
  readonly b: string;

  constructor() {
    const tag = `${process.pid}-${randomBytes(3).toString('hex')}`;
    this.a = `icmpcap-a-${tag}`;
    this.b = `icmpcap-b-${tag}`;
    sh('ip', ['netns', 'add', this.a]);
    sh('ip', ['netns', 'add', this.b]);
    for (const ns of [this.a, this.b]) sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }

  // veth ifA (in a, with addresses v4A/v6A) <-> ifB (in b); prefix /24 and /64.
  // v6 null: IPv6 disabled on both ends, so no neighbour discovery or MLD ICMPv6 appears.
  addVeth(ifA: string, ifB: string, v4: [string, string], v6: [string, string] | null): void {
    // A test that vitest retries adds its pair again: the failed attempt's pair goes first.
    try {
      sh('ip', ['-n', this.a, 'link', 'del', ifA]);
    } catch {
      // none: the usual case
    }
    sh('ip', ['link', 'add', ifA, 'netns', this.a, 'type', 'veth', 'peer', 'name', ifB, 'netns', this.b]);
    sh('ip', ['-n', this.a, 'addr', 'add', `${v4[0]}/24`, 'dev', ifA]);
    sh('ip', ['-n', this.b, 'addr', 'add', `${v4[1]}/24`, 'dev', ifB]);
    if (v6) {
      sh('ip', ['-n', this.a, 'addr', 'add', `${v6[0]}/64`, 'dev', ifA, 'nodad']);
      sh('ip', ['-n', this.b, 'addr', 'add', `${v6[1]}/64`, 'dev', ifB, 'nodad']);
    } else {
      sh('ip', ['netns', 'exec', this.a, 'sysctl', '-qw', `net.ipv6.conf.${ifA}.disable_ipv6=1`]);
      sh('ip', ['netns', 'exec', this.b, 'sysctl', '-qw', `net.ipv6.conf.${ifB}.disable_ipv6=1`]);
    }
    sh('ip', ['-n', this.a, 'link', 'set', ifA, 'up']);
    sh('ip', ['-n', this.b, 'link', 'set', ifB, 'up']);
  }

  destroy(): void {
    for (const ns of [this.a, this.b]) {
      try {
        sh('ip', ['netns', 'del', ns]);
      } catch {
        // already gone
      }
    }
  }
}

export interface CapturedRecord {
  len: number;
  flags: number;
  hook: number;
  dir: number;
  ts: string;
  ifindex: number;
  origLen: number;
  capLen: number;
  family: number;
  ttl: number;
  type: number;
  code: number;
  id: number;
  seq: number;
  pad: number;
  saddr: string;
  daddr: string;
  ipVersion: number;
}

export interface CaptureResult {
  records: CapturedRecord[];
  events: { type: string; message: string; ifname?: string; ifindex?: number; errno?: string }[];
  batches: number;
  framingErrors: number;
  error: {
    code: string;
    message: string;
    op?: string;
    kind?: string;
    helperPath?: string;
    group?: string;
  } | null;
  stats: {
    source: string;
    captured: number;
    delivered: number;
    droppedKernel: number;
    droppedRing: number;
    batches: number;
    wakeups: number;
  } | null;
  probe?: {
    source: string;
    available: boolean;
    via?: string;
    reason?: string;
    kind?: string;
    helperPath?: string;
  }[];
}

// A capture running in a child process (`ip netns exec NS [setpriv ...] node capture.cjs`).
export class ChildCapture {
  private readonly child: ChildProcess;
  private stdout = '';
  readonly ready: Promise<void>;
  readonly result: Promise<CaptureResult>;

  /** The capture process (node), once ready. */
  pid = 0;

  constructor(ns: string, config: Record<string, unknown>, asUser?: RunAs) {
    const node = process.execPath;
    // Another user may not be able to enter the checkout: run a staged copy.
    const script = path.join(asUser ? stagedNativeDir() : nativeDir, 'test', 'fixtures', 'capture.cjs');
    const groups = asUser?.groups?.length ? `--groups=${asUser.groups.join(',')}` : '--clear-groups';
    const prefix = asUser ? ['setpriv', `--reuid=${asUser.uid}`, `--regid=${asUser.gid}`, groups, '--'] : [];
    this.child = spawn('ip', ['netns', 'exec', ns, ...prefix, node, script, JSON.stringify(config)], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/tmp' },
    });
    let stderr = '';
    this.child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    this.ready = new Promise((resolve, reject) => {
      this.child.stdout?.on('data', (d: Buffer) => {
        this.stdout += d.toString();
        const ready = /^READY (\d+)\n/.exec(this.stdout);
        if (ready) {
          this.pid = Number(ready[1]);
          resolve();
        } else if (this.stdout.includes('\n')) resolve(); // an open() error: result says which
      });
      this.child.on('exit', () => resolve());
      this.child.on('error', reject);
    });
    this.result = new Promise((resolve, reject) => {
      this.child.on('exit', (code) => {
        const lines = this.stdout.split('\n').filter((l) => l.startsWith('{'));
        const last = lines[lines.length - 1];
        if (code !== 0 || !last) {
          reject(new Error(`capture child exited with ${code}: ${stderr}`));
          return;
        }
        resolve(JSON.parse(last) as CaptureResult);
      });
    });
  }

  stop(): Promise<CaptureResult> {
    this.child.stdin?.write('stop\n');
    return this.result;
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}

export function ping(ns: string, target: string, count: number, extra: string[] = []): string {
  return sh('ip', [
    'netns',
    'exec',
    ns,
    'ping',
    '-n',
    '-q',
    '-c',
    String(count),
    '-i',
    '0.01',
    '-W',
    '2',
    ...extra,
    target,
  ]);
}
