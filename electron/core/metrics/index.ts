/**
 * `icmpcap serve --metrics`: the serve flags of the exporter, and starting it on the browser-mode
 * server's port or on a listener of its own.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CaptureService } from '../service.js';
import { DEFAULT_MAX_PEERS, MetricsCollector } from './collect.js';
import { METRICS_PATH, type MetricsServer, metricsEndpoint, startMetricsServer } from './http.js';

export { DEFAULT_MAX_PEERS, MetricsCollector } from './collect.js';
export * from './exposition.js';
export * from './http.js';
export { PROTOBUF_CONTENT_TYPE, formatProtobuf } from './protobuf.js';

/** The flags `serve` takes for metrics, in node:util parseArgs form. */
export const METRICS_FLAGS = {
  metrics: { type: 'boolean', default: false },
  'metrics-listen': { type: 'string' },
  'metrics-token-file': { type: 'string' },
  'metrics-max-peers': { type: 'string' },
  'no-ui': { type: 'boolean', default: false },
} as const;

export const METRICS_USAGE = `                  --metrics       serve Prometheus/OpenMetrics metrics at /metrics (needs
                                  "Authorization: Bearer TOKEN")
                  --metrics-listen HOST:PORT   serve /metrics there instead of on the UI's port
                                  ([V6]:PORT for IPv6, :PORT for every address)
                  --metrics-token-file FILE    the bearer token (default: a random one, printed)
                  --metrics-max-peers N        peers with series of their own (default ${DEFAULT_MAX_PEERS});
                                  the rest are summed into peer="other"
                  --no-ui         headless: no browser UI, only /metrics (with --metrics)
`;

export interface MetricsFlagValues {
  metrics?: boolean;
  'metrics-listen'?: string;
  'metrics-token-file'?: string;
  'metrics-max-peers'?: string;
  'no-ui'?: boolean;
  'no-start'?: boolean;
}

export interface MetricsConfig {
  token: string;
  /** The token was generated (print it) rather than read from a file. */
  generatedToken: boolean;
  listen: { host: string; port: number } | null;
  maxPeers: number;
  noUi: boolean;
}

/** Checks the flags; throws an Error saying what to change. Null when --metrics is not given. */
export function metricsConfig(values: MetricsFlagValues): MetricsConfig | null {
  const others = (['metrics-listen', 'metrics-token-file', 'metrics-max-peers', 'no-ui'] as const).filter(
    (f) => values[f] !== undefined && values[f] !== false,
  );
  if (!values.metrics) {
    if (others.length) throw new Error(`--${others[0]!} needs --metrics`);
    return null;
  }
  if (values['no-ui'] && values['no-start'])
    throw new Error('--no-start with --no-ui would never capture: without the UI nothing can start it');
  let maxPeers = DEFAULT_MAX_PEERS;
  if (values['metrics-max-peers'] !== undefined) {
    maxPeers = Number(values['metrics-max-peers']);
    if (!Number.isInteger(maxPeers) || maxPeers < 0 || maxPeers > 100_000)
      throw new Error(
        `--metrics-max-peers takes a whole number from 0 to 100000, not ${values['metrics-max-peers']}`,
      );
  }
  const listen = values['metrics-listen'] === undefined ? null : parseListen(values['metrics-listen']);
  let token: string;
  let generatedToken = false;
  const file = values['metrics-token-file'];
  if (file !== undefined) {
    let text: string;
    try {
      if (statSync(file).mode & 0o004)
        process.stderr.write(`icmpcap: warning: ${file} is readable by every user: chmod o-r ${file}\n`);
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(`cannot read --metrics-token-file ${file}: ${(err as Error).message}`);
    }
    token = text.replace(/\r?\n$/, '');
    if (!/^[A-Za-z0-9\-._~+/]{16,}=*$/.test(token))
      throw new Error(
        `${file} must hold one token of at least 16 characters from A-Z a-z 0-9 - . _ ~ + / ` +
          '(e.g. from: head -c 24 /dev/urandom | base64 | tr -d "=" > FILE)',
      );
  } else {
    token = randomBytes(24).toString('base64url');
    generatedToken = true;
  }
  return { token, generatedToken, listen, maxPeers, noUi: values['no-ui'] === true };
}

function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535)
    throw new Error(
      `--metrics-listen takes HOST:PORT, [IPV6]:PORT or :PORT (every address), not ${JSON.stringify(text)}`,
    );
  const host = m[1] ?? (m[2] || '::');
  return { host, port };
}

export interface Exporter {
  /** Mount on the browser-mode server (ServerOptions.routes). */
  readonly route: (req: IncomingMessage, res: ServerResponse) => boolean;
  /**
   * Starts its own listener when it needs one (--metrics-listen, or no UI server: then on `fallback`),
   * and says where the metrics are.
   */
  listen(
    ui: { host: string; port: number } | null,
    fallback: { host: string; port: number },
  ): Promise<string>;
  close(): Promise<void>;
}

export function createExporter(config: MetricsConfig, service: CaptureService, version: string): Exporter {
  const collector = new MetricsCollector(service, { maxPeers: config.maxPeers, version });
  const endpoint = metricsEndpoint(config.token, () => collector.collect());
  let own: MetricsServer | null = null;
  return {
    route: (req, res) => (config.listen ? false : endpoint.route(req, res)),
    async listen(ui, fallback) {
      let url: string;
      if (config.listen || !ui) {
        const at = config.listen ?? fallback;
        try {
          own = await startMetricsServer(endpoint, at.host, at.port);
        } catch (err) {
          const where = at.host.includes(':') ? `[${at.host}]:${at.port}` : `${at.host}:${at.port}`;
          const code = (err as NodeJS.ErrnoException).code;
          throw new Error(
            `cannot serve metrics on ${where}: ${code === 'EADDRINUSE' ? 'the port is in use; pick another with --metrics-listen' : (err as Error).message}`,
            { cause: err },
          );
        }
        url = own.url;
      } else {
        const host = ui.host.includes(':') ? `[${ui.host}]` : ui.host;
        url = `http://${host}:${ui.port}${METRICS_PATH}`;
      }
      const lines = [`icmpcap: metrics on ${url} (send "Authorization: Bearer TOKEN")`];
      if (config.generatedToken)
        lines.push(`icmpcap: metrics token: ${config.token} (choose one with --metrics-token-file FILE)`);
      return lines.join('\n') + '\n';
    },
    close: () => own?.close() ?? Promise.resolve(),
  };
}
