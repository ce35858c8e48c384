/**
 * `GET /metrics` over real HTTP against a service fed real records through its capture path: the
 * exposed counters are the service's own per-peer figures, the text passes `promtool check metrics`,
 * OpenMetrics is negotiated, unauthorised and malformed scrapes are refused, and peers beyond the limit
 * are folded into peer="other" without any counter going backwards.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RecordSpec, buildBatch } from '../../../test/support/records.js';
import { type RunningServer, startServer } from '../server.js';
import { CaptureService } from '../service.js';
import { type Exporter, createExporter, metricsConfig } from './index.js';

const LOCAL = '198.51.100.1';
const T0 = 1_700_000_000_000_000_000n;
const MS = 1_000_000n;

let tmp: string;
let service: CaptureService;
let server: RunningServer;
let exporter: Exporter;
let token: string;

/** `count` echo requests from `from` to `to` 100 ms apart; replies after `rttMs` except for `lose`. */
function echoes(opts: {
  from: string;
  to: string;
  family?: 4 | 6;
  count: number;
  rttMs: number;
  lose?: number[];
  duplicate?: number[];
  start?: bigint;
  requestDir: number;
  id?: number;
}): RecordSpec[] {
  const family = opts.family ?? 4;
  const [req, rep] = family === 6 ? [128, 129] : [8, 0];
  const out: RecordSpec[] = [];
  for (let seq = 1; seq <= opts.count; seq++) {
    const ts = (opts.start ?? T0) + BigInt(seq) * 100n * MS;
    const common = { family, id: opts.id ?? 7, seq };
    out.push({ ...common, tsNs: ts, src: opts.from, dst: opts.to, type: req, dir: opts.requestDir });
    if (opts.lose?.includes(seq)) continue;
    const back = {
      ...common,
      tsNs: ts + BigInt(Math.round(opts.rttMs * 1e6)),
      src: opts.to,
      dst: opts.from,
      type: rep,
      dir: 1 - opts.requestDir,
    };
    out.push(back);
    if (opts.duplicate?.includes(seq)) out.push({ ...back, tsNs: back.tsNs + 10n * MS });
  }
  return out.sort((a, b) => (a.tsNs < b.tsNs ? -1 : 1));
}

async function scrape(
  headers: Record<string, string> = { Authorization: `Bearer ${token}` },
  init: RequestInit = {},
): Promise<Response> {
  return fetch(`http://127.0.0.1:${server.port}/metrics`, { headers, ...init });
}

