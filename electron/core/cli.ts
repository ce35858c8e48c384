/**
 * The `icmpcap` command line: `serve` (browser mode), `interfaces`, `sources`.
 */
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadNative } from './native.js';
import { projectRoot } from './paths.js';
import { version } from './version.js';
import { startServer } from './server.js';
import { dropPrivileges } from './privilege.js';
import { SERVE_SECURITY_OPTIONS, SERVE_SECURITY_USAGE, serveSecurity } from './web/serve-setup.js';
import { CaptureService, errorMessage } from './service.js';
import { formatChecks, runDoctor } from './doctor.js';
import { METRICS_FLAGS, METRICS_USAGE, createExporter, metricsConfig } from './metrics/index.js';
import {
  EXPORT_FORMATS,
  type ExportFormat,
  type Job,
  type RingLimit,
  RingLimitSchema,
  type Row,
} from '../common/contract.js';
import { codeLabel, typeLabel } from '../common/icmp.js';

const USAGE = `usage: icmpcap <command> [options]

commands:
  serve         serve the app in a browser (127.0.0.1 and a random token by default)
                  --listen ADDR   listen on ADDR instead of 127.0.0.1 (HTTPS; the token is still required)
${SERVE_SECURITY_USAGE.trimEnd()}
                  -Z, --user USER started as root: run as USER after preparing the capture helper
                                  (default: SUDO_USER, else the system account icmpcap)
                  --port N        port (default: any free port)
                  -i, --interface NAME   capture on NAME (repeatable; default: all)
                  --source auto|module|afpacket
                  --no-start      do not start capturing until asked from the UI
                  --ring-records N       keep about the newest N records (at least 131072); older ones
                                         are dropped in units of about N/8, as dumpcap's ring buffer
                  --ring-seconds S       keep the records of the last S seconds (at least 10)
${METRICS_USAGE}  capture       capture to a file or the terminal
                  -i, --interface NAME   capture on NAME (repeatable; default: all)
                  -w, --write FILE       write FILE (format from its extension, or -F)
                  -F, --format pcapng|pcap|csv|ndjson
                  -c, --count N          stop after N packets
                  -a, --duration SEC     stop after SEC seconds
                  -Y, --filter FILTER    keep only packets matching the display filter
                                         (e.g. 'icmp.type == echo-reply && rtt > 10')
                  --source auto|module|afpacket
                  -Z, --user USER        as for serve: started as root, run as USER
                  --ring-records N, --ring-seconds S   as for serve: memory and spool stay bounded;
                                         -w then writes the newest records that are kept
                without -w, one line per packet goes to standard output; progress goes to stderr
  doctor        check the module, device permissions, Secure Boot, capabilities and the helper
  interfaces    list the interfaces capture can use
  sources       show which capture sources are available, and why not
`;

export { version };

function fail(message: string): never {
  process.stderr.write(`icmpcap: ${message}\n`);
  process.exit(2);
}

/** Started as root: prepare the capture helper, then run as -Z USER / SUDO_USER / icmpcap (privilege.ts). */
function dropRoot(user: string | undefined): void {
  let helper: string | null = null;
  try {
    helper = loadNative().defaultHelperPath();
  } catch {
    helper = null; // no addon: nothing to capture with, but still no root
  }
  try {
    const dropped = dropPrivileges(user, helper);
    for (const note of dropped?.notes ?? []) process.stderr.write(`${note}\n`);
  } catch (err) {
    fail(`cannot drop root privileges: ${errorMessage(err)}`);
  }
}

function makeService(): CaptureService {
  let native;
  try {
    native = loadNative();
  } catch (err) {
    native = err instanceof Error ? err : new Error(String(err));
  }
  return new CaptureService({ native, version: version() });
}

