/**
 * `GET /metrics`: bearer-token authorisation (RFC 6750, what Prometheus's `authorization` block sends)
 * and content negotiation between OpenMetrics and the Prometheus text format. Mounted on the
 * browser-mode server's port or served alone (`--metrics-listen`, `--no-ui`).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type MetricFamily,
  OPENMETRICS_CONTENT_TYPE,
  PROMETHEUS_TEXT_CONTENT_TYPE,
  formatOpenMetrics,
  formatPrometheusText,
} from './exposition.js';
import { PROTOBUF_CONTENT_TYPE, formatProtobuf } from './protobuf.js';

export const METRICS_PATH = '/metrics';
const CONTENT_TYPES: Record<Format, string> = {
  protobuf: PROTOBUF_CONTENT_TYPE,
  openmetrics: OPENMETRICS_CONTENT_TYPE,
  text: PROMETHEUS_TEXT_CONTENT_TYPE,
};
const REALM = 'Bearer realm="icmpcap metrics"';
/** RFC 6750's b64token. */
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;

export type Format = 'protobuf' | 'openmetrics' | 'text';
export type Negotiated = Format | { status: 400 | 406; message: string };
/** On equal q: protobuf (native histograms), then OpenMetrics, then text. */
const PREFERENCE: Record<Format, number> = { protobuf: 3, openmetrics: 2, text: 1 };

/**
 * Picks the format for an Accept header: the acceptable type with the highest q (on a tie the richer
 * format, in Prometheus's order). Offered: protobuf (delimited MetricFamily), OpenMetrics 1.0.0 and text
 * 0.0.4; a header that accepts none gets 406 and one that cannot be parsed 400.
 */
export function negotiate(accept: string | undefined): Negotiated {
  if (accept === undefined || accept.trim() === '') return 'text';
  let best: { format: Format; q: number } | null = null;
  for (const range of accept.split(',')) {
    const [typePart, ...paramParts] = range.split(';').map((s) => s.trim());
    if (!typePart) continue;
    if (!/^[\w.+*-]+\/[\w.+*-]+$/.test(typePart))
      return { status: 400, message: `malformed Accept header: ${JSON.stringify(range.trim())}\n` };
    const params = new Map<string, string>();
    for (const p of paramParts) {
      const eq = p.indexOf('=');
      if (eq <= 0) return { status: 400, message: `malformed Accept parameter: ${JSON.stringify(p)}\n` };
      params.set(
        p.slice(0, eq).trim().toLowerCase(),
        p
          .slice(eq + 1)
          .trim()
          .replace(/^"|"$/g, ''),
      );
    }
    const qText = params.get('q');
    const q = qText === undefined ? 1 : Number(qText);
    if (!/^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(qText ?? '1'))
      return { status: 400, message: `malformed q value in Accept: ${JSON.stringify(qText)}\n` };
    if (q === 0) continue;
    const type = typePart.toLowerCase();
    const version = params.get('version');
    let format: Format | null = null;
    if (
      type === 'application/vnd.google.protobuf' &&
      params.get('proto') === 'io.prometheus.client.MetricFamily' &&
      params.get('encoding') === 'delimited'
    )
      format = 'protobuf';
    else if (type === 'application/openmetrics-text' && (version === undefined || version === '1.0.0'))
      format = 'openmetrics';
    else if (type === 'text/plain' && (version === undefined || version === '0.0.4')) format = 'text';
    else if (type === 'text/*' || type === '*/*') format = 'text';
    if (format && (!best || q > best.q || (q === best.q && PREFERENCE[format] > PREFERENCE[best.format])))
      best = { format, q };
  }
  if (best) return best.format;
  return {
    status: 406,
    message:
      'icmpcap serves metrics as application/openmetrics-text; version=1.0.0, text/plain; version=0.0.4 or ' +
      'application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited\n',
  };
}

/** Constant-time comparison (hashing first, so not even the token's length leaks). */
export function tokenEquals(expected: string, given: string): boolean {
  const a = createHash('sha256').update(expected).digest();
  const b = createHash('sha256').update(given).digest();
  return timingSafeEqual(a, b);
}

export type Authorised = true | { status: 400 | 401; challenge: string; message: string };

export function authorise(header: string | undefined, token: string): Authorised {
  if (header === undefined)
    return {
      status: 401,
      challenge: REALM,
      message: 'send the metrics token as "Authorization: Bearer TOKEN"\n',
    };
  const m = /^(\S+)(?: +(\S*))?$/.exec(header.trim());
  if (!m || m[1]!.toLowerCase() !== 'bearer') {
    return {
      status: 401,
      challenge: REALM,
      message: 'only the Bearer scheme is accepted: "Authorization: Bearer TOKEN"\n',
    };
  }
  const given = m[2] ?? '';
  if (!TOKEN68.test(given)) {
    return {
      status: 400,
      challenge: `${REALM}, error="invalid_request"`,
      message: 'malformed bearer token\n',
    };
  }
  if (!tokenEquals(token, given)) {
    return {
      status: 401,
      challenge: `${REALM}, error="invalid_token"`,
      message: 'wrong metrics token\n',
    };
  }
  return true;
}

export interface MetricsEndpoint {
  /** Answers requests for /metrics; returns false (and leaves the response alone) for other paths. */
  route(req: IncomingMessage, res: ServerResponse): boolean;
}

export function metricsEndpoint(token: string, collect: () => MetricFamily[]): MetricsEndpoint {
  return {
    route(req, res) {
      let pathname: string;
      try {
        pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
      } catch {
        return false;
      }
      if (pathname !== METRICS_PATH) return false;
      const plain = { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' };
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { ...plain, Allow: 'GET, HEAD' }).end('GET /metrics\n');
        return true;
      }
      const auth = authorise(req.headers.authorization, token);
      if (auth !== true) {
        res.writeHead(auth.status, { ...plain, 'WWW-Authenticate': auth.challenge }).end(auth.message);
        return true;
      }
      const format = negotiate(req.headers.accept);
      if (typeof format === 'object') {
        res.writeHead(format.status, plain).end(format.message);
        return true;
      }
      let body: string | Uint8Array;
      try {
        const families = collect();
        body =
          format === 'protobuf'
            ? formatProtobuf(families)
            : format === 'openmetrics'
              ? formatOpenMetrics(families)
              : formatPrometheusText(families);
      } catch (err) {
        res
          .writeHead(500, plain)
          .end(`icmpcap could not collect metrics: ${err instanceof Error ? err.message : String(err)}\n`);
        return true;
      }
      res.writeHead(200, {
        'Content-Type': CONTENT_TYPES[format],
        'Content-Length': typeof body === 'string' ? Buffer.byteLength(body) : body.length,
        'Cache-Control': 'no-store',
        'X-Content-Type-Options': 'nosniff',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
      return true;
    },
  };
}

export interface MetricsServer {
  url: string;
  host: string;
  port: number;
  close(): Promise<void>;
}

/** A server with /metrics alone (`--metrics-listen`, or `--no-ui`). */
export async function startMetricsServer(
  endpoint: MetricsEndpoint,
  host: string,
  port: number,
): Promise<MetricsServer> {
  const http = createServer((req, res) => {
    if (!endpoint.route(req, res))
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('only /metrics is here\n');
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, host, () => {
      http.off('error', reject);
      resolve();
    });
  });
  const bound = (http.address() as AddressInfo).port;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${bound}${METRICS_PATH}`,
    host,
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      }),
  };
}
