/**
 * Ring-buffer benchmark: 10 M synthetic records (realisticCapture, batches of 4096) fed through
 * CaptureService.feed, a turn of the event loop each (the path a native session's batches take: spool segments
 * on disk, Ingestor, Aggregator, ring eviction, View) with a limit of 2 M records, so the ring evicts about 32 units of 256 Ki
 * records and deletes their spool segments on the way; three such runs, the median reported. Also measures what one eviction costs the view:
 * trimming a filtered + sorted view (what View.evict does) against rebuilding it over the live records
 * (setFilter + setSort from firstIndex). Results merge into bench/results.json.
 *
 *   node --max-old-space-size=8192 --initial-old-space-size=512 --v8-pool-size=0 --import tsx electron/core/bench/ring-bench.ts [records]
 *   10 M records (the default) writes service.ingest_with_ring_limit_records_per_s; 20000000 writes the same
 *   figure at 20 M (service.ingest_with_ring_limit_records_per_s_20m); any other count writes nothing.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { mergeBenchResults } from '../../../test/support/bench-results.js';
import { Ingestor } from '../ingest.js';
import { evictionTarget } from '../ring.js';
import { CaptureService } from '../service.js';
import { SPOOL_BACKLOG_MAX } from '../service/spool-owner.js';
import { Aggregator } from '../stats/aggregator.js';
import { RecordStore } from '../store.js';
import { View } from '../view.js';
import { IFNAMES, realisticCapture } from './synth.js';

const N = Number(process.argv[2] ?? 10_000_000);
/** Which figure this run writes: at 10 M, at 20 M, or none (a custom count). */
const SCALE = N === 10_000_000 ? '10m' : N === 20_000_000 ? '20m' : null;
const LIMIT = 2_000_000;
const BATCH = 4096;
/** Runs with the limit; the median is the figure. */
const RUNS = 3;
const COMMAND =
  'node --max-old-space-size=8192 --initial-old-space-size=512 --v8-pool-size=0 --import tsx electron/core/bench/ring-bench.ts' +
  (SCALE === '20m' ? ' 20000000' : '');