async function serve(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      listen: { type: 'string' },
      port: { type: 'string' },
      interface: { type: 'string', short: 'i', multiple: true },
      source: { type: 'string', default: 'auto' },
      'no-start': { type: 'boolean', default: false },
      'ring-records': { type: 'string' },
      'ring-seconds': { type: 'string' },
      ...METRICS_FLAGS,
      ...SERVE_SECURITY_OPTIONS,
      user: { type: 'string', short: 'Z' },
    },
    strict: true,
  });
  let metrics;
  try {
    metrics = metricsConfig(values);
  } catch (err) {
    fail(errorMessage(err));
  }
  dropRoot(values.user);
  const security = await serveSecurity(values).catch((err: unknown) => fail(errorMessage(err)));
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    fail(`--port takes a number from 0 to 65535, not ${values.port}`);
  const source = values.source;
  if (source !== 'auto' && source !== 'module' && source !== 'afpacket') {
    fail(`--source takes auto, module or afpacket, not ${source}`);
  }
  const limit = ringLimit(values['ring-records'], values['ring-seconds']);
  const service = makeService();
  service.watchInterfaces();
  const exporter = metrics ? createExporter(metrics, service, version()) : null;
  const server = metrics?.noUi
    ? null
    : await startServer({
        service,
        staticDir: join(projectRoot(), 'dist', 'renderer'),
        host: values.listen ?? '127.0.0.1',
        port,
        files: security.files,
        ...(security.tls ? { tls: security.tls } : {}),
        ...(exporter ? { routes: exporter.route } : {}),
      });
  if (server) for (const note of security.notes) process.stdout.write(`${note}\n`);
  if (server) process.stdout.write(`icmpcap ${version()} serving on ${server.url}\n`);
  if (server && values.listen)
    process.stdout.write(`icmpcap: listening on ${values.listen}: anyone with the token can capture\n`);
  if (exporter)
    process.stdout.write(await exporter.listen(server, { host: values.listen ?? '127.0.0.1', port }));
  if (!values['no-start']) {
    try {
      const state = service.start({
        source,
        interfaces: values.interface ?? [],
        snaplen: 256,
        ...(limit ? { limit } : {}),
      });
      process.stdout.write(
        `icmpcap: capturing with ${state.source} on ${state.interfaces.length ? state.interfaces.join(', ') : 'all interfaces'}\n`,
      );
    } catch (err) {
      process.stdout.write(`icmpcap: not capturing yet: ${errorMessage(err)}\n`);
    }
  }
  let stopping = false;
  const shutdown = (): void => {
    if (stopping) return;
    stopping = true;
    service.close();
    void Promise.all([server?.close(), exporter?.close()]).then(() => {
      process.stdout.write('icmpcap: stopped\n');
      process.exit(0);
    });
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

function formatFromPath(path: string): ExportFormat | undefined {
  const ext = /\.([a-z]+)$/i.exec(path)?.[1]?.toLowerCase();
  if (ext === 'pcapng' || ext === 'ntar') return 'pcapng';
  if (ext === 'pcap' || ext === 'cap') return 'pcap';
  if (ext === 'csv') return 'csv';
  if (ext === 'ndjson' || ext === 'jsonl') return 'ndjson';
  return undefined;
}

function positiveNumber(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) fail(`${name} takes a positive number, not ${text}`);
  return n;
}

/** --ring-records / --ring-seconds, checked as capture.start checks them. */
function ringLimit(records: string | undefined, seconds: string | undefined): RingLimit | undefined {
  if (records === undefined && seconds === undefined) return undefined;
  const limit: RingLimit = {};
  if (records !== undefined) limit.records = Number(records);
  if (seconds !== undefined) limit.seconds = Number(seconds);
  const parsed = RingLimitSchema.safeParse(limit);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const flag = issue.path[0] === 'seconds' ? '--ring-seconds' : '--ring-records';
    const given = issue.path[0] === 'seconds' ? seconds : records;
    fail(
      `${flag} ${given}: ${issue.message} (${flag === '--ring-seconds' ? 'at least 10 seconds' : 'a whole number, at least 131072'})`,
    );
  }
  return parsed.data;
}

