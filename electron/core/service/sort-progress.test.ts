/**
 * A long sort tells every window how far it has got (`sort` events) and can be stopped (view.cancelSort):
 * the view keeps the order it had, and the stopped request ends with the 'cancelled' code, not an error.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SortProgress } from '../../common/contract.js';
import { randomCapture } from '../bench/synth.js';
import { CaptureService } from '../service.js';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-sort-progress-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function loaded(records: number): CaptureService {
  const svc = new CaptureService({ native: new Error('no native here'), version: 'test', spoolDir: tmp });
  svc.startFeed();
  for (const batch of randomCapture(records, 7)) svc.feed(batch);
  svc.tick();
  return svc;
}

const noOf = (svc: CaptureService, n: number) => svc.rows(0, n).rows.map((r) => r.no);

describe('sort progress and cancel', () => {
  it('reports progress to the end, and a stopped sort leaves the order as it was', async () => {
    const svc = loaded(600_000);
    try {
      const events: SortProgress[] = [];
      svc.on((event, data) => {
        if (event === 'sort') events.push(data as SortProgress);
      });
      await svc.handle('view.setSort', { column: 'seq', descending: true }, 'ipc');
      expect(events[0]).toEqual({ column: 'seq', descending: true, fraction: 0 });
      expect(events.at(-1)).toEqual({ column: 'seq', descending: true, fraction: 1 });
      const fractions = events.map((e) => e.fraction);
      expect(fractions).toEqual([...fractions].sort((a, b) => a - b));
      const bySeq = noOf(svc, 50);

      events.length = 0;
      const sorting = svc.handle('view.setSort', { column: 'src' }, 'ipc');
      // Stopped after its first slices (the service sorts in 10 ms slices; sorting 600 k records by address
      // takes many).
      await new Promise((r) => setImmediate(r));
      expect(events.at(-1)?.fraction).toBeLessThan(1);
      expect(await svc.handle('view.cancelSort', {}, 'ipc')).toEqual({ cancelled: true });
      await expect(sorting).rejects.toMatchObject({ code: 'cancelled' });
      expect(events.at(-1)).toEqual({ column: 'src', descending: false, fraction: 1 });
      expect(svc.counts().sort).toEqual({ column: 'seq', descending: true });
      expect(noOf(svc, 50)).toEqual(bySeq);
      // Nothing under way: nothing to stop.
      expect(await svc.handle('view.cancelSort', {}, 'ipc')).toEqual({ cancelled: false });
    } finally {
      svc.close();
    }
  });
});
