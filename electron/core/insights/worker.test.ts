/**
 * The insights' engines run on a worker thread, off the thread that takes the capture in: their answers are
 * those of the same engines fed the same records on this thread, a request is answered with every record taken
 * in before it, a worker that dies is replaced (the capture goes on), and a live capture far ahead of the worker
 * goes on without it, saying so, rather than pile records up in memory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { NeighboursSnapshot, PathInfo, ProblemInfo } from '../../common/insights.js';
import { PathBuilder } from '../answers/traceroute.js';
import { realisticCapture } from '../bench/synth.js';
import { forEachRecord } from '../record.js';
import { CaptureService } from '../service.js';
import { InsightEngines } from './engines.js';
import { type Insights, attachInsights } from './index.js';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-insights-worker-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

let serial = 0;
function setUp(extra: { maxQueuedBytes?: number } = {}): {
  svc: CaptureService;
  insights: Insights;
  logs: string[];
} {
  const svc = new CaptureService({
    native: new Error('no native here'),
    version: 'test',
    spoolDir: join(tmp, `spool-${++serial}`),
  });
  const logs: string[] = [];
  const insights = attachInsights(svc, {
    rulesFile: join(tmp, `alerts-${serial}.conf`),
    log: (line) => logs.push(line),
    ...extra,
  });
  svc.startFeed();
  return { svc, insights, logs };
}

interface Answers {
  problems: ProblemInfo[];
  paths: PathInfo[];
  neighbours: NeighboursSnapshot;
}

async function answers(svc: CaptureService): Promise<Answers> {
  return {
    problems: (await svc.handle('problems.list', {}, 'ipc')) as ProblemInfo[],
    paths: (await svc.handle('paths.list', {}, 'ipc')) as PathInfo[],
    neighbours: (await svc.handle('neighbours.get', {}, 'ipc')) as NeighboursSnapshot,
  };
}

/** What the problems list says without what the route checks (asynchronous, of this host) add. */
const problemKeys = (list: ProblemInfo[]): string[] =>
  list
    .map((p) => `${p.key} ${p.flowText} ${p.count} ${p.firstNs} ${p.lastNs} ${p.evidence.join(',')}`)
    .sort();

describe('the insights worker', () => {
  it('answers as the engines on this thread do, with every record taken in before the request', async () => {
    const batches = [...realisticCapture(120_000, 4096, { packetBytes: true })];
    // Were the engines on this thread, this spy would count their echo records.
    const onThisThread = vi.spyOn(PathBuilder.prototype, 'echoAt');
    const { svc, insights } = setUp();
    try {
      for (const batch of batches) svc.feed(batch);
      // Asked at once: the worker answers after the records sent before the request.
      const got = await answers(svc);
      expect(svc.store.length).toBe(120_000);
      // (counted, not printed: a failure would print every call's batch)
      expect(onThisThread.mock.calls.length).toBe(0);

      const direct = new InsightEngines({ learnSeconds: 30 });
      let no = 1;
      for (const batch of batches) {
        direct.onBatch(batch, no, (i) => `if${i}`, 0, batch.byteLength);
        no += forEachRecord(batch, () => undefined);
      }
      expect(onThisThread.mock.calls.length).toBeGreaterThan(0); // the spy sees engines on this thread
      expect(got.paths).toEqual(direct.pathList());
      expect(got.neighbours).toEqual(direct.neighbours());
      expect(problemKeys(got.problems)).toEqual(problemKeys(direct.problemList()));
      expect(got.problems.length).toBeGreaterThan(0);
      expect(got.neighbours.hosts.length).toBeGreaterThan(0);
    } finally {
      insights.close();
      svc.close();
    }
  }, 60_000);

  it('is replaced when it dies, and the capture goes on', async () => {
    const { svc, insights, logs } = setUp();
    try {
      const [first, second] = [...realisticCapture(8192, 4096, { packetBytes: true })];
      svc.feed(first!);
      expect((await answers(svc)).neighbours.hosts.length).toBeGreaterThan(0);
      await (insights as unknown as { worker: Worker }).worker.terminate();
      await vi.waitFor(() => expect(logs.join('\n')).toMatch(/worker stopped \(exit code 1\)/));
      svc.feed(second!);
      expect(svc.store.length).toBe(8192);
      // A new worker, its engines started over: it has the records that came after it.
      const after = await answers(svc);
      expect(after.neighbours.hosts.length).toBeGreaterThan(0);
    } finally {
      insights.close();
      svc.close();
    }
  }, 30_000);

  it('stays off, saying so, after failing three times in a row', async () => {
    const { svc, insights, logs } = setUp();
    try {
      for (let k = 0; k < 3; k++) {
        const worker = (insights as unknown as { worker: Worker }).worker;
        await worker.terminate();
        if (k === 2) break;
        await vi.waitFor(() => expect((insights as unknown as { worker: Worker }).worker).not.toBe(worker));
      }
      await vi.waitFor(() => expect(logs.join('\n')).toMatch(/failed 3 times in a row; they stay off/));
      await expect(svc.handle('paths.list', {}, 'ipc')).rejects.toThrow(/unavailable.*restart icmpcap/);
      // The capture is not theirs: it goes on.
      for (const batch of realisticCapture(8192, 4096, { packetBytes: true })) svc.feed(batch);
      expect(svc.store.length).toBe(8192);
    } finally {
      insights.close();
      svc.close();
    }
  }, 30_000);

  it('lets a live capture far ahead of it go on without it, and says how many records it missed', async () => {
    // A bound of 64 KiB: records taken in within one turn (feed) are far more than that.
    const { svc, insights, logs } = setUp({ maxQueuedBytes: 64 << 10 });
    try {
      for (const batch of realisticCapture(100_000, 4096, { packetBytes: true })) svc.feed(batch);
      expect(svc.store.length).toBe(100_000);
      await insights.flush();
      const said = logs.find((l) => /records were not analysed/.test(l));
      expect(said).toBeDefined();
      const missed = Number(/([\d,]+) records were not analysed/.exec(said!)![1]!.replaceAll(',', ''));
      expect(missed).toBeGreaterThan(50_000);
      expect(missed).toBeLessThan(100_000);
    } finally {
      insights.close();
      svc.close();
    }
  }, 30_000);
});