function rowLine(r: Row): string {
  const t = BigInt(r.tsNs);
  const time = `${t / 1_000_000_000n}.${(t % 1_000_000_000n).toString().padStart(9, '0')}`;
  const echo = r.id !== null ? ` id=${r.id} seq=${r.seq}` : '';
  const rtt = r.rttMs !== null ? ` rtt=${r.rttMs} ms` : '';
  const code = r.code ? ` (${codeLabel(r.family, r.type, r.code)})` : '';
  return `${time} ${r.iface} ${r.dir} ${r.src} > ${r.dst}: ${typeLabel(r.family, r.type)}${code}${echo} ttl=${r.ttl} len=${r.len}${rtt}`;
}

async function capture(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      interface: { type: 'string', short: 'i', multiple: true },
      write: { type: 'string', short: 'w' },
      format: { type: 'string', short: 'F' },
      count: { type: 'string', short: 'c' },
      duration: { type: 'string', short: 'a' },
      filter: { type: 'string', short: 'Y' },
      source: { type: 'string', default: 'auto' },
      'ring-records': { type: 'string' },
      'ring-seconds': { type: 'string' },
      user: { type: 'string', short: 'Z' },
    },
    strict: true,
  });
  const limit = ringLimit(values['ring-records'], values['ring-seconds']);
  const count = positiveNumber('--count', values.count);
  const duration = positiveNumber('--duration', values.duration);
  const source = values.source;
  if (source !== 'auto' && source !== 'module' && source !== 'afpacket') {
    fail(`--source takes auto, module or afpacket, not ${source}`);
  }
  let format: ExportFormat | undefined;
  if (values.format !== undefined) {
    if (!(EXPORT_FORMATS as readonly string[]).includes(values.format)) {
      fail(`-F takes ${EXPORT_FORMATS.join(', ')}, not ${values.format}`);
    }
    format = values.format as ExportFormat;
  }
  const path = values.write === undefined ? undefined : resolve(values.write);
  if (path && !format) {
    format = formatFromPath(path);
    if (!format) fail(`cannot tell the format of ${path} from its name: add -F pcapng|pcap|csv|ndjson`);
  }
  dropRoot(values.user);
  const service = makeService();
  const progress = process.stderr.isTTY
    ? (text: string) => process.stderr.write(`\r\x1b[K${text}`)
    : (text: string) => process.stderr.write(`${text}\n`);
  if (values.filter) {
    try {
      await service.handle('view.setFilter', { filter: values.filter }, 'ipc');
    } catch (err) {
      service.close();
      const position = (err as { position?: number }).position;
      const pointer = position === undefined ? '' : `\n  ${values.filter}\n  ${' '.repeat(position)}^`;
      fail(`bad filter: ${errorMessage(err)}${pointer}`);
    }
  }
  try {
    service.start({
      source,
      interfaces: values.interface ?? [],
      snaplen: 65535,
      ...(limit ? { limit } : {}),
    });
  } catch (err) {
    service.close();
    fail(errorMessage(err));
  }
  const started = Date.now();
  let printed = 0;
  /** View position of the next row to print, and the number of the last printed (ring buffer: positions shift). */
  let next = 0;
  let lastNo = 0;
  let evicted = 0;
  let lastProgress = 0;
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  for (;;) {
    await new Promise((r) => setTimeout(r, 50));
    const counts = service.counts();
    const total = counts.view;
    if (!path) {
      if ((counts.evicted ?? 0) !== evicted) {
        // The ring buffer dropped records: find where the last printed one is now (gone: start over at 0).
        evicted = counts.evicted ?? 0;
        const at = lastNo
          ? ((await service.handle('view.positionOf', { no: lastNo }, 'ipc')) as { position: number | null })
              .position
          : null;
        next = at === null ? 0 : at + 1;
      }
      while (next < total && (count === undefined || printed < count)) {
        const want = Math.min(1000, total - next, count === undefined ? Infinity : count - printed);
        const { rows } = service.rows(next, want);
        if (rows.length === 0) break;
        for (const row of rows) process.stdout.write(rowLine(row) + '\n');
        printed += rows.length;
        next += rows.length;
        lastNo = rows[rows.length - 1]!.no;
      }
    }
    const now = Date.now();
    // The capture ended by itself (its interface went away, or an error): stop after printing the rest.
    const ended = service.captureState.state === 'stopped' || service.captureState.state === 'error';
    if (path && now - lastProgress >= 1000) {
      lastProgress = now;
      const c = service.counts();
      progress(
        `icmpcap: ${c.total.toLocaleString('en')} packets, ${c.rate}/s, ${c.droppedKernel + c.droppedRing} dropped`,
      );
    }
    if (
      interrupted ||
      ended ||
      (count !== undefined && (path ? total : printed) >= count) ||
      (duration !== undefined && now - started >= duration * 1000)
    ) {
      break;
    }
  }
  service.stop();
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  const c = service.counts();
  const kept = Math.min(count ?? Infinity, c.view);
  if (path && format) {
    if (process.stderr.isTTY) process.stderr.write('\n');
    const job = await new Promise<Job>((resolveJob) => {
      const off = service.on((event, data) => {
        if (event !== 'job') return;
        const j = data as Job;
        if (j.state === 'running')
          progress(
            `icmpcap: writing ${path}: ${j.done.toLocaleString('en')} of ${kept.toLocaleString('en')}`,
          );
        else {
          off();
          resolveJob(j);
        }
      });
      service.runExport(format, path, service.viewIndices(kept), kept);
    });
    if (process.stderr.isTTY) process.stderr.write('\n');
    if (job.state !== 'done') {
      service.close();
      fail(job.message ?? 'the export failed');
    }
  }
  const dropped = c.droppedKernel + c.droppedRing;
  process.stderr.write(
    `icmpcap: ${kept.toLocaleString('en')} packets captured${path ? ` to ${path}` : ''}, ${dropped.toLocaleString('en')} dropped by the kernel\n`,
  );
  service.close();
}

