/**
 * Test support: two network namespaces joined by a veth pair, the real capture service running in one of
 * them (`service-child.ts`, AF_PACKET), odd traffic from the other (ping, scapy). Needs root, iproute2,
 * iputils-ping, tshark and python3-scapy (`bash scripts/deps.sh odd`).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Job, Row } from '../../common/contract.js';

export const A4 = '10.78.0.1';
export const B4 = '10.78.0.2';
export const A6 = 'fd78::1';
export const B6 = 'fd78::2';
const SCAPY = '/usr/bin/python3';

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function hasOddTools(): boolean {
  try {
    run('ip', ['netns', 'list']);
    run('tshark', ['--version']);
    run(SCAPY, ['-c', 'import scapy.all']);
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
}

export interface ChildResult {
  rows: Row[];
  exports: Record<'pcapng' | 'pcap' | 'csv' | 'ndjson', string>;
  jobs: Job[];
}

export class OddLab {
  /** Sends the traffic. */
  readonly a: string;
  /** Runs the capture service on `eb`. */
  readonly b: string;
  private child: ChildProcess | null = null;
  private lines: string[] = [];
  private waiters: ((line: string) => void)[] = [];
  private stderr = '';

  constructor() {
    const tag = `${process.pid}${randomBytes(3).toString('hex')}`;
    this.a = `icodd-a-${tag}`;
    this.b = `icodd-b-${tag}`;
  }

  setUp(): void {
    try {
      run('ip', ['netns', 'add', this.a]);
      run('ip', ['netns', 'add', this.b]);
      run('ip', [
        'link',
        'add',
        'ea',
        'netns',
        this.a,
        'type',
        'veth',
        'peer',
        'name',
        'eb',
        'netns',
        this.b,
      ]);
      for (const [ns, dev, v4, v6] of [
        [this.a, 'ea', A4, A6],
        [this.b, 'eb', B4, B6],
      ] as const) {
        run('ip', ['-n', ns, 'addr', 'add', `${v4}/24`, 'dev', dev]);
        run('ip', ['-n', ns, 'addr', 'add', `${v6}/64`, 'dev', dev, 'nodad']);
        run('ip', ['-n', ns, 'link', 'set', dev, 'up']);
        run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      }
    } catch (err) {
      this.tearDown();
      throw err;
    }
  }

  mac(ns: string, dev: string): string {
    const out = run('ip', ['-n', ns, '-j', 'link', 'show', dev]);
    return (JSON.parse(out) as { address: string }[])[0]!.address;
  }

  /** Starts the capture service in `b` and waits until it captures. */
  async startService(dir: string, snaplen = 65535): Promise<void> {
    const config = {
      interface: 'eb',
      spoolDir: join(dir, 'spool'),
      outDir: join(dir, 'out'),
      snaplen,
    };
    const script = join(import.meta.dirname, 'service-child.ts');
    const child = spawn(
      'ip',
      ['netns', 'exec', this.b, process.execPath, '--import', 'tsx', script, JSON.stringify(config)],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    this.child = child;
    let buffer = '';
    child.stdout.on('data', (d: Buffer) => {
      buffer += d.toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        const waiter = this.waiters.shift();
        if (waiter) waiter(line);
        else this.lines.push(line);
      }
    });
    child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    const first = JSON.parse(await this.nextLine(30_000)) as { ready?: boolean; error?: string };
    if (!first.ready) throw new Error(`the capture service did not start: ${first.error ?? this.stderr}`);
  }

  private nextLine(timeoutMs: number): Promise<string> {
    const queued = this.lines.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no answer from the capture service: ${this.stderr}`)),
        timeoutMs,
      );
      this.waiters.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });
  }

  /** Records captured so far (after letting the capture settle). */
  async mark(name: string): Promise<number> {
    this.child!.stdin!.write(`mark ${name}\n`);
    const answer = JSON.parse(await this.nextLine(10_000)) as { mark: string; records: number };
    return answer.records;
  }

  /** The record numbers the display filter `filter` keeps (an error message when it does not compile). */
  async filter(filter: string): Promise<{ nos?: number[]; error?: string }> {
    this.child!.stdin!.write(`filter ${filter}\n`);
    return JSON.parse(await this.nextLine(30_000)) as { nos?: number[]; error?: string };
  }

  /** Stops the capture and exports every record in every format. */
  async stop(): Promise<ChildResult> {
    this.child!.stdin!.write('stop\n');
    return JSON.parse(await this.nextLine(60_000)) as ChildResult;
  }

  ping(from: 'a' | 'b', args: string[]): void {
    const ns = from === 'a' ? this.a : this.b;
    try {
      run('ip', ['netns', 'exec', ns, 'ping', '-n', '-q', '-W', '2', ...args]);
    } catch {
      // no reply is the point of some pings; the capture tells what happened
    }
  }

  /** Sends one odd case with scapy from `a` to `b` (see odd_packets.py). */
  scapy(kind: string, id: number): void {
    const script = join(import.meta.dirname, 'odd_packets.py');
    const mac = this.mac(this.b, 'eb');
    run('ip', ['netns', 'exec', this.a, SCAPY, script, kind, 'ea', mac, A4, B4, A6, B6, String(id)]);
  }

  tearDown(): void {
    this.child?.kill('SIGKILL');
    this.child = null;
    for (const ns of [this.a, this.b]) {
      try {
        run('ip', ['netns', 'del', ns]);
      } catch {
        // not created, or already gone
      }
    }
  }
}
