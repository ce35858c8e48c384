/**
 * The `icmpcap` command line: `serve` (browser mode), `interfaces`, `sources`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadNative } from './native.js';
import { projectRoot } from './paths.js';
import { startServer } from './server.js';
import { CaptureService, errorMessage } from './service.js';

const USAGE = `usage: icmpcap <command> [options]

commands:
  serve         serve the app in a browser (127.0.0.1 and a random token by default)
                  --listen ADDR   listen on ADDR instead of 127.0.0.1 (the token is still required)
                  --port N        port (default: any free port)
                  -i, --interface NAME   capture on NAME (repeatable; default: all)
                  --source auto|module|afpacket
                  --no-start      do not start capturing until asked from the UI
  interfaces    list the interfaces capture can use
  sources       show which capture sources are available, and why not
`;

export function version(): string {
  const pkg = JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

function fail(message: string): never {
  process.stderr.write(`icmpcap: ${message}\n`);
  process.exit(2);
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
    },
    strict: true,
  });
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    fail(`--port takes a number from 0 to 65535, not ${values.port}`);
  const source = values.source;
  if (source !== 'auto' && source !== 'module' && source !== 'afpacket') {
    fail(`--source takes auto, module or afpacket, not ${source}`);
  }
  const service = makeService();
  const server = await startServer({
    service,
    staticDir: join(projectRoot(), 'dist', 'renderer'),
    host: values.listen ?? '127.0.0.1',
    port,
  });
  process.stdout.write(`icmpcap ${version()} serving on ${server.url}\n`);
  if (values.listen)
    process.stdout.write(`icmpcap: listening on ${values.listen}: anyone with the token can capture\n`);
  if (!values['no-start']) {
    try {
      const state = service.start({ source, interfaces: values.interface ?? [], snaplen: 256 });
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
    void server.close().then(() => {
      process.stdout.write('icmpcap: stopped\n');
      process.exit(0);
    });
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
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
