/**
 * The `icmpcap` command line: `serve` (browser mode), `capture` (tshark's and tcpdump's flags), `doctor`,
 * `interfaces`, `sources`, `help`. The commands live in ./cli/; this file dispatches and turns failures into
 * exit codes: 2 for a mistake on the command line (the message names the flag), 1 for a failure at run time.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadNative } from './native.js';
import { projectRoot } from './paths.js';
import { startServer } from './server.js';
import { warmUp } from './service/warm-up.js';
import { SERVE_SECURITY_OPTIONS, serveSecurity } from './web/serve-setup.js';
import { type CaptureService, errorMessage } from './service.js';
import { ServiceError, type SourceKind } from '../common/contract.js';
import { BufferSizeError, planForAny } from './kernel-buffer.js';
import { formatChecks, runDoctor } from './doctor.js';
import { METRICS_FLAGS, createExporter, metricsConfig } from './metrics/index.js';
import { bufferSizeOf, parseSource, ringLimit } from './cli/args.js';
import { listFields } from './cli/analysis.js';
import { capture } from './cli/capture.js';
import { UsageError, usage } from './cli/errors.js';
import { interfaces } from './cli/interfaces.js';
import { dropRoot, makeService, version } from './cli/service.js';
import { COMMAND_HELP, USAGE, commandHelp } from './cli/usage.js';
import { ALERT_FLAGS, alertRulesFromFlags } from './alerts/cli.js';
import { attachInsights } from './insights/index.js';
import { spoolCommand } from './spool-cli.js';
import { RemoteHosts } from './remote/hosts.js';
import { REMOTE_FLAGS, readTokenFile } from './remote/cli.js';

export { version } from './cli/service.js';

/** Runs parseArgs, its errors as usage errors naming the flag. */
function parseFlags<T>(command: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    usage(
      `${errorMessage(err).replace(/^Unknown option/, 'unknown flag')}; \`icmpcap help ${command}\` lists the flags`,
    );
  }
}

const HELP_FLAG = { help: { type: 'boolean', short: 'h' } } as const;

function helpRequested(command: string, values: { help?: unknown }): boolean {
  if (values.help === true) process.stdout.write(commandHelp(command));
  return values.help === true;
}

/** What `serve` captures of each packet (the UI's capture.start asks for the contract's default, the same). */
const SERVE_SNAPLEN = 256;

/**
 * `serve -B`, checked before anything listens, so a size the capture cannot take fails at once (exit 2) and not
 * after "serving on": against the source the capture starts with (--source; auto: the one the service picks now,
 * the first available), with its interfaces. With --no-start, or while no source is available, the source is
 * chosen later (in the UI, on one interface or all): then only a size no source here takes is refused now; one
 * that some source takes is checked again when the capture starts, as before.
 */
function checkServeBuffer(
  service: CaptureService,
  bufferMiB: number,
  flags: { source: SourceKind | 'auto'; interfaces: string[]; noStart: boolean },
): void {
  let sources: SourceKind[];
  if (flags.source !== 'auto') sources = [flags.source];
  else {
    const available = service
      .probe()
      .filter((s) => s.available)
      .map((s) => s.source);
    sources = flags.noStart ? available : available.slice(0, 1);
    if (sources.length === 0) sources = ['module', 'afpacket'];
  }
  try {
    planForAny(sources, {
      bytes: bufferMiB * 2 ** 20,
      interfaces: flags.noStart ? [] : flags.interfaces,
      snaplen: SERVE_SNAPLEN,
    });
  } catch (err) {
    if (!(err instanceof BufferSizeError)) throw err;
    service.close();
    usage(`--buffer-size ${bufferMiB}: ${err.message}`);
  }
}

