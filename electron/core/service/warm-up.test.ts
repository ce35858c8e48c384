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
import { ChunkSupply } from '../chunk-supply.js';
import { CHUNK_SIZE } from '../store.js';
import { projectRoot } from '../paths.js';
import { runNodeChild } from '../testing/node-child.js';
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

  it('leaves the chunks of the first capture made: its first chunks come from the supply', async () => {
    const svc = new CaptureService({
      native: new Error('no native here'),
      version: 'test',
      spoolDir: join(tmp, 'chunks'),
    });
    try {
      await warmUp(svc, { records: 20_000, tmpDir: tmp });
      const supply = svc.store.supply as ChunkSupply;
      expect(supply).toBeInstanceOf(ChunkSupply);
      // The user takes a moment to start the capture; the worker makes the chunks meanwhile (poll only takes
      // in what arrived: it starts nothing).
      for (let k = 0; k < 300 && supply.bytesHeld === 0; k++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        supply.poll();
      }
      expect(supply.running).toBe(true);
      const before = { ...supply.counts };
      svc.startFeed();
      for (const batch of realisticCapture(CHUNK_SIZE + 1, 4096)) svc.feed(batch);
      // Both chunks of the capture were made ahead (before, the first was made by the store and the second
      // found the worker only starting).
      expect(supply.counts.ahead - before.ahead).toBe(2);
      expect(supply.counts.none - before.none).toBe(0);
    } finally {
      svc.close();
    }
  });

  it('keeps the code it compiled when the capture transfers its first buffer', async () => {
    const child = join(projectRoot(), 'electron', 'core', 'testing', 'warm-up-child.ts');
    const run = await runNodeChild(['--allow-natives-syntax', '--import', 'tsx', child]);
    // Before: "optimised before true after false" (V8 drops every function compiled on the promise that no
    // buffer is ever detached, the first time one is).
    expect(run, run.stderr).toMatchObject({ code: 0, stdout: 'optimised before true after true\n' });
  });
});
