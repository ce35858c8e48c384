/**
 * Loss judged against the clock reaches the UI through the periodic push, not a push of its own every tick.
 * Under a steady flood the tick's idle judging finds a few requests due every 250 ms; it pushed the whole
 * aggregates (every outcome counted, every peer listed, in one turn) each time, on top of the periodic push
 * that is throttled to one every 500 ms. Idle (a dead host), the push it causes is the only news, and comes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as Bench from '../../native/bench.js';
import type { Aggregates } from '../common/contract.js';
import { buildBatch, type RecordSpec } from '../../test/support/records.js';
import { type Native, type NativeSession, loadNative } from './native.js';
import { projectRoot } from './paths.js';
import { CaptureService } from './service.js';

const bench = createRequire(import.meta.url)(join(projectRoot(), 'native', 'bench.js')) as typeof Bench;

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-idle-push-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** `n` echo requests to 16 peers, none answered (timestamps are replaced by the paced session). */
function requests(n: number, t0 = 1_700_000_000_000_000_000n): ArrayBuffer {
  const specs: RecordSpec[] = [];
  for (let k = 0; k < n; k++)
    specs.push({
      tsNs: t0 + BigInt(k) * 1000n,
      src: '192.168.1.10',
      dst: `10.9.0.${k & 15}`,
      type: 8,
      id: 7,
      seq: k & 0xffff,
      dir: 1,
      payload: 28,
    });
  return buildBatch(specs);
}

const lostIn = (a: Aggregates): number => a.peers.reduce((n, p) => n + p.lost, 0);

describe('loss judged against the clock is pushed with the statistics', () => {
  it('a steady flood gets the periodic pushes only (at most one every 500 ms)', async () => {
    const RATE = 20_000;
    const COUNT = 4 * RATE; // 4 s: requests start to time out (2 s) halfway
    const template = requests(4096);
    const native: Native = {
      ...loadNative(),
      probe: () => [{ source: 'afpacket', available: true }],
      interfaces: () => [],
      open: () => bench.benchSession(COUNT, 0, false, { rate: RATE, ringBytes: 1 << 24, template }),
    };
    const svc = new CaptureService({ native, version: 'test', spoolDir: join(tmp, 'flood') });
    const pushes: { at: number; lost: number; total: number }[] = [];
    svc.on((event, data) => {
      if (event === 'aggregates')
        pushes.push({ at: performance.now(), lost: lostIn(data as Aggregates), total: svc.store.length });
    });
    try {
      await svc.handle('capture.start', { source: 'afpacket', interfaces: [], snaplen: 256 }, 'ipc');
      // While the flood goes on (the session stops by itself after COUNT records).
      while (svc.store.length < COUNT - RATE / 2) await new Promise((r) => setTimeout(r, 20));
      const during = pushes.filter((p) => p.total < COUNT - RATE / 2);
      // Requests were judged lost while it ran, so loss was being judged (by records and by the clock)...
      expect(during.some((p) => p.lost > 0)).toBe(true);
      // ...and pushed: about 8 pushes in 4 s, never two within the throttle's 500 ms (timers fire a little
      // early or late: 450). The idle judging's own pushes came every 250 ms tick.
      expect(during.length).toBeGreaterThanOrEqual(4);
      const gaps = during.slice(1).map((p, k) => p.at - during[k]!.at);
      expect(Math.min(...gaps)).toBeGreaterThan(450);
    } finally {
      svc.close();
    }
  });

  it('a dead host: its requests are pushed as lost once their wait is over, with no record since', async () => {
    // A session that delivers three requests and then nothing (as `ping -c 3 deadhost` on a live capture).
    let deliver: ((batch: ArrayBuffer) => void) | null = null;
    const session: NativeSession = {
      start(onBatch) {
        deliver = (batch) => onBatch(batch, { records: 3, bytes: batch.byteLength });
      },
      stop() {},
      close() {},
      hold() {},
      stats: () => ({
        source: 'afpacket',
        captured: 3,
        delivered: 3,
        droppedKernel: 0,
        droppedRing: 0,
        batches: 1,
        wakeups: 1,
      }),
    };
    const native: Native = {
      ...loadNative(),
      probe: () => [{ source: 'afpacket', available: true }],
      interfaces: () => [],
      open: () => session,
    };
    const svc = new CaptureService({ native, version: 'test', spoolDir: join(tmp, 'dead'), tickMs: 50 });
    const pushes: Aggregates[] = [];
    svc.on((event, data) => {
      if (event === 'aggregates') pushes.push(data as Aggregates);
    });
    try {
      await svc.handle('capture.start', { source: 'afpacket', interfaces: [], snaplen: 256 }, 'ipc');
      const now = BigInt(Date.now()) * 1_000_000n;
      deliver!(requests(3, now));
      // Pushed with no loss first (the waits are not over)...
      const t0 = performance.now();
      while (pushes.length === 0 && performance.now() - t0 < 2000)
        await new Promise((r) => setTimeout(r, 20));
      expect(lostIn(pushes[0]!)).toBe(0);
      // ...then, 2 s later by the clock alone, all three lost.
      while (performance.now() - t0 < 4000 && (pushes.length === 0 || lostIn(pushes.at(-1)!) < 3))
        await new Promise((r) => setTimeout(r, 20));
      expect(lostIn(pushes.at(-1)!)).toBe(3);
      expect(svc.store.length).toBe(3);
      expect(svc.captureState.state).toBe('running');
    } finally {
      svc.close();
    }
  });
});
