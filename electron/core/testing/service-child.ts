/**
 * Test support: the real capture service (native addon, AF_PACKET) in a child process, so it can run inside a
 * network namespace (`ip netns exec NS node --import tsx service-child.ts CONFIG`). Commands on stdin, one a
 * line, answers on stdout as JSON lines:
 *   mark NAME   -> {"mark":NAME,"records":N}   (after the capture has settled)
 *   stop        -> stops, exports every record in every format, then {"rows":[...],"exports":{...},"jobs":[...]}
 *   stats       -> stops (every request judged), then the aggregates the UI shows (stats.get) and exits
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { EXPORT_FORMATS, type Job } from '../../common/contract.js';
import { loadNative } from '../native.js';
import { CaptureService } from '../service.js';

interface Config {
  interface: string;
  spoolDir: string;
  outDir: string;
  snaplen?: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as Config;
mkdirSync(config.outDir, { recursive: true });
const service = new CaptureService({ native: loadNative(), version: 'test', spoolDir: config.spoolDir });
const jobs = new Map<number, Job>();
const waiters = new Map<number, (job: Job) => void>();
service.on((event, data) => {
  if (event !== 'job') return;
  const job = data as Job;
  if (job.state === 'running') return;
  jobs.set(job.id, job);
  waiters.get(job.id)?.(job);
});

function say(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function stopAndExport(): Promise<void> {
  await settle(300);
  service.stop();
  const exports: Record<string, string> = {};
  const done: Job[] = [];
  for (const format of EXPORT_FORMATS) {
    const path = join(config.outDir, `all.${format}`);
    const id = service.runExport(format, path, allIndices(), service.store.live);
    const job = jobs.get(id) ?? (await new Promise<Job>((resolve) => waiters.set(id, resolve)));
    done.push(job);
    exports[format] = path;
  }
  const rows = [];
  for (let start = 0; start < service.store.live; start += 2000) rows.push(...service.rows(start, 2000).rows);
  say({ rows, exports, jobs: done });
  service.close();
  process.exit(0);
}

/** `filter EXPR` -> {"filter":EXPR,"nos":[...]}: the record numbers the display filter keeps. */
async function filterRecords(filter: string): Promise<void> {
  try {
    await service.handle('view.setFilter', { filter }, 'ipc');
    const nos: number[] = [];
    for (let start = 0; ; start += 2000) {
      const page = service.rows(start, 2000);
      nos.push(...page.rows.map((r) => r.no));
      if (start + 2000 >= page.view) break;
    }
    await service.handle('view.setFilter', { filter: '' }, 'ipc');
    say({ filter, nos });
  } catch (err) {
    say({ filter, error: (err as Error).message });
  }
}

async function stopAndStats(): Promise<void> {
  await settle(300);
  service.stop();
  say(await service.handle('stats.get', {}, 'ipc'));
  service.close();
  process.exit(0);
}

function* allIndices(): Generator<number> {
  for (let i = service.store.firstIndex; i < service.store.length; i++) yield i;
}

try {
  service.start({
    source: 'afpacket',
    interfaces: [config.interface],
    snaplen: config.snaplen ?? 65535,
  });
} catch (err) {
  say({ error: (err as Error).message });
  process.exit(1);
}
say({ ready: true });

let input = '';
process.stdin.on('data', (chunk: Buffer) => {
  input += chunk.toString();
  let nl: number;
  while ((nl = input.indexOf('\n')) >= 0) {
    const line = input.slice(0, nl).trim();
    input = input.slice(nl + 1);
    if (line === 'stop') void stopAndExport();
    else if (line.startsWith('filter ')) void filterRecords(line.slice(7));
    else if (line === 'stats') void stopAndStats();
    else if (line.startsWith('mark ')) {
      const name = line.slice(5);
      void settle(300).then(() => say({ mark: name, records: service.store.length }));
    }
  }
});