async function serve(argv: string[]): Promise<void> {
  const { values } = parseFlags('serve', () =>
    parseArgs({
      args: argv,
      strict: true,
      options: {
        ...HELP_FLAG,
        listen: { type: 'string' },
        port: { type: 'string' },
        interface: { type: 'string', short: 'i', multiple: true },
        source: { type: 'string', default: 'auto' },
        'buffer-size': { type: 'string', short: 'B' },
        'no-start': { type: 'boolean', default: false },
        'ring-records': { type: 'string' },
        'ring-seconds': { type: 'string' },
        ...METRICS_FLAGS,
        ...SERVE_SECURITY_OPTIONS,
        ...ALERT_FLAGS,
        ...REMOTE_FLAGS,
        user: { type: 'string', short: 'Z' },
      },
    }),
  );
  if (helpRequested('serve', values)) return;
  const token = values['token-file'] === undefined ? undefined : readTokenFile(values['token-file']);
  // Alert rules are checked before anything starts: a bad one is a usage error, not a silent no-op.
  try {
    alertRulesFromFlags(values);
  } catch (err) {
    usage(errorMessage(err));
  }
  let metrics;
  try {
    metrics = metricsConfig(values);
  } catch (err) {
    usage(errorMessage(err));
  }
  const bufferMiB =
    values['buffer-size'] === undefined ? undefined : bufferSizeOf('--buffer-size', values['buffer-size']);
  dropRoot(values.user);
  const security = await serveSecurity(values);
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    usage(`--port takes a number from 0 to 65535, not ${values.port}`);
  const source = parseSource(values.source ?? 'auto');
  const limit = ringLimit(values['ring-records'], values['ring-seconds']);
  const service = makeService(bufferMiB === undefined ? {} : { bufferBytes: bufferMiB * 2 ** 20 });
  if (bufferMiB !== undefined)
    checkServeBuffer(service, bufferMiB, {
      source,
      interfaces: values.interface ?? [],
      noStart: values['no-start'] === true,
    });
  service.watchInterfaces();
  // Problems, Paths, Neighbours and the alert rules (alerts.conf and --alert), served to the UI.
  attachInsights(service, { alerts: values });
  const exporter = metrics ? createExporter(metrics, service, version()) : null;
  const remote = metrics?.noUi ? null : new RemoteHosts();
  const server = metrics?.noUi
    ? null
    : await startServer({
        service,
        staticDir: join(projectRoot(), 'dist', 'renderer'),
        host: values.listen ?? '127.0.0.1',
        port,
        files: security.files,
        ...(token ? { token } : {}),
        ...(remote ? { remote } : {}),
        ...(security.tls ? { tls: security.tls } : {}),
        ...(exporter ? { routes: exporter.route } : {}),
      });
  // Before anything is printed: whoever reads "serving on" may stop it at once (a script, a test), cleanly.
  let stopping = false;
  const shutdown = (): void => {
    if (stopping) return;
    stopping = true;
    remote?.close();
    service.close();
    void Promise.all([server?.close(), exporter?.close()]).then(() => {
      process.stdout.write('icmpcap: stopped\n');
      process.exit(0);
    });
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
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
        snaplen: SERVE_SNAPLEN,
        ...(limit ? { limit } : {}),
      });
      process.stdout.write(
        `icmpcap: capturing with ${state.source} on ${state.interfaces.length ? state.interfaces.join(', ') : 'all interfaces'}\n`,
      );
    } catch (err) {
      // The only request capture.start refuses after the flags' own checks: the buffer's size.
      if (err instanceof ServiceError && err.code === 'bad-request' && bufferMiB !== undefined) {
        service.close();
        usage(`--buffer-size ${bufferMiB}: ${err.message}`);
      }
      process.stdout.write(`icmpcap: not capturing yet: ${errorMessage(err)}\n`);
    }
  }
  // Not capturing yet: the capture path is warmed while the page waits for the user (service/warm-up.ts).
  void warmUp(service, { delayMs: 1000 });
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

function sources(): void {
  const native = loadNative();
  for (const s of native.probe()) {
    const line = s.available
      ? `${s.source}: available${s.via ? ` (${s.via})` : ''}`
      : `${s.source}: unavailable: ${s.reason ?? ''}${s.fix ? `\n    fix: ${s.fix}` : ''}`;
    process.stdout.write(line + '\n');
  }
}

/** Commands with no flags but -h. */
function simple(command: string, argv: string[], run: () => void): void {
  const { values } = parseFlags(command, () => parseArgs({ args: argv, strict: true, options: HELP_FLAG }));
  if (!helpRequested(command, values)) run();
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
        return simple('doctor', rest, doctor);
      case 'interfaces':
        return simple('interfaces', rest, () => interfaces());
      case 'sources':
        return simple('sources', rest, sources);
      case 'fields':
        return simple('fields', rest, () => process.stdout.write(listFields()));
      case 'spool':
        process.exitCode = await spoolCommand(rest);
        return;
      case '-v':
      case '-V':
      case '--version':
        process.stdout.write(`icmpcap ${version()}\n`);
        return;
      case 'help':
        if (rest[0] !== undefined && !(rest[0] in COMMAND_HELP))
          usage(
            `help: there is no command ${rest[0]}; the commands are ${Object.keys(COMMAND_HELP).join(', ')}`,
          );
        process.stdout.write(rest[0] === undefined ? USAGE : commandHelp(rest[0]));
        return;
      case undefined:
      case '-h':
      case '--help':
        process.stdout.write(USAGE);
        return;
      default:
        usage(
          `unknown command ${command}; the commands are ${Object.keys(COMMAND_HELP).join(', ')} (icmpcap --help)`,
        );
    }
  } catch (err) {
    process.stderr.write(`icmpcap: ${errorMessage(err)}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  }
}
