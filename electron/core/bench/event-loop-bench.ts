/**
 * Event-loop delay while the service works on a large capture: perf_hooks.monitorEventLoopDelay p99 and max
 * during each operation.
 * - The view alone: the synchronous path (View.setSort / setFilter, one blocking call) beside the sliced path
 *   (View.setSortAsync / setFilterAsync, which yield every few ms), on the same store in one run.
 * - The whole service (CaptureService, as the UI drives it through `handle`, with the insights attached as the
 *   app and `serve` attach them): capture (batches fed as a session delivers them: spool writes and fdatasync,
 *   ingest with echo matching, statistics, view, the insights' tap), sort, filter, statistics, export of every
 *   record to pcapng, and open of that file.
 * The worst max of the sliced view path and the service at the largest count is `service.event_loop_max_ms`.
 *
 *   node --max-old-space-size=8192 --initial-old-space-size=512 --v8-pool-size=0 --import tsx electron/core/bench/event-loop-bench.ts [records...]
 *   (npm run bench -- service runs it at 10 M and 20 M; a custom count does not write results)
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { mergeBenchResults } from '../../../test/support/bench-results.js';
import type { SortColumn } from '../../common/contract.js';
import { attachInsights } from '../insights/index.js';
import { loadNative } from '../native.js';
import { CaptureService } from '../service.js';
import { warmUp } from '../service/warm-up.js';
import { jobDone } from '../testing/jobs.js';
import { Ingestor } from '../ingest.js';
import { Aggregator } from '../stats/aggregator.js';
import { RecordStore } from '../store.js';
import { View } from '../view.js';
import { startWorker } from '../workers.js';
import { realisticCapture } from './synth.js';

/** The native session's bounded queue: the batches it lets the service hold before its reader waits. */
const { MAX_HELD_BATCHES } = loadNative();
const DEFAULT_COUNTS = [10_000_000, 20_000_000];
const ARGS = process.argv.slice(2);
/** `--service-only`: skip the view's sync/sliced comparison (minutes at 20 M); `--quick`: 2 M records. */
const SERVICE_ONLY = ARGS.includes('--service-only');
const NUMBERS = ARGS.filter((a) => !a.startsWith('--')).map(Number);
const COUNTS = ARGS.includes('--quick') ? [2_000_000] : NUMBERS.length ? NUMBERS : DEFAULT_COUNTS;
/** Only a run with no arguments writes bench/results.json. */
const WRITES = ARGS.length === 0;
const COMMAND =
  'node --max-old-space-size=8192 --initial-old-space-size=512 --v8-pool-size=0 --import tsx electron/core/bench/event-loop-bench.ts';
