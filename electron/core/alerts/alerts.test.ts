/**
 * Alert rules against real traffic: bursts of real port unreachables between two namespaces, captured by
 * dumpcap, replayed through the rules; a real local HTTP server receives the webhook; tshark opens the
 * snapshot. Plus the rule parser's errors, which must point at the bad part.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NetnsPair, createNetnsPair } from '../../../test/support/netns.js';
import { startDumpcap } from '../neighbours/testing/capture.js';
import type { DecodedRecord } from '../record.js';
import { AlertRuleError, AlertRunner, parseAlertRule } from './index.js';

let pair: NetnsPair;
let tmp: string;
let records: DecodedRecord[];
let firstBurstEnd = 0;

const BURST = `
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for burst in range(2):
    # Back to back: a burst lasts milliseconds, so a loaded machine cannot stretch it past the 1 s cool-down below.
    for i in range(150):
        s.sendto(b'x', (sys.argv[1], 40000 + i))
    if burst == 0:
        time.sleep(2.5)
`;

beforeAll(async () => {
  pair = createNetnsPair('al');
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-alerts-'));
  // The kernel rate-limits unreachables by default; the burst must be real and whole.
  pair.exec(pair.a, [
    'sysctl',
    '-qw',
    'net.ipv4.icmp_ratelimit=0',
    'net.ipv4.icmp_msgs_per_sec=100000',
    'net.ipv4.icmp_msgs_burst=100000',
  ]);
  const cap = await startDumpcap(pair.a, pair.ifA, join(tmp, 'burst.pcapng'), 'icmp');
  pair.exec(pair.b, ['python3', '-c', BURST, pair.v4.a]);
  records = await cap.stop();
  const unreach = records.map((r, i) => (r.type === 3 ? i + 1 : 0)).filter((n) => n > 0);
  // The gap between the two bursts: the first frame after a jump of more than a second.
  for (let k = 1; k < unreach.length; k++) {
    const gap = records[unreach[k]! - 1]!.tsNs - records[unreach[k - 1]! - 1]!.tsNs;
    if (gap > 1_000_000_000n) firstBurstEnd = unreach[k - 1]!;
  }
}, 60_000);

afterAll(() => {
  pair?.destroy();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('rule form', () => {
  it('points at the bad part', () => {
    const bad = (rule: string): AlertRuleError => {
      try {
        parseAlertRule(rule);
      } catch (e) {
        if (e instanceof AlertRuleError) return e;
        throw e;
      }
      throw new Error(`"${rule}" parsed`);
    };
    expect(bad('icmp.tipe == 3 rate > 5/s').position).toBe(0);
    expect(bad('icmp.tipe == 3 rate > 5/s').message).toContain('icmp.tipe');
    expect(bad('icmp.type == 3 rate > 5/s for 5x').position).toBe('icmp.type == 3 rate > 5/s for '.length);
    expect(bad('icmp.type == 3 rate > 5/s; cooldown soon').position).toBe(
      'icmp.type == 3 rate > 5/s; cooldown '.length,
    );
    expect(bad('icmp.type == 3 rate > 5/s; webhook ftp://x').message).toContain('http');
    expect(bad('icmp.type == 3; cooldown 5s').message).toContain('expected a condition');
    expect(bad('neighbour rogue').message).toContain('dad-conflict');
    expect(bad('icmp.type == 3 rate > 5/s; colour red').message).toContain('unknown option "colour"');
    const ok = parseAlertRule('peer 192.0.2.1 loss > 5% over 60s; name lossy');
    expect(ok.condition).toEqual({
      kind: 'peer',
      peer: '192.0.2.1',
      metric: 'loss',
      op: '>',
      value: 5,
      windowMs: 60_000,
    });
    expect(parseAlertRule('new router').condition).toEqual({ kind: 'neighbour', finding: 'new-router' });
  });
});

describe('a burst of real unreachables', () => {
  it('fires once per cool-down, posts the webhook (retrying) and writes a snapshot tshark reads', async () => {
    const unreach = records.filter((r) => r.type === 3).length;
    expect(unreach).toBeGreaterThanOrEqual(250);
    expect(firstBurstEnd).toBeGreaterThan(0);

    const bodies: unknown[] = [];
    let hits = 0;
    const server: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        hits++;
        // The first attempt fails: the runner must retry.
        if (hits === 1) {
          res.writeHead(503).end();
          return;
        }
        bodies.push({ url: req.url, type: req.headers['content-type'], body: JSON.parse(body) as unknown });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const snapDir = mkdtempSync(join(tmp, 'snap-'));
    const logs: string[] = [];
    try {
      const rule = parseAlertRule(
        `icmp.type == 3 rate > 50/s for 1s; name unreach burst; cooldown 60s; ` +
          `webhook http://127.0.0.1:${port}/hook?token=s3cret-t0ken; snapshot 1s`,
      );
      const runner = new AlertRunner([rule], {
        snapshotDir: snapDir,
        webhookBackoffMs: 50,
        linkBase: 'http://127.0.0.1:8080/',
        log: (l) => logs.push(l),
      });
      records.forEach((r, i) => runner.observe(r, i + 1, pair.ifA));
      await runner.flush();
      // Two bursts 2.5 s apart, a 60 s cool-down: one firing.
      expect(runner.events).toHaveLength(1);
      const ev = runner.events[0]!;
      expect(ev.figures.metric).toBe('rate');
      expect(ev.figures.value).toBeGreaterThan(50);
      expect(ev.evidence.every((n) => records[n - 1]!.type === 3)).toBe(true);
      expect(ev.evidence.at(-1)!).toBeLessThanOrEqual(firstBurstEnd);

      expect(hits).toBe(2);
      expect(bodies).toHaveLength(1);
      const got = bodies[0] as { url: string; type: string; body: Record<string, unknown> };
      expect(got.url).toBe('/hook?token=s3cret-t0ken');
      expect(got.type).toBe('application/json');
      expect(got.body).toMatchObject({
        rule: 'unreach burst',
        figures: { metric: 'rate', op: '>', threshold: 50, windowSeconds: 1 },
        link: `http://127.0.0.1:8080/#frame=${ev.evidence[0]}`,
      });
      expect(typeof got.body['time']).toBe('string');
      expect(logs.some((l) => l.includes('attempt 1/4 failed (HTTP 503)'))).toBe(true);
      expect(logs.join('\n')).not.toContain('s3cret');

      const files = readdirSync(snapDir);
      expect(files).toHaveLength(1);
      expect(files[0]).toMatch(/^unreach_burst-\d{4}-\d\d-\d\dT.*\.pcapng$/);
      const frames = execFileSync(
        'tshark',
        ['-r', join(snapDir, files[0]!), '-Y', 'icmp.type == 3', '-T', 'fields', '-e', 'udp.dstport'],
        {
          encoding: 'utf8',
        },
      )
        .trim()
        .split('\n');
      // The snapshot holds the burst up to the firing and the second after it (the rest of the first burst).
      expect(frames.length).toBeGreaterThanOrEqual(100);
      expect(frames).toContain('40000');
      expect(frames).toContain('40149');

      // The same packets with a 1 s cool-down: one firing per burst (each burst lasts well under a second).
      const unreachTs = records.filter((r) => r.type === 3).map((r) => r.tsNs);
      const split = records.slice(0, firstBurstEnd).filter((r) => r.type === 3).length;
      expect(Number(unreachTs[split - 1]! - unreachTs[0]!) / 1e6, 'first burst span, ms').toBeLessThan(800);
      expect(Number(unreachTs.at(-1)! - unreachTs[split]!) / 1e6, 'second burst span, ms').toBeLessThan(800);
      const short = new AlertRunner([parseAlertRule('icmp.type == 3 rate > 50/s for 1s; cooldown 1s')], {
        log: () => undefined,
      });
      records.forEach((r, i) => short.observe(r, i + 1, pair.ifA));
      expect(short.events).toHaveLength(2);
      expect(short.events[1]!.evidence[0]!).toBeGreaterThan(firstBurstEnd);
    } finally {
      server.close();
    }
  });
});

describe('icmpcap capture --alert', () => {
  it('fires on a live capture: the command gets the event JSON and the snapshot holds the burst', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'icmpcap-alerts-live-'));
    chmodSync(dir, 0o777); // started as root, icmpcap runs as an unprivileged user
    const rule = `icmp.type == 3 rate > 50/s for 1s; name live burst; snapshot 1s; command cat > ${dir}/event.json`;
    const proc = spawn(
      'ip',
      [
        'netns',
        'exec',
        pair.a,
        process.execPath,
        'bin/icmpcap.mjs',
        'capture',
        '--source',
        'afpacket',
        '-i',
        pair.ifA,
        '-a',
        '5',
        '-w',
        join(dir, 'all.pcapng'),
        '--no-alert-file',
        '--alert',
        rule,
        '--alert-commands',
        '--alert-dir',
        dir,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, XDG_CACHE_HOME: join(dir, 'cache') } },
    );
    let err = '';
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    let code: number | null | undefined;
    const exited = new Promise<number | null>((r) =>
      proc.on('exit', (c) => {
        code = c;
        r(c);
      }),
    );
    const deadline = Date.now() + 15_000;
    while (!/capturing on|packets/.test(err)) {
      if (code !== undefined) throw new Error(`capture exited: ${err}`);
      if (Date.now() > deadline) throw new Error(`capture did not start: ${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 300)); // the socket is attached just after the message
    pair.exec(pair.b, ['python3', '-c', BURST.replace('range(2)', 'range(1)'), pair.v4.a]);
    expect(await exited, err).toBe(0);
    expect(err).toMatch(/icmpcap alert: live burst: rate/);
    const event = JSON.parse(readFileSync(join(dir, 'event.json'), 'utf8')) as {
      rule: string;
      evidence: number[];
    };
    expect(event.rule).toBe('live burst');
    expect(event.evidence.length).toBeGreaterThan(50);
    const snap = readdirSync(dir).filter((f) => f.startsWith('live_burst-'));
    expect(snap).toHaveLength(1);
    const ports = execFileSync(
      'tshark',
      ['-r', join(dir, snap[0]!), '-Y', 'icmp.type == 3', '-T', 'fields', '-e', 'udp.dstport'],
      {
        encoding: 'utf8',
      },
    ).split('\n');
    expect(ports).toContain('40000');
    expect(ports).toContain('40149');
    rmSync(dir, { recursive: true, force: true });
  }, 30_000);
});