/** Samples of a text exposition: `name{l="v",...}` (labels as written) -> value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

function peerKey(name: string, peer: string, local: string, family: string, role: string): string {
  return `${name}{peer="${peer}",local="${local}",family="${family}",role="${role}"}`;
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-metrics-'));
  service = new CaptureService({
    native: new Error('no addon: records are fed'),
    version: '9.9.9',
    spoolDir: join(tmp, 'spool'),
  });
  const tokenFile = join(tmp, 'token');
  writeFileSync(tokenFile, 'aHR0cHM6Ly9wcm9tZXRoZXVzLmlv-0123\n', { mode: 0o600 });
  const config = metricsConfig({ metrics: true, 'metrics-token-file': tokenFile, 'metrics-max-peers': '2' })!;
  token = config.token;
  exporter = createExporter(config, service, '9.9.9');
  const staticDir = join(tmp, 'static');
  server = await startServer({ service, staticDir, routes: exporter.route });
  service.startFeed();
  service.feed(
    buildBatch([
      // We ping .2 (10 requests, seq 4 and 9 lost, seq 2 answered twice) ...
      ...echoes({
        from: LOCAL,
        to: '198.51.100.2',
        count: 10,
        rttMs: 1.5,
        lose: [4, 9],
        duplicate: [2],
        requestDir: 1,
      }),
      // ... .3 pings us over IPv6 (4 requests, all answered), and .4 gets 2 unanswered requests.
      ...echoes({
        from: '2001:db8::3',
        to: '2001:db8::1',
        family: 6,
        count: 4,
        rttMs: 0.04,
        requestDir: 0,
        id: 9,
      }),
      ...echoes({ from: LOCAL, to: '198.51.100.4', count: 2, rttMs: 1, lose: [1, 2], requestDir: 1, id: 11 }),
      // Two errors, and a later packet so every request's 2 s timeout has passed.
      { tsNs: T0 + 300n * MS, src: '198.51.100.9', dst: LOCAL, type: 3, code: 3, dir: 0 },
      { tsNs: T0 + 400n * MS, family: 6, src: '2001:db8::9', dst: '2001:db8::1', type: 2, dir: 0 },
      { tsNs: T0 + 5000n * MS, src: '198.51.100.9', dst: LOCAL, type: 13, dir: 0 },
    ]),
  );
});

afterAll(async () => {
  await server.close();
  await exporter.close();
  service.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('GET /metrics', () => {
  it("exposes the service's own per-peer figures, the ones the UI shows", async () => {
    const res = await scrape();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const m = samples(await res.text());
    const peers = service.aggregates().peers;
    const out = peers.find((p) => p.peer === '198.51.100.2')!;
    expect(out).toMatchObject({ requests: 10, replies: 8, lost: 2, duplicates: 1, role: 'out' });
    const key = (name: string) => peerKey(name, '198.51.100.2', LOCAL, 'ipv4', 'out');
    expect(m.get(key('icmpcap_peer_requests_total'))).toBe(out.requests);
    expect(m.get(key('icmpcap_peer_replies_total'))).toBe(out.replies);
    expect(m.get(key('icmpcap_peer_lost_total'))).toBe(out.lost);
    expect(m.get(key('icmpcap_peer_duplicates_total'))).toBe(out.duplicates);
    expect(m.get(key('icmpcap_peer_late_total'))).toBe(out.late);
    expect(m.get(key('icmpcap_peer_lost_total'))! / m.get(key('icmpcap_peer_judged_total'))!).toBe(out.loss);
    // 1.5 ms is in (0.9765625 ms, 1.953125 ms]; the duplicate stays out of the histogram.
    expect(m.get(key('icmpcap_peer_rtt_seconds_bucket').replace('}', ',le="0.0009765625"}'))).toBe(0);
    expect(m.get(key('icmpcap_peer_rtt_seconds_bucket').replace('}', ',le="0.001953125"}'))).toBe(8);
    expect(m.get(key('icmpcap_peer_rtt_seconds_bucket').replace('}', ',le="+Inf"}'))).toBe(8);
    expect(m.get(key('icmpcap_peer_rtt_seconds_count'))).toBe(8);
    expect(m.get(key('icmpcap_peer_rtt_seconds_sum'))).toBeCloseTo(0.012, 6);
    const v6 = (name: string) => peerKey(name, '2001:db8::3', '2001:db8::1', 'ipv6', 'in');
    expect(m.get(v6('icmpcap_peer_requests_total'))).toBe(4);
    expect(m.get(v6('icmpcap_peer_replies_total'))).toBe(4);
    expect(m.get('icmpcap_packets_total{family="ipv4",type="echo-request",direction="out"}')).toBe(12);
    expect(m.get('icmpcap_packets_total{family="ipv6",type="echo-reply",direction="out"}')).toBe(4);
    expect(m.get('icmpcap_errors_total{kind="unreachable"}')).toBe(1);
    expect(m.get('icmpcap_errors_total{kind="packet-too-big"}')).toBe(1);
    expect(m.get('icmpcap_errors_total{kind="time-exceeded"}')).toBe(0);
    expect(m.get('icmpcap_dropped_total{where="kernel"}')).toBe(0);
    expect(m.get('icmpcap_capture_up')).toBe(1);
    expect(m.get('icmpcap_build_info{version="9.9.9"}')).toBe(1);
  });

  it('passes promtool check metrics', async () => {
    const text = await (await scrape()).text();
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(check.error).toBeUndefined();
    expect(check.stdout + check.stderr).toBe('');
    expect(check.status).toBe(0);
  });

  it('speaks OpenMetrics when the scraper asks for it, as Prometheus does', async () => {
    const res = await scrape({
      Authorization: `Bearer ${token}`,
      Accept:
        'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1',
    });
    expect(res.headers.get('content-type')).toBe(
      'application/openmetrics-text; version=1.0.0; charset=utf-8',
    );
    const text = await res.text();
    expect(text.endsWith('\n# EOF\n')).toBe(true);
    expect(text).toContain('# TYPE icmpcap_peer_requests counter\n');
    expect(text).toContain('# UNIT icmpcap_peer_rtt_seconds seconds\n');
    expect(text).toContain('# TYPE icmpcap_build info\n');
    expect(
      samples(text).get(peerKey('icmpcap_peer_requests_total', '198.51.100.2', LOCAL, 'ipv4', 'out')),
    ).toBe(10);
    // Prometheus with native histograms asks for protobuf first: length-delimited MetricFamily messages.
    const proto = await scrape({
      Authorization: `Bearer ${token}`,
      Accept:
        'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,*/*;q=0.1',
    });
    expect(proto.headers.get('content-type')).toBe(
      'application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited',
    );
    const bytes = Buffer.from(await proto.arrayBuffer());
    const name = 'icmpcap_peer_requests_total';
    // First message: its length (a varint), then field 1 (name) as a length-delimited string.
    expect(bytes[1]! < 0x80 ? bytes.subarray(2, 4 + name.length).toString('latin1') : '').toBe(
      `\x0a${String.fromCharCode(name.length)}${name}`,
    );
    // HEAD answers the same headers without a body.
    const head = await scrape({ Authorization: `Bearer ${token}` }, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  it('refuses unauthorised and malformed scrapes with the status that says why', async () => {
    const cases: [Record<string, string>, number, RegExp | null][] = [
      [{}, 401, /^Bearer realm="icmpcap metrics"$/],
      [{ Authorization: `Basic ${Buffer.from(`x:${token}`).toString('base64')}` }, 401, /^Bearer realm/],
      [{ Authorization: `Bearer ${token}x` }, 401, /error="invalid_token"/],
      [{ Authorization: `Bearer ${token.slice(0, -1)}` }, 401, /error="invalid_token"/],
      [{ Authorization: 'Bearer' }, 400, /error="invalid_request"/],
      [{ Authorization: `Bearer ${token} extra` }, 401, /^Bearer realm/],
      [{ Authorization: 'Bearer "quoted"' }, 400, /error="invalid_request"/],
      [{ Authorization: `Bearer ${token}`, Accept: 'application/json' }, 406, null],
      [{ Authorization: `Bearer ${token}`, Accept: 'text/plain;version=9.9' }, 406, null],
      [{ Authorization: `Bearer ${token}`, Accept: 'text/plain;q=high' }, 400, null],
      [{ Authorization: `Bearer ${token}`, Accept: 'nonsense' }, 400, null],
    ];
    for (const [headers, status, challenge] of cases) {
      const res = await scrape(headers);
      expect([JSON.stringify(headers), res.status]).toEqual([JSON.stringify(headers), status]);
      if (challenge) expect(res.headers.get('www-authenticate')).toMatch(challenge);
      expect(await res.text()).not.toContain('icmpcap_');
    }
    const post = await scrape({ Authorization: `Bearer ${token}` }, { method: 'POST' });
    expect(post.status).toBe(405);
    // The token of the UI does not open /metrics, and the UI's other paths are left to the UI.
    expect((await scrape({ Authorization: `Bearer ${server.token}` })).status).toBe(401);
    expect((await fetch(`http://127.0.0.1:${server.port}/metricsx`)).status).not.toBe(401);
  });

  it('folds peers beyond --metrics-max-peers into peer="other" and says so, counters never going back', async () => {
    // The limit is 2: .2 (10 requests) and ::3 (4) got series at the first scrape, .4 (2) is folded.
    let m = samples(await (await scrape()).text());
    const other = peerKey('icmpcap_peer_requests_total', 'other', 'other', 'ipv4', 'out');
    expect(m.get(other)).toBe(2);
    expect(
      m.get(peerKey('icmpcap_peer_requests_total', '198.51.100.4', LOCAL, 'ipv4', 'out')),
    ).toBeUndefined();
    expect(m.get('icmpcap_metrics_peer_limit')).toBe(2);
    expect(m.get('icmpcap_metrics_folded_peers')).toBe(1);
    // A new, busier peer is folded too (series are kept for the peers that have them) and adds to other.
    service.feed(
      buildBatch(
        echoes({
          from: LOCAL,
          to: '198.51.100.5',
          count: 30,
          rttMs: 2,
          requestDir: 1,
          id: 12,
          start: T0 + 6000n * MS,
        }),
      ),
    );
    m = samples(await (await scrape()).text());
    expect(m.get(other)).toBe(32);
    expect(m.get('icmpcap_metrics_folded_peers')).toBe(2);
    expect(m.get(peerKey('icmpcap_peer_requests_total', '198.51.100.2', LOCAL, 'ipv4', 'out'))).toBe(10);
    const bucket = peerKey('icmpcap_peer_rtt_seconds_bucket', 'other', 'other', 'ipv4', 'out').replace(
      '}',
      ',le="+Inf"}',
    );
    expect(m.get(bucket)).toBe(30);
  });
});

