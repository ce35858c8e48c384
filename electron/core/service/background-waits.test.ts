/**
 * While the capture falls behind, background work (a sort, filter or merge of the view, an export) gives way
 * to it. At 500 k records/s, a sort and an export that still took 1 ms every turn while batches waited took
 * enough of the thread that the capture lost a quarter of its records (ingest-load bench). The service's
 * budget says SLICE_WAIT while two batches or more wait, and lets background work have a short step once it
 * has waited BACKGROUND_WAIT_MS (an export still ends under a capture that never catches up); while the session
 * drops records with no batch waiting, a short step every 10 ms. The sliced runners make no step while told to wait.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as Bench from '../../../native/bench.js';
import { buildBatch } from '../../../test/support/records.js';
import { realisticCapture } from '../bench/synth.js';
import { writeExportFile } from '../files/export.js';
import { SLICE_WAIT, runSliced } from '../radix-sort.js';
import { type Native, loadNative } from '../native.js';
import { projectRoot } from '../paths.js';
import { CaptureService } from '../service.js';

const bench = createRequire(import.meta.url)(join(projectRoot(), 'native', 'bench.js')) as typeof Bench;

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-background-waits-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('background work waits while the capture is behind', () => {
  it("the service's budget: normal when caught up, wait while batches wait, a short step after waiting", async () => {
    const svc = new CaptureService({ native: new Error('no native here'), version: 'test', spoolDir: tmp });
    try {
      svc.startFeed();
      expect(svc.backgroundSliceMs(10)).toBe(10);
      // Delivered in one turn: none is taken in before the loop turns, so they all wait.
      for (const batch of realisticCapture(5 * 4096, 4096)) svc.deliver(batch);
      expect(svc.heldBatches).toBeGreaterThanOrEqual(2);
      // The first ask after a while gets a step (nothing ran for BACKGROUND_WAIT_MS), then it waits...
      expect(svc.backgroundSliceMs(10)).toBe(1);
      expect(svc.backgroundSliceMs(10)).toBe(SLICE_WAIT);
      expect(svc.backgroundSliceMs(10)).toBe(SLICE_WAIT);
      // ...until it has waited BACKGROUND_WAIT_MS (100 ms), if the capture is still behind then. A busy wait:
      // a timer would let the batches be taken in.
      const t0 = performance.now();
      while (performance.now() - t0 < 120);
      expect(svc.backgroundSliceMs(10)).toBe(1);
      expect(svc.backgroundSliceMs(10)).toBe(SLICE_WAIT);
      while (svc.heldBatches > 0) await turn();
      expect(svc.backgroundSliceMs(10)).toBe(10);
    } finally {
      svc.close();
    }
  });

  it('gives background work short steps while the session drops records, even with no batch waiting', async () => {
    // The reader cannot hand batches over (the event loop is busy here; in life, the reader itself gets no CPU
    // while an export's writes run): none waits in the service, but the kernel ring overflows.
    const template = buildBatch(
      Array.from({ length: 256 }, (_, k) => ({
        tsNs: 1_700_000_000_000_000_000n + BigInt(k),
        src: '192.168.1.10',
        dst: '10.9.0.1',
        type: 8,
        id: 1,
        seq: k,
        dir: 1,
      })),
    );
    const native: Native = {
      ...loadNative(),
      probe: () => [{ source: 'afpacket', available: true }],
      interfaces: () => [],
      open: () => bench.benchSession(1e12, 0, false, { rate: 2_000_000, ringBytes: 4096, template }),
    };
    const svc = new CaptureService({ native, version: 'test', spoolDir: join(tmp, 'dropping') });
    try {
      await svc.handle('capture.start', { source: 'afpacket', interfaces: [], snaplen: 256 }, 'ipc');
      const t0 = performance.now();
      while (performance.now() - t0 < 300); // no turn: no batch reaches the service, the ring overflows
      expect(svc.heldBatches).toBeLessThan(2);
      // A short step every 10 ms (not none: a capture that drops a little all along would starve an export).
      expect(svc.backgroundSliceMs(10)).toBe(1);
      expect(svc.backgroundSliceMs(10)).toBe(SLICE_WAIT);
      const t1 = performance.now();
      while (performance.now() - t1 < 15);
      expect(svc.backgroundSliceMs(10)).toBe(1);
      expect(svc.backgroundSliceMs(10)).toBe(SLICE_WAIT);
      await svc.handle('capture.stop', {}, 'ipc');
      while (svc.captureState.state !== 'stopped') await sleep(10);
      expect(svc.counts().droppedKernel).toBeGreaterThan(0);
      // No session: nothing to be behind.
      expect(svc.backgroundSliceMs(10)).toBe(10);
    } finally {
      svc.close();
    }
  });

  it('runSliced makes no step while told to wait, then goes on where it was', async () => {
    let waiting = true;
    const ran: number[] = [];
    function* steps(): Generator<number, string, void> {
      for (let k = 0; k < 6; k++) {
        ran.push(k);
        yield k / 6;
      }
      return 'done';
    }
    const result = runSliced(steps(), { sliceMs: () => (waiting ? SLICE_WAIT : 0) });
    for (let k = 0; k < 20; k++) await turn();
    expect(ran).toEqual([]);
    waiting = false;
    // One step a turn (sliceMs 0) once it may go on; then told to wait again after two.
    await turn();
    await turn();
    waiting = true;
    const before = ran.length;
    expect(before).toBeGreaterThan(0);
    for (let k = 0; k < 20; k++) await turn();
    expect(ran.length).toBeLessThanOrEqual(before + 1);
    waiting = false;
    expect(await result).toBe('done');
    expect(ran).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('an export writes nothing while told to wait, and ends once it may go on', async () => {
    let waiting = false;
    let written = 0;
    const path = join(tmp, 'waits.bin');
    const done = writeExportFile(
      { path, sliceMs: () => (waiting ? SLICE_WAIT : 0) },
      1 << 16,
      async (sink, tick) => {
        for (let k = 0; k < 50; k++) {
          await sink.reserve(1000);
          sink.buf.fill(k & 255, sink.pos, sink.pos + 1000);
          sink.pos += 1000;
          written++;
          await tick(written);
          if (k === 4) waiting = true;
        }
        return written;
      },
    );
    await sleep(50);
    // Told to wait after the fifth row: the tick after the sixth yields and keeps yielding, nothing more is
    // written while it waits.
    expect(written).toBe(6);
    waiting = false;
    const result = await done;
    expect(result.records).toBe(50);
    expect(statSync(path).size).toBe(50_000);
  });
});