function doctor(): void {
  let native;
  try {
    native = loadNative();
  } catch (err) {
    native = err instanceof Error ? err : new Error(String(err));
  }
  const checks = runDoctor(native);
  process.stdout.write(formatChecks(checks) + '\n');
  const usable = checks.some((c) => c.name.startsWith('source ') && c.status === 'ok');
  process.stdout.write(
    usable ? 'icmpcap can capture here.\n' : 'icmpcap cannot capture here yet: apply a fix above.\n',
  );
  if (!usable) process.exitCode = 1;
}

function interfaces(): void {
  const native = loadNative();
  for (const i of native.interfaces()) {
    const state = i.up ? (i.running ? 'up' : 'up, no carrier') : 'down';
    const addrs = i.addresses.map((a) => `${a.address}/${a.prefixLength}`).join(' ');
    process.stdout.write(
      `${String(i.index).padStart(3)}  ${i.name.padEnd(16)} ${state.padEnd(15)} ${addrs}\n`,
    );
  }
}

function sources(): void {
  const native = loadNative();
  for (const s of native.probe()) {
    const line = s.available
      ? `${s.source}: available${s.via ? ` (${s.via})` : ''}`
      : `${s.source}: unavailable: ${s.reason ?? ''}${s.fix ? `\n    fix: ${s.fix}` : ''}`;
    process.stdout.write(line + '\n');
  }
}

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'serve':
        return await serve(rest);
      case 'capture':
        return await capture(rest);
      case 'doctor':
        return doctor();
      case 'interfaces':
        return interfaces();
      case 'sources':
        return sources();
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(USAGE);
        return;
      default:
        fail(`unknown command ${command}\n${USAGE}`);
    }
  } catch (err) {
    fail(errorMessage(err));
  }
}