describe('serve --metrics flags', () => {
  it('say what is wrong', () => {
    expect(() => metricsConfig({ 'metrics-listen': ':9374' })).toThrow('--metrics-listen needs --metrics');
    expect(() => metricsConfig({ metrics: true, 'metrics-listen': '9374' })).toThrow('HOST:PORT');
    expect(() => metricsConfig({ metrics: true, 'metrics-max-peers': '-1' })).toThrow('whole number');
    expect(() => metricsConfig({ metrics: true, 'no-ui': true, 'no-start': true })).toThrow('never capture');
    const short = join(tmp, 'short');
    writeFileSync(short, 'abc\n', { mode: 0o600 });
    expect(() => metricsConfig({ metrics: true, 'metrics-token-file': short })).toThrow('at least 16');
    expect(() => metricsConfig({ metrics: true, 'metrics-token-file': join(tmp, 'none') })).toThrow(
      'cannot read --metrics-token-file',
    );
    expect(metricsConfig({ metrics: true, 'metrics-listen': '[::1]:9374' })!.listen).toEqual({
      host: '::1',
      port: 9374,
    });
    expect(metricsConfig({ metrics: true, 'metrics-listen': ':9374' })!.listen).toEqual({
      host: '::',
      port: 9374,
    });
  });
});
