/**
 * A real Prometheus (Debian's package) scrapes `icmpcap serve --metrics` across a veth pair while real
 * pings flow: icmpcap captures in namespace A, Prometheus runs in namespace B with the bearer token.
 * Its query API must return the per-peer counters, and the loss, that the UI shows (read over the UI's
 * own WebSocket); a job with the wrong token and hand-made malformed scrapes are refused; the Grafana
 * dashboard's PromQL runs against the same Prometheus; `--no-ui` serves /metrics alone.
 *
 * Ports are fixed: each namespace is new, so nothing else listens in it.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PeerStats } from '../../common/contract.js';
import { type NetnsPair, createNetnsPair } from '../../../test/support/netns.js';

const METRICS_PORT = 9374;
const PROMETHEUS = '127.0.0.1:9090';
/** A second Prometheus with native histograms: it asks for the protobuf exposition. */
const PROMETHEUS_NATIVE = '127.0.0.1:9091';
const TOKEN = 'c2NyYXBlLXRva2VuLWZvci1pY21wY2Fw';
const PINGS = 20;

let pair: NetnsPair;
let tmp: string;
const procs: ChildProcess[] = [];
let serve: { proc: ChildProcess; output: () => string };
let uiUrl: string;

function start(
  ns: string,
  cmd: string[],
  env: NodeJS.ProcessEnv = {},
): { proc: ChildProcess; output: () => string } {
  const proc = spawn('ip', ['netns', 'exec', ns, ...cmd], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  procs.push(proc);
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return { proc, output: () => out };
}

async function until<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  what: string,
  ms = 15_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** curl from namespace B (where Prometheus runs): status, headers and body. */
function curlB(args: string[]): { status: number; body: string } {
  const out = pair.exec(pair.b, ['curl', '-sS', '--max-time', '5', '-w', '\n%{http_code}', ...args]);
  const at = out.lastIndexOf('\n');
  return { status: Number(out.slice(at + 1)), body: out.slice(0, at) };
}

interface PromVector {
  metric: Record<string, string>;
  value: [number, string];
}

function query(promql: string, server = PROMETHEUS): PromVector[] {
  const { status, body } = curlB([
    '-G',
    `http://${server}/api/v1/query`,
    '--data-urlencode',
    `query=${promql}`,
  ]);
  const json = JSON.parse(body) as { status: string; error?: string; data: { result: PromVector[] } };
  if (status !== 200 || json.status !== 'success') throw new Error(`${promql}: ${json.error ?? body}`);
  return json.data.result;
}

/** The peers the UI shows, asked over the UI's WebSocket from inside namespace A. */
function uiPeers(): PeerStats[] {
  const script = `
    const WebSocket = require('ws');
    const url = new URL(process.argv[1]);
    const ws = new WebSocket('ws://' + url.host + '/ws', ['icmpcap', 'token.' + url.hash.slice('#token='.length)]);
    ws.on('open', () => ws.send(JSON.stringify({ id: 1, method: 'stats.get' })));
    ws.on('message', (d) => {
      const m = JSON.parse(String(d));
      if (m.id !== 1) return;
      process.stdout.write(JSON.stringify(m.result.peers));
      ws.close();
    });`;
  return JSON.parse(pair.exec(pair.a, [process.execPath, '-e', script, uiUrl])) as PeerStats[];
}

function ping(ns: string, target: string, count: number, interval = '0.05'): void {
  pair.exec(ns, ['ping', '-q', '-c', String(count), '-i', interval, '-W', '1', target], {
    timeoutMs: 20_000,
  });
}

function pingAllowingLoss(ns: string, target: string, count: number): void {
  try {
    ping(ns, target, count);
  } catch {
    // ping exits 1 when some replies are missing: that is the point.
  }
}

beforeAll(async () => {
  execFileSync('bash', ['scripts/deps.sh', 'metrics', 'test'], { stdio: 'inherit' });
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-prom-'));
  pair = createNetnsPair('prom');
  // Namespace B drops every 4th echo request it receives over IPv4 (the 1st, 5th, ...): known loss.
  pair.exec(pair.b, [
    'nft',
    'add table inet icmpcaptest; add chain inet icmpcaptest input { type filter hook input priority 0; }; ' +
      'add rule inet icmpcaptest input icmp type echo-request numgen inc mod 4 == 0 drop',
  ]);
  const tokenFile = join(tmp, 'token');
  const wrongFile = join(tmp, 'wrong-token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  writeFileSync(wrongFile, 'bm90LXRoZS1yaWdodC10b2tlbg\n', { mode: 0o600 });
  const target = `${pair.v4.a}:${METRICS_PORT}`;
  writeFileSync(
    join(tmp, 'prometheus.yml'),
    [
      'global: { scrape_interval: 1s, scrape_timeout: 1s }',
      'scrape_configs:',
      '  - job_name: icmpcap',
      `    authorization: { credentials_file: ${tokenFile} }`,
      `    static_configs: [{ targets: ['${target}'] }]`,
      '  - job_name: icmpcap-wrong-token',
      `    authorization: { credentials_file: ${wrongFile} }`,
      `    static_configs: [{ targets: ['${target}'] }]`,
      '',
    ].join('\n'),
  );
  serve = start(
    pair.a,
    [
      process.execPath,
      'bin/icmpcap.mjs',
      'serve',
      '--source',
      'afpacket',
      '-i',
      pair.ifA,
      '--metrics',
      '--metrics-listen',
      target,
      '--metrics-token-file',
      tokenFile,
    ],
    { XDG_CACHE_HOME: join(tmp, 'cache') },
  );
  start(pair.b, [
    'prometheus',
    `--config.file=${join(tmp, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(tmp, 'tsdb')}`,
    `--web.listen-address=${PROMETHEUS}`,
    '--log.level=warn',
  ]);
  start(pair.b, [
    'prometheus',
    `--config.file=${join(tmp, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(tmp, 'tsdb-native')}`,
    `--web.listen-address=${PROMETHEUS_NATIVE}`,
    '--enable-feature=native-histograms',
    '--log.level=warn',
  ]);
  uiUrl = await until(() => {
    const out = serve.output();
    if (serve.proc.exitCode !== null || /not capturing/.test(out))
      throw new Error(`icmpcap serve failed:\n${out}`);
    if (!/capturing with afpacket/.test(out) || !/metrics on/.test(out)) return undefined;
    return /serving on (http:\/\/\S+)/.exec(out)?.[1];
  }, 'icmpcap serve to capture');
  expect(serve.output()).toContain(`icmpcap: metrics on http://${target}/metrics`);
  expect(serve.output()).not.toContain(TOKEN);
  for (const server of [PROMETHEUS, PROMETHEUS_NATIVE])
    await until(() => {
      try {
        return query('up{job="icmpcap"} == 1', server).length ? true : undefined;
      } catch {
        return undefined;
      }
    }, `Prometheus ${server} to scrape icmpcap`);
  // Real pings: A pings B over IPv4 (25 % dropped by B) and IPv6, B pings A over IPv4.
  pingAllowingLoss(pair.a, pair.v4.b, PINGS);
  ping(pair.a, pair.v6.b, 10);
  ping(pair.b, pair.v4.a, 10);
  // One more ping after the 2 s reply timeout so every earlier request is judged answered or lost.
  await new Promise((r) => setTimeout(r, 2200));
  ping(pair.b, pair.v6.a, 1);
}, 60_000);

afterAll(async () => {
  for (const p of procs) {
    if (p.exitCode === null && p.signalCode === null) {
      p.kill('SIGINT');
      await Promise.race([
        new Promise((r) => p.once('exit', r)),
        new Promise((r) => setTimeout(r, 3000)).then(() => p.kill('SIGKILL')),
      ]);
    }
  }
  pair?.destroy();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('Prometheus scraping icmpcap serve --metrics', () => {
  it('returns the per-peer counters and the loss the UI shows', async () => {
    // The UI's figures once they stop moving (the last ping's request stays unjudged: it is the newest).
    let before = '';
    const peers = await until(() => {
      const now = uiPeers();
      const key = JSON.stringify(now.map((p) => [p.peer, p.requests, p.replies, p.lost, p.duplicates]));
      const done = now.some((p) => p.peer === pair.v6.b && p.requests === 10) && key === before;
      before = key;
      return done ? now : undefined;
    }, 'the UI figures to settle');
    const settledAt = Date.now() / 1000;
    // Both Prometheus servers have scraped after that.
    for (const server of [PROMETHEUS, PROMETHEUS_NATIVE])
      await until(
        () =>
          Number(query('timestamp(icmpcap_capture_up{job="icmpcap"})', server)[0]?.value[1]) > settledAt
            ? true
            : undefined,
        `a scrape by ${server} after the figures settled`,
      );
    const out4 = peers.find((p) => p.peer === pair.v4.b && p.role === 'out')!;
    expect(out4).toMatchObject({ requests: PINGS, replies: PINGS * 0.75, lost: PINGS / 4, loss: 0.25 });
    expect(peers.find((p) => p.peer === pair.v4.b && p.role === 'in')).toMatchObject({
      requests: 10,
      lost: 0,
    });
    expect(peers.find((p) => p.peer === pair.v6.b)).toMatchObject({ requests: 10, replies: 10, lost: 0 });

    const series = (name: string, server = PROMETHEUS): Map<string, number> =>
      new Map(
        query(/^\w+$/.test(name) ? `${name}{job="icmpcap"}` : name, server).map((v) => [
          `${v.metric.peer}|${v.metric.local}|${v.metric.family}|${v.metric.role}`,
          Number(v.value[1]),
        ]),
      );
    const requests = series('icmpcap_peer_requests_total');
    const replies = series('icmpcap_peer_replies_total');
    const lost = series('icmpcap_peer_lost_total');
    const duplicates = series('icmpcap_peer_duplicates_total');
    const rttCount = series('icmpcap_peer_rtt_seconds_count');
    const loss = series('icmpcap_peer_lost_total{job="icmpcap"} / icmpcap_peer_judged_total');
    expect(requests.size).toBe(peers.length);
    for (const p of peers) {
      const key = `${p.peer}|${p.local}|ipv${p.family}|${p.role}`;
      expect([
        key,
        requests.get(key),
        replies.get(key),
        lost.get(key),
        duplicates.get(key),
        rttCount.get(key),
      ]).toEqual([key, p.requests, p.replies, p.lost, p.duplicates, p.replies]);
      if (p.requests > 1) expect([key, loss.get(key)]).toEqual([key, p.loss]);
    }
    // Through the protobuf exposition: the same counters, and the RTTs as a native histogram.
    const nativeRequests = series('icmpcap_peer_requests_total', PROMETHEUS_NATIVE);
    const nativeCount = series('histogram_count(icmpcap_peer_rtt_seconds{job="icmpcap"})', PROMETHEUS_NATIVE);
    const median = series(
      'histogram_quantile(0.5, icmpcap_peer_rtt_seconds{job="icmpcap"})',
      PROMETHEUS_NATIVE,
    );
    for (const p of peers) {
      const key = `${p.peer}|${p.local}|ipv${p.family}|${p.role}`;
      expect([key, nativeRequests.get(key), nativeCount.get(key)]).toEqual([key, p.requests, p.replies]);
      // The native median lies within the buckets of the UI's fastest and slowest RTT.
      if (p.replies > 0) {
        expect(median.get(key)).toBeGreaterThan(p.rttMinMs! / 1000 / 2);
        expect(median.get(key)).toBeLessThanOrEqual((p.rttMaxMs! / 1000) * 2);
      }
    }
    expect(query('icmpcap_peer_rtt_seconds_bucket{job="icmpcap"}', PROMETHEUS_NATIVE)).toEqual([]);
    const echoOut = query(
      `icmpcap_packets_total{job="icmpcap",family="ipv4",type="echo-request",direction="out"}`,
    )[0];
    expect(Number(echoOut?.value[1])).toBe(PINGS);
  });

  it('refuses scrapes without the right token, and malformed ones', () => {
    const targets = JSON.parse(curlB([`http://${PROMETHEUS}/api/v1/targets`]).body) as {
      data: { activeTargets: { labels: { job: string }; health: string; lastError: string }[] };
    };
    const wrong = targets.data.activeTargets.find((t) => t.labels.job === 'icmpcap-wrong-token')!;
    expect(wrong.health).toBe('down');
    expect(wrong.lastError).toContain('401');
    expect(query('up{job="icmpcap-wrong-token"}')[0]?.value[1]).toBe('0');

    const url = `http://${pair.v4.a}:${METRICS_PORT}/metrics`;
    expect(curlB([url]).status).toBe(401);
    expect(curlB(['-H', 'Authorization: Bearer', url]).status).toBe(400);
    expect(curlB(['-H', 'Authorization: Bearer a"b', url]).status).toBe(400);
    expect(
      curlB(['-H', `Authorization: Bearer ${TOKEN}`, '-H', 'Accept: application/json', url]).status,
    ).toBe(406);
    expect(curlB(['-H', `Authorization: Bearer ${TOKEN}`, '-X', 'POST', url]).status).toBe(405);
    const ok = curlB(['-H', `Authorization: Bearer ${TOKEN}`, url]);
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('icmpcap_capture_up 1');
  });

  it("runs the Grafana dashboard's PromQL", () => {
    const dashboard = JSON.parse(readFileSync('build/grafana/icmpcap-dashboard.json', 'utf8')) as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    const results: [string, number][] = [];
    for (const panel of dashboard.panels)
      for (const t of panel.targets) {
        const expr = t.expr
          .replaceAll('$__rate_interval', '30s')
          .replaceAll('$instance', '.*')
          .replaceAll('$peer', '.*');
        results.push([panel.title, query(expr).length]);
      }
    // Every panel has data here (drops and errors are zero, but their series exist).
    expect(results.filter(([, n]) => n === 0)).toEqual([]);
  });

  it('serves /metrics alone with --no-ui', async () => {
    const headless = start(
      pair.a,
      [
        process.execPath,
        'bin/icmpcap.mjs',
        'serve',
        '--source',
        'afpacket',
        '-i',
        pair.ifA,
        '--metrics',
        '--no-ui',
        '--listen',
        pair.v4.a,
        '--port',
        String(METRICS_PORT + 1),
        '--metrics-token-file',
        join(tmp, 'token'),
      ],
      { XDG_CACHE_HOME: join(tmp, 'cache2') },
    );
    await until(() => (/capturing with/.test(headless.output()) ? true : undefined), 'headless serve');
    expect(headless.output()).not.toContain('serving on');
    const base = `http://${pair.v4.a}:${METRICS_PORT + 1}`;
    expect(curlB([`${base}/`]).status).toBe(404);
    const ok = curlB(['-H', `Authorization: Bearer ${TOKEN}`, `${base}/metrics`]);
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('icmpcap_capture_up 1');
    headless.proc.kill('SIGINT');
    await new Promise((r) => headless.proc.once('exit', r));
  });
});
