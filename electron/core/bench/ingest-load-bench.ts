/**
 * Ingest while the user works: a capture at a paced 500 k records/s goes on while the user sorts the
 * capture's first 10 M records and exports them to pcapng. Does the service keep up, or does the capture lose
 * records because of it?
 *
 * The records come through the real delivery path: the bench build of the addon (native/bench.js
 * benchSession) runs a reader thread that batches records (Batcher, at most 4096 a batch), hands them to
 * JavaScript through the bounded queue (at most MAX_HELD_BATCHES batches waiting: 64) and the
 * ThreadSafeFunction, into CaptureService.onBatch as a live session's are (spool, ingest, statistics, view,
 * and the insights' tap: they are attached as the app and `serve` attach them). The records arrive at
 * 500 k/s into a modelled kernel ring of the size a capture asks the module for on this machine (kernel-buffer.ts:
 * 4 MiB a CPU on 2 CPUs; RING_MIB=1 models the module's own default); the reader drains it only
 * while the queue has room, as RingSource does. A record arriving while that ring is full is dropped and
 * counted (droppedKernel): a drop caused by the service, since the reader itself waits on nothing else. A
 * flood spread over several CPUs has a ring each; one ring is the strictest case.
 *
 * Figures: the drops while the sort and the export run (`service.ingest_drops_while_sort_export`), beside
 * the drops in the same capture before they started, and the event-loop delay meanwhile.
 *
 *   node --max-old-space-size=8192 --initial-old-space-size=512 --v8-pool-size=0 --import tsx electron/core/bench/ingest-load-bench.ts [records]
 *   (default 10 M, which writes bench/results.json; `--quick`: 2 M, for development)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { moduleRingBytes } from '../kernel-buffer.js';
import { mergeBenchResults } from '../../../test/support/bench-results.js';
import type * as Bench from '../../../native/bench.js';
import { type Native, type NativeSession, loadNative } from '../native.js';
import { projectRoot } from '../paths.js';
import { attachInsights } from '../insights/index.js';
import { CaptureService } from '../service.js';
import { warmUp } from '../service/warm-up.js';
import { jobDone } from '../testing/jobs.js';
import { realisticCapture } from './synth.js';

const ARGS = process.argv.slice(2);
const NUMBERS = ARGS.filter((a) => !a.startsWith('--')).map(Number);
const N = ARGS.includes('--quick') ? 2_000_000 : (NUMBERS[0] ?? 10_000_000);
const WRITES = ARGS.length === 0 && !process.env.RING_MIB;
const RATE = 500_000;
const RING_BYTES = process.env.RING_MIB ? Number(process.env.RING_MIB) * 2 ** 20 : moduleRingBytes();
const COMMAND =
  'node --max-old-space-size=8192 --initial-old-space-size=512 --v8-pool-size=0 --import tsx electron/core/bench/ingest-load-bench.ts';
const round = (v: number, digits = 1): number => Math.round(v * 10 ** digits) / 10 ** digits;

const bench = createRequire(import.meta.url)(join(projectRoot(), 'native', 'bench.js')) as typeof Bench;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'icmpcap-ingest-load-'));
  // 64 k records of a busy host with real headers, sent in turn (each with a fresh timestamp).
  const parts = [...realisticCapture(65_536, 4096, { packetBytes: true })];
  const template = new Uint8Array(parts.reduce((a, b) => a + b.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    template.set(new Uint8Array(p), at);
    at += p.byteLength;
  }
  // The capture runs until the sort and the export have ended (it is stopped then), however many it drops.
  const total = 1e12;
  let session: NativeSession | null = null;
  const real = loadNative();
  const native: Native = {
    ...real,
    probe: () => [{ source: 'afpacket', available: true }],
    interfaces: () => [],
    open: () => {
      session = bench.benchSession(total, 0, false, {
        rate: RATE,
        ringBytes: RING_BYTES,
        template: template.buffer,
      });
      return session;
    },
  };
  const svc = new CaptureService({ native, version: 'bench', spoolDir: join(dir, 'spool') });
  svc.on(() => {}); // a UI is attached: counts and aggregates are pushed as to a window
  // Problems, paths, neighbours and alerts (no rules file here), as electron/main and `serve` attach them.
  const insights = attachInsights(svc, { rulesFile: join(dir, 'alerts.conf'), log: () => undefined });
  const drops = (): number => (session ? session.stats().droppedKernel : 0);
  try {
    // As the app and serve do while they wait for the user's first capture (service/warm-up.ts).
    await warmUp(svc);
    // The user starts a capture a while after the app has opened: the chunks it will take are made by then.
    await svc.prepareChunks();
    const t0 = performance.now();
    await svc.handle('capture.start', { source: 'afpacket', interfaces: [], snaplen: 256 }, 'ipc');
    while (svc.store.length < N) await sleep(50);
    const fillS = (performance.now() - t0) / 1000;
    const before = drops();
    const atStart = svc.store.length;
    console.log(
      `${atStart} records captured in ${round(fillS)} s (${round(atStart / fillS / 1e3, 0)} k/s), ` +
        `${before} dropped so far`,
    );
    // The user sorts by RTT and exports the first N records while the capture goes on.
    const h = monitorEventLoopDelay({ resolution: 5 });
    h.enable();
    const w0 = performance.now();
    const file = join(dir, 'export.pcapng');
    const { id } = (await svc.handle(
      'export.start',
      { format: 'pcapng', scope: 'all', path: file },
      'ipc',
    )) as { id: number };
    const exported = jobDone(svc, id);
    const sortT0 = performance.now();
    await svc.handle('view.setSort', { column: 'rtt', descending: true }, 'ipc');
    const sortMs = performance.now() - sortT0;
    const job = await exported;
    const windowMs = performance.now() - w0;
    h.disable();
    const during = drops() - before;
    const duringRecords = svc.store.length - atStart;
    await svc.handle('capture.stop', {}, 'ipc');
    const all = drops();
    console.log(
      `sort by rtt ${round(sortMs)} ms and export (${job.message ?? ''}) in ${round(windowMs)} ms while ` +
        `${duringRecords} records came in (${round(duringRecords / (windowMs / 1000) / 1e3, 0)} k/s)`,
    );
    console.log(
      `drops: ${during} during the sort and export, ${before} before them, ${all} in the whole capture ` +
        `(${svc.store.length} records kept); event-loop delay meanwhile p99 ` +
        `${round(h.percentile(99) / 1e6)} ms, max ${round(h.max / 1e6)} ms`,
    );
    if (!job.message?.startsWith(atStart.toLocaleString('en')))
      throw new Error(`the export wrote other than the ${atStart} records held when it started`);
    if (WRITES) {
      mergeBenchResults({
        'service.ingest_drops_while_sort_export': {
          value: during,
          unit: 'records',
          command: COMMAND,
          note:
            `records lost while a sort by RTT (${round(sortMs)} ms) and a pcapng export of ${atStart} records ` +
            `(${round(windowMs)} ms) ran during a capture at a paced ${RATE / 1e3} k records/s (${duringRecords} ` +
            `taken in meanwhile, ${round((100 * during) / Math.max(1, during + duringRecords), 2)} % of what ` +
            `arrived dropped; background work waits while the capture is behind; the sort's passes and the ` +
            `export's copy run on threads of their own, below the capture's priority) through the real ` +
            `delivery path (bench addon: reader thread, batches of 4096, queue of ${bench.MAX_HELD_BATCHES} batches, ` +
            `ThreadSafeFunction, ` +
            `CaptureService.onBatch with the insights attached, as the app and serve attach them); the reader drains a modelled ${RING_BYTES / 2 ** 20} MiB kernel ring (what a capture asks the module for here: ` +
            `one per CPU) only while the queue has room, ` +
            `and what arrives while the ring is full is dropped. Beside it in the same capture: ${before} dropped ` +
            `in the ${round(fillS)} s before; event-loop delay during the window p99 ${round(h.percentile(99) / 1e6)} ` +
            `ms, max ${round(h.max / 1e6)} ms. Load average at the end ${round(loadavg()[0]!)} (2 cores): with ` +
            `other builds running, the service gets less than its core and drops.`,
        },
      });
    }
  } finally {
    insights.close();
    svc.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