const round = (v: number, digits = 1): number => Math.round(v * 10 ** digits) / 10 ** digits;
const median = (values: number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function feedRun(made: ArrayBuffer[], spoolDir: string, limited = true) {
  const svc = new CaptureService({ native: new Error('benchmark: no native'), version: 'bench', spoolDir });
  svc.startFeed(limited ? { limit: { records: LIMIT } } : {});
  let maxBytes = 0;
  let maxSegments = 0;
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  const t0 = performance.now();
  for (const batch of made) {
    svc.feed(batch, BATCH);
    if (svc.store.bytesAllocated > maxBytes) maxBytes = svc.store.bytesAllocated;
    // A native session delivers each batch in a turn of its own: the spool's writes (in the thread pool) are
    // handed their next bytes, and evicted segments deleted, between batches, as in a live capture.
    await new Promise((resolve) => setImmediate(resolve));
    // A disk that cannot keep up would fill the write queue (and drop, as a live capture's does): waiting for
    // it keeps every record and counts the disk's time in the figure.
    const spool = svc.spool!;
    if (spool.backlog > SPOOL_BACKLOG_MAX / 2) await spool.drained();
  }
  const ms = performance.now() - t0;
  delay.disable();
  // The spool's segments (the next one's file, opened ahead of its cut, is not one yet).
  maxSegments = svc.spool!.paths.length;
  if (svc.counts().droppedRing !== 0) throw new Error('the spool dropped records');
  const result = {
    ms,
    records: svc.store.length,
    live: svc.store.live,
    evicted: svc.store.firstIndex,
    maxBytes,
    segments: maxSegments,
    /** The longest turn of the event loop while feeding (ms). */
    loopMaxMs: delay.max / 1e6,
  };
  svc.close();
  return result;
}

/** The view's cost per eviction, filtered + sorted: trim (View.evict) against a rebuild from firstIndex. */
function viewRun(made: ArrayBuffer[]) {
  const store = new RecordStore();
  const ingestor = new Ingestor(store, (i) => IFNAMES[i] ?? `if${i}`);
  const agg = new Aggregator(ingestor);
  const env = { addresses: ingestor.addresses, interfaces: ingestor.interfaces };
  const filter = 'icmp.type == echo-reply || icmp.type == 129';
  const view = new View(store, env, { resortIntervalMs: 0 });
  view.setFilter(filter);
  view.setSort('rtt', true);
  const trims: number[] = [];
  const rebuilds: number[] = [];
  let matches = 0;
  for (const batch of made) {
    const from = store.length;
    ingestor.ingest(batch);
    agg.update(store, from, store.length);
    const target = evictionTarget(store, { records: LIMIT });
    if (target > store.firstIndex) {
      store.evictTo(target);
      const t0 = performance.now();
      view.evict();
      trims.push(performance.now() - t0);
      if (rebuilds.length < 5) {
        const fresh = new View(store, env);
        const t1 = performance.now();
        fresh.update();
        fresh.setFilter(filter);
        fresh.setSort('rtt', true);
        rebuilds.push(performance.now() - t1);
      }
      matches = view.length;
    }
    view.update();
  }
  return {
    trimMs: median(trims),
    trimMax: Math.max(...trims),
    rebuildMs: median(rebuilds),
    evictions: trims.length,
    matches,
  };
}

async function main(): Promise<void> {
  const made = [...realisticCapture(N, BATCH)];
  // Warm the JIT on a small run first.
  const warmDir = fs.mkdtempSync(path.join(os.tmpdir(), 'icmpcap-ring-bench-'));
  try {
    await feedRun(made.slice(0, 100), warmDir);
  } finally {
    fs.rmSync(warmDir, { recursive: true, force: true });
  }
  // Three runs, the median reported (the host's speed varies by a third from one run to the next).
  const runs: Awaited<ReturnType<typeof feedRun>>[] = [];
  for (let k = 0; k < RUNS; k++) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'icmpcap-ring-bench-'));
    try {
      runs.push(await feedRun(made, dir));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  const rates = runs.map((r) => (r.records / r.ms) * 1000);
  const run = runs[rates.indexOf(median(rates))]!;
  const rate = median(rates);
  // The same path with no limit, same input, same run: what the ring costs (or saves).
  const dir2 = fs.mkdtempSync(path.join(os.tmpdir(), 'icmpcap-ring-bench-'));
  let unlimited: Awaited<ReturnType<typeof feedRun>>;
  try {
    unlimited = await feedRun(made, dir2, false);
  } finally {
    fs.rmSync(dir2, { recursive: true, force: true });
  }
  const unlimitedRate = (unlimited.records / unlimited.ms) * 1000;
  console.log(
    `same path with no limit: ${round(unlimited.ms)} ms (${round(unlimitedRate / 1e6, 3)} M/s), store peak ${round(unlimited.maxBytes / 2 ** 20)} MiB`,
  );
  console.log(
    `ingest with a ring limit of ${LIMIT}: ${run.records} records in ${round(run.ms)} ms (${round(rate / 1e6, 3)} M/s,` +
      ` the median of ${rates.map((r) => round(r / 1e6, 3)).join(', ')});` +
      ` ${run.evicted} evicted, ${run.live} live, store peak ${round(run.maxBytes / 2 ** 20)} MiB, ${run.segments} segments at the end;` +
      ` event loop max ${round(run.loopMaxMs)} ms (${round(unlimited.loopMaxMs)} with no limit)`,
  );
  const v = viewRun(made);
  console.log(
    `view per eviction (filter echo replies, sort rtt desc, ${v.matches} matches live): trim median ${round(v.trimMs, 2)} ms` +
      ` (max ${round(v.trimMax, 2)}) over ${v.evictions} evictions; rebuild (setFilter + setSort from firstIndex) median ${round(v.rebuildMs, 2)} ms`,
  );
  const key =
    SCALE === '20m'
      ? 'service.ingest_with_ring_limit_records_per_s_20m'
      : 'service.ingest_with_ring_limit_records_per_s';
  const metrics = {
    [key]: {
      value: Math.round(rate),
      unit: 'records/s',
      command: COMMAND,
      note:
        `median of ${RUNS} runs (${rates.map((r) => round(r / 1e6, 3)).join(', ')} M/s) of` +
        ` ${run.records} synthetic records (realisticCapture) in batches of ${BATCH} through CaptureService.feed, a` +
        ` turn of the event loop each (as a session delivers them), with` +
        ` limit { records: ${LIMIT} }: spool segments written and deleted, Ingestor, Aggregator, eviction in units of` +
        ` 262144, identity View; event loop max ${round(run.loopMaxMs)} ms; ${run.evicted} evicted, ${run.live} live at the end, index peak` +
        ` ${round(run.maxBytes / 2 ** 20)} MiB, ${run.segments} segment files at the end (includes the spool writes,` +
        ` which service.ingest_records_per_s does not). Same run, same path, no limit: ${round(unlimitedRate / 1e6, 3)} M/s, event loop max ${round(unlimited.loopMaxMs)} ms,` +
        ` index ${round(unlimited.maxBytes / 2 ** 20)} MiB. View cost per eviction, filtered + sorted by rtt` +
        ` (${v.matches} matches): trim ${round(v.trimMs, 2)} ms median, rebuild ${round(v.rebuildMs, 2)} ms median;` +
        ` ${os.cpus().length} x ${os.cpus()[0]?.model.trim() ?? 'cpu'}, Node ${process.version}, load average` +
        ` ${os.loadavg()[0]!.toFixed(1)} at the end of the run`,
    },
  };
  if (SCALE === null) {
    console.log('(a custom record count: bench/results.json left alone)');
    return;
  }
  mergeBenchResults(metrics);
}

await main();
