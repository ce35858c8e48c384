/**
 * The warm-up runs a synthetic capture through a scratch service before the first capture, and leaves nothing:
 * the real service's records, events and spool are untouched, and its temporary spool is gone. It stops as
 * soon as the real service starts working.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { realisticCapture } from '../bench/synth.js';
import { CaptureService } from '../service.js';
import { countLoopTurns } from '../../../test/support/loop-turns.js';
import { warmUp } from './warm-up.js';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-warm-up-test-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('warm-up before the first capture', () => {
  it('runs its records through a scratch service in short turns and leaves the real service as it was', async () => {
    const spoolDir = join(tmp, 'real');
    const svc = new CaptureService({ native: new Error('no native here'), version: 'test', spoolDir });
    const events: { event: string; data: unknown }[] = [];
    svc.on((event, data) => events.push({ event, data }));
    const scratch = mkdtempSync(join(tmp, 'scratch-'));
    try {
      const turns = countLoopTurns();
      const warmed = await warmUp(svc, { records: 20_000, tmpDir: scratch });
      turns.stop();
      // 79 batches of 256 records: one a turn at first, then four a turn.
      expect(turns.turns).toBeGreaterThanOrEqual(19);
      expect(warmed).toBe(20_000);
      expect(svc.store.length).toBe(0);
      expect(svc.captureState.state).toBe('idle');
      // Its own periodic pushes say it holds nothing; no state or job event came.
      expect(events.filter((e) => e.event === 'state' || e.event === 'job')).toEqual([]);
      for (const e of events.filter((e) => e.event === 'counts'))
        expect((e.data as { total: number }).total).toBe(0);
      // Its temporary spool is gone, and the real spool directory was never made.
      expect(readdirSync(scratch)).toEqual([]);
      expect(() => readdirSync(spoolDir)).toThrow();
      // The real service captures as ever afterwards.
      svc.startFeed();
      for (const batch of realisticCapture(4096, 4096)) svc.feed(batch);
      expect(svc.store.length).toBe(4096);
    } finally {
      svc.close();
    }
  });

  it('stops as soon as the real service starts to capture', async () => {
    const svc = new CaptureService({
      native: new Error('no native here'),
      version: 'test',
      spoolDir: join(tmp, 'busy'),
    });
    try {
      const warming = warmUp(svc, { records: 200_000, tmpDir: tmp });
      // A few batches in, the user starts a capture.
      for (let k = 0; k < 5; k++) await new Promise<void>((resolve) => setImmediate(resolve));
      svc.startFeed();
      const warmed = await warming;
      expect(warmed).toBeGreaterThan(0);
      expect(warmed).toBeLessThan(20_000);
      expect(svc.store.length).toBe(0);
      // Not started at all when the service is already busy.
      expect(await warmUp(svc, { records: 10_000, tmpDir: tmp })).toBe(0);
    } finally {
      svc.close();
    }
  });
});