const IFNAMES = ['', 'eth0', 'wlan0', 'lo'];
const round = (v: number, digits = 1): number => Math.round(v * 10 ** digits) / 10 ** digits;
/** A full collection (the bench's own garbage, between its steps). */
const collectGarbage = ((): (() => void) => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

interface Delay {
  op: string;
  path: 'sync' | 'sliced' | 'service';
  ms: number;
  p99: number;
  max: number;
  /** Where the longest late turn's time went (TurnWatch), when /proc could tell. */
  worst: Turn | null;
  /** The turn in which the loop's own thread ran longest (TurnWatch). */
  held: Turn | null;
}

/** A late turn of the event loop and where its time went, from the kernel's accounting. */
interface Turn {
  /** How late a 5 ms timer fired: the turn's length as the loop saw it. */
  ms: number;
  /** The event loop's thread running (its own work, collections included). */
  onCpu: number;
  /** The thread ready to run and waiting for a core (other threads, other processes, kernel threads). */
  waiting: number;
  /** Time the hypervisor took from the machine's cores meanwhile (all of them together, 10 ms steps). */
  stolen: number;
}

/**
 * Attributes the event loop's late turns: a 5 ms timer (as monitorEventLoopDelay's) that reads, each time it
 * fires, the thread's run and wait time (/proc/thread-self/schedstat) and the machine's stolen time (/proc/stat),
 * and keeps the longest gap between firings with what each counter did over it. Tells a service step that
 * held the loop from a thread that could not get a core or a virtual machine that was not run.
 */
class TurnWatch {
  private timer: NodeJS.Timeout | null = null;
  private last: { at: number; run: number; wait: number; steal: number } | null = null;
  worst: Turn | null = null;
  /** The turn in which the loop's thread itself ran longest: the service's own longest step. */
  held: Turn | null = null;

  start(): void {
    this.last = TurnWatch.read();
    if (this.last === null) return;
    this.timer = setInterval(() => {
      const now = TurnWatch.read();
      const last = this.last!;
      if (now === null) return;
      const turn = {
        ms: round(now.at - last.at),
        onCpu: round(now.run - last.run),
        waiting: round(now.wait - last.wait),
        stolen: round(now.steal - last.steal),
      };
      if (this.worst === null || turn.ms > this.worst.ms) this.worst = turn;
      if (this.held === null || turn.onCpu > this.held.onCpu) this.held = turn;
      this.last = now;
    }, 5);
  }

  stop(): { worst: Turn | null; held: Turn | null } {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    return { worst: this.worst, held: this.held };
  }

  private static read(): { at: number; run: number; wait: number; steal: number } | null {
    try {
      const [run, wait] = readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ');
      // cpu  user nice system idle iowait irq softirq steal ... (in USER_HZ, 100 a second)
      const steal = readFileSync('/proc/stat', 'utf8').slice(0, 200).split('\n')[0]!.trim().split(/\s+/)[8];
      return {
        at: performance.now(),
        run: Number(run) / 1e6,
        wait: Number(wait) / 1e6,
        steal: Number(steal) * 10,
      };
    } catch {
      return null;
    }
  }
}

const describeTurn = (t: Turn | null): string =>
  t === null
    ? ''
    : `its longest turn ${t.ms} ms: the loop's thread ran ${t.onCpu} ms of it, waited for a core ${t.waiting} ms, ` +
      `the hypervisor took ${t.stolen} ms of the cores' time`;

/**
 * The machine's own floor under load, beside the service's figures: this thread works in 5 ms slices and yields
 * between them (shorter than any of the service's), while a worker at the service's workers' nice value keeps the
 * other core busy. Both stream through memory as a sort and the spool's encoding do (a 64 MiB column read and a
 * key written, 256 MiB copied on the worker): nothing else runs, nothing blocks. Any turn much longer than 5 ms
 * here is time the machine (the host of a virtual machine, the kernel) took from a thread that never waits.
 */
async function busyControl(ms: number, { column, keys }: BusyArrays): Promise<void> {
  const worker = startWorker(import.meta.url, './busy-worker', ms);
  const end = performance.now() + ms;
  let at = 0;
  while (performance.now() < end) {
    const slice = performance.now() + 5;
    while (performance.now() < slice) {
      for (let i = 0; i < 4096; i++, at = (at + 1) & (column.length - 1))
        keys[at & (keys.length - 1)] = column[at]! * 65536 + (at & 0xffff);
    }
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  await worker.terminate();
}

interface BusyArrays {
  column: Uint32Array;
  keys: Float64Array;
}

/** busyControl's memory on this thread, made (and touched) before it is measured. */
function busyArrays(): BusyArrays {
  const column = new Uint32Array(16 << 20);
  for (let i = 0; i < column.length; i++) column[i] = (i * 2654435761) >>> 0;
  return { column, keys: new Float64Array(1 << 20).fill(0) };
}

/** The last run's busyControl (see runService). */
let busy: Delay | null = null;

/** Runs `work` with the event-loop delay histogram on (sampled every 5 ms). */
async function measure(op: string, path: Delay['path'], work: () => unknown): Promise<Delay> {
  const h = monitorEventLoopDelay({ resolution: 5 });
  const watch = new TurnWatch();
  h.enable();
  await sleep(20); // the first interval after enable() is not recorded: let it pass before the work starts
  watch.start();
  const t0 = performance.now();
  await work();
  const ms = performance.now() - t0;
  await sleep(30); // let the timer that a blocking call delayed fire and be counted
  h.disable();
  const { worst, held } = watch.stop();
  const d = {
    op,
    path,
    ms: round(ms),
    p99: round(h.percentile(99) / 1e6),
    max: round(h.max / 1e6),
    worst,
    held,
  };
  console.log(
    `  ${op.padEnd(22)} ${path.padEnd(6)} ${String(d.ms).padStart(8)} ms   loop delay p99 ${d.p99} ms, max ${d.max} ms` +
      (worst && worst.ms > 20 ? `   (${describeTurn(worst)})` : ''),
  );
  return d;
}

function build(n: number): { view: View; store: RecordStore } {
  const store = new RecordStore();
  const ingestor = new Ingestor(store, (i) => IFNAMES[i] ?? `if${i}`);
  const agg = new Aggregator(ingestor);
  const view = new View(
    store,
    { addresses: ingestor.addresses, interfaces: ingestor.interfaces },
    { sliceMs: 10 },
  );
  for (const batch of realisticCapture(n, 4096)) {
    const from = store.length;
    ingestor.ingest(batch);
    agg.update(store, from, store.length);
  }
  view.update();
  return { view, store };
}

async function run(n: number): Promise<Delay[]> {
  const t0 = performance.now();
  const { view, store } = build(n);
  console.log(`\n${store.length} records (built in ${round((performance.now() - t0) / 1000)} s)`);
  const out: Delay[] = [];
  // The noise floor: the same histogram over an idle wait (other processes on this machine preempt us too).
  await measure('idle 300 ms (control)', 'sliced', () => sleep(300)).then((d) =>
    console.log(`  (control: ${d.max} ms)`),
  );
  const sorts: SortColumn[] = ['src', 'rtt', 'len'];
  for (const column of sorts) {
    view.setSort(null);
    out.push(await measure(`sort ${column}`, 'sync', () => view.setSort(column, true)));
    view.setSort(null);
    out.push(await measure(`sort ${column}`, 'sliced', () => view.setSortAsync(column, true)));
  }
  view.setSort(null);
  const filter = 'icmp.type == echo-reply && rtt > 5';
  out.push(await measure('filter', 'sync', () => view.setFilter(filter)));
  view.setFilter('');
  out.push(await measure('filter', 'sliced', () => view.setFilterAsync(filter)));
  view.setFilter('');
  view.setSort('src');
  out.push(await measure('filter, sorted by src', 'sync', () => view.setFilter(filter)));
  view.setFilter('');
  out.push(await measure('filter, sorted by src', 'sliced', () => view.setFilterAsync(filter)));
  return out;
}

/** The whole service at `n` records: capture, sort, filter, statistics, export, open. */
async function runService(n: number): Promise<Delay[]> {
  const dir = mkdtempSync(join(tmpdir(), 'icmpcap-loop-bench-'));
  const svc = new CaptureService({
    native: new Error('no native session: batches are fed'),
    version: 'bench',
    spoolDir: join(dir, 'spool'),
  });
  svc.on(() => {}); // a UI is attached: counts and aggregates are pushed as to a window
  // Problems, paths, neighbours and alerts (no rules file here), as electron/main and `serve` attach them.
  const insights = attachInsights(svc, { rulesFile: join(dir, 'alerts.conf'), log: () => undefined });
  const out: Delay[] = [];
  try {
    // As the app and serve do while they wait for the user's first capture (service/warm-up.ts).
    await warmUp(svc);
    // The noise floor of this run (other processes preempt us too), beside the service's figures.
    const control = await measure('idle 300 ms (control)', 'service', () => sleep(300));
    console.log(`  (control: ${control.max} ms)`);
    const arrays = busyArrays();
    busy = await measure('busy 10 s (control)', 'service', () => busyControl(10_000, arrays));
    console.log(`  (control under load, 5 ms slices and a busy core: ${busy.max} ms)`);
    // Made up front, so the generator's own work is not counted as the service's.
    // With real packet headers, so the exported file opens as the same n ICMP records.
    const batches = [...realisticCapture(n, 4096, { packetBytes: true })];
    // Nor its garbage (gigabytes): collected now, not in the capture's first turns (a 48-64 ms turn there).
    collectGarbage();
    await sleep(100);
    svc.startFeed({ snaplen: 256 });
    out.push(
      await measure('capture (spool, ingest)', 'service', async () => {
        // One batch per turn of the event loop, as a native session delivers them (deliver: the same path), and
        // as its reader does, none while the service holds MAX_HELD_BATCHES (the session's bounded queue, see
        // Session.hold).
        for (let k = 0; k < batches.length; k++) {
          while (svc.heldBatches >= MAX_HELD_BATCHES)
            await new Promise<void>((resolve) => setImmediate(resolve));
          svc.deliver(batches[k]!);
          batches[k] = new ArrayBuffer(0); // let it go: the spool has it
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
        await svc.handle('capture.stop', {}, 'ipc'); // takes in what is still waiting
      }),
    );
    console.log(`  service: ${svc.store.length} records captured`);
    for (const column of ['src', 'rtt'] as const) {
      out.push(
        await measure(`sort ${column}`, 'service', () =>
          svc.handle('view.setSort', { column, descending: true }, 'ipc'),
        ),
      );
    }
    const filter = 'icmp.type == echo-reply && rtt > 5';
    out.push(
      await measure('filter, sorted by rtt', 'service', () =>
        svc.handle('view.setFilter', { filter }, 'ipc'),
      ),
    );
    out.push(await measure('statistics', 'service', () => svc.handle('stats.get', {}, 'ipc')));
    await svc.handle('view.setFilter', { filter: '' }, 'ipc');
    await svc.handle('view.setSort', { column: 'no', descending: false }, 'ipc');
    const file = join(dir, 'all.pcapng');
    out.push(
      await measure('export all (pcapng)', 'service', async () => {
        const { id } = (await svc.handle(
          'export.start',
          { format: 'pcapng', scope: 'all', path: file },
          'ipc',
        )) as { id: number };
        const job = await jobDone(svc, id);
        console.log(`  service: ${job.message ?? ''}`);
      }),
    );
    out.push(
      await measure('open (pcapng)', 'service', async () => {
        const { id } = (await svc.handle('file.open', { path: file }, 'ipc')) as { id: number };
        const job = await jobDone(svc, id);
        console.log(`  service: ${job.message ?? ''}`);
      }),
    );
    // The open must have decoded every record (not skipped them as non-ICMP): else it measured nothing.
    if (svc.store.live !== n)
      throw new Error(`open read ${svc.store.live} ICMP records of the ${n} exported: the bench is broken`);
  } finally {
    insights.close();
    svc.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

async function main(): Promise<void> {
  const worst: Record<number, { sync: Delay; sliced: Delay; held: Delay | null }> = {};
  for (const n of COUNTS) {
    const delays = [...(SERVICE_ONLY ? [] : await run(n)), ...(await runService(n))];
    const top = (paths: Delay['path'][]): Delay =>
      delays.filter((d) => paths.includes(d.path)).reduce((a, b) => (b.max > a.max ? b : a));
    if (SERVICE_ONLY) {
      const w = top(['service']);
      const h = heldMost(delays);
      console.log(
        `worst at ${n}: service ${w.max} ms (${w.op}); the machine's floor under load ${busy?.max} ms; ` +
          `the service's own longest step ${h?.held?.onCpu ?? '?'} ms (${h?.op ?? '?'})`,
      );
      continue;
    }
    worst[n] = { sync: top(['sync']), sliced: top(['sliced', 'service']), held: heldMost(delays) };
    console.log(
      `worst at ${n}: sliced and service ${worst[n].sliced.max} ms (${worst[n].sliced.op}), sync ${worst[n].sync.max} ms (${worst[n].sync.op}); the machine's floor under load ${busy?.max} ms`,
    );
    // Written after each count, so a run that cannot finish 20 M still leaves the 10 M figures.
    if (WRITES) write(n, worst[n]);
  }
}

/** Of the sliced and service paths, the operation whose loop thread ran longest in one turn. */
function heldMost(delays: Delay[]): Delay | null {
  let most: Delay | null = null;
  for (const d of delays)
    if (d.path !== 'sync' && d.held && (most === null || d.held.onCpu > most.held!.onCpu)) most = d;
  return most;
}

function write(at: number, w: { sync: Delay; sliced: Delay; held: Delay | null }): void {
  const note = (d: Delay, peer: Delay): string =>
    `worst perf_hooks.monitorEventLoopDelay max at ${at / 1e6} M records over the view's sorts (src, rtt, len) and ` +
    `filters (plain and sorted)${d.path === 'sync' ? '' : ", and the service's capture, sort, filter, statistics, export and open with the insights attached (as the app and serve attach them)"}, ` +
    `${d.path} path: ${d.op} (p99 ${d.p99} ms, took ${d.ms} ms); beside it the ${peer.path} path in the same run: ` +
    `${peer.max} ms (${peer.op}). Load average ${Math.round(loadavg()[0]! * 10) / 10} (2 cores): other builds ` +
    `preempt it, and every max includes that. The machine's own floor in the same run (busyControl): a thread ` +
    `working in 5 ms slices (streaming memory, as a sort does) beside a busy core, nothing else, had turns of up to ` +
    `${busy?.max} ms (p99 ${busy?.p99} ms)` +
    (busy?.worst ? `; ${describeTurn(busy.worst)}` : '') +
    '.' +
    (d.path !== 'sync' && d.worst ? ` Of the ${d.op}, ${describeTurn(d.worst)}.` : '');
  const held = w.held?.held;
  mergeBenchResults({
    ...(held && w.held
      ? {
          'service.event_loop_max_held_ms': {
            value: held.onCpu,
            unit: 'ms',
            command: COMMAND,
            note:
              `the longest time the event loop's own thread ran without a 5 ms timer getting its turn, at ${at / 1e6} M ` +
              `records over the same operations as service.event_loop_max_ms (sliced and service paths): the service's ` +
              `longest step, its collections included, without the time the thread waited for a core or the ` +
              `hypervisor took (/proc/thread-self/schedstat, /proc/stat): ${w.held.op}, a turn of ${held.ms} ms of ` +
              `which the thread ran ${held.onCpu} ms, waited ${held.waiting} ms, the hypervisor took ${held.stolen} ms ` +
              `of the cores' time. Beside it the loop's delay max in the same run: ${w.sliced.max} ms (${w.sliced.op}).`,
          },
        }
      : {}),
    'service.event_loop_max_ms': {
      value: w.sliced.max,
      unit: 'ms',
      command: COMMAND,
      note: note(w.sliced, w.sync),
    },
    'service.event_loop_max_ms_sync': {
      value: w.sync.max,
      unit: 'ms',
      command: COMMAND,
      note: note(w.sync, w.sliced),
    },
  });
}

await main();
