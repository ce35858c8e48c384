/**
 * `procs.summary` (the Processes tab asks every second) through the service: the rows equal a full recount
 * of the live records after every step of a capture (new records, a ring buffer's evictions, a clear), the
 * counting yields to the event loop (a recount of every record held the service's thread 140-190 ms at 1 M
 * attributed records, seconds at 20 M, at every call), and a call with nothing new counts no record again.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ProcessSummaryRow } from '../../common/contract.js';
import { buildBatch, type RecordSpec } from '../../../test/support/records.js';
import { OFF, REC_F_HAS_PID, alignRecord } from '../record.js';
import { CaptureService } from '../service.js';
import { CHUNK_SIZE } from '../store.js';
import { processSummary } from './attribution.js';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-procs-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Two processes that exist (ours and our parent), named by the records themselves (as the module does). */
const PIDS = [process.pid, process.ppid];

/**
 * Records `from..from+n-1` of a mixed capture: each process pings peers (requests out, replies in, v4 and
 * v6), gets an error now and then; every 7th record names no process (forwarded traffic).
 */
function batchOf(from: number, n: number): ArrayBuffer {
  const specs: RecordSpec[] = [];
  const pids: number[] = [];
  for (let k = from; k < from + n; k++) {
    const v6 = k % 5 === 0;
    const out = k % 2 === 0;
    const peer = v6 ? `2001:db8::${(k % 300).toString(16)}` : `10.1.${(k >> 8) & 7}.${k & 255}`;
    const local = v6 ? '2001:db8::1' : '192.168.1.10';
    const error = k % 97 === 0;
    specs.push({
      tsNs: 1_700_000_000_000_000_000n + BigInt(k) * 1000n,
      family: v6 ? 6 : 4,
      src: out ? local : peer,
      dst: out ? peer : local,
      type: error ? (v6 ? 1 : 3) : out ? (v6 ? 128 : 8) : v6 ? 129 : 0,
      id: 7,
      seq: k & 0xffff,
      dir: k % 7 === 0 ? 2 : out ? 1 : 0,
      payload: v6 ? 48 : 28,
    });
    pids.push(k % 7 === 0 ? 0 : PIDS[(k >> 3) % 2]!);
  }
  const batch = buildBatch(specs);
  const view = new DataView(batch);
  let o = 0;
  for (let k = 0; k < n; k++) {
    const len = view.getUint32(o + OFF.len, true);
    if (pids[k]) {
      view.setUint16(o + OFF.flags, view.getUint16(o + OFF.flags, true) | REC_F_HAS_PID, true);
      view.setUint32(o + OFF.pid, pids[k]!, true);
    }
    o += alignRecord(len);
  }
  return batch;
}

function service(name: string): CaptureService {
  return new CaptureService({
    native: new Error('no native here'),
    version: 'test',
    spoolDir: join(tmp, name),
  });
}

/** Starts a fed capture whose records are attributed, as a live session's are. */
function attributed(svc: CaptureService, limit?: { records: number }): void {
  svc.startFeed(limit ? { limit } : {});
  svc.ingestor.attribution = svc.attribution;
}

const summary = async (svc: CaptureService): Promise<ProcessSummaryRow[]> =>
  (await svc.handle('procs.summary', {}, 'ipc')) as ProcessSummaryRow[];

const recount = (svc: CaptureService): ProcessSummaryRow[] =>
  processSummary(svc.store, svc.ingestor, svc.attribution);

describe('the per-process summary through the service', () => {
  it('equals a full recount of the live records after new records, evictions and a clear', async () => {
    const svc = service('steps');
    try {
      attributed(svc, { records: 2 * CHUNK_SIZE });
      let at = 0;
      const feed = (n: number): void => {
        for (const end = at + n; at < end; at += 4096) svc.feed(batchOf(at, 4096), 4096);
      };
      feed(8192);
      const early = await summary(svc);
      expect(early.map((r) => r.pid).sort()).toEqual([...PIDS].sort());
      expect(early).toEqual(recount(svc));
      for (const n of [4096, 61440, 4096, CHUNK_SIZE, 3 * CHUNK_SIZE]) {
        feed(n);
        expect(await summary(svc)).toEqual(recount(svc));
      }
      // The ring buffer has evicted: the summary is of the live records only.
      expect(svc.store.firstIndex).toBeGreaterThan(0);
      const rows = await summary(svc);
      expect(rows.reduce((n, r) => n + r.sent + r.received, 0)).toBeLessThan(svc.store.live);
      expect(rows[0]!.firstNs).not.toBe(early[0]!.firstNs);
      expect(rows.reduce((n, r) => n + r.errors, 0)).toBeGreaterThan(0);

      await svc.handle('capture.clear', {}, 'ipc');
      expect(await summary(svc)).toEqual([]);
      at = 0;
      feed(4096 * 3);
      expect(await summary(svc)).toEqual(recount(svc));
    } finally {
      svc.close();
    }
  });

  it('yields to the event loop while it counts, and counts nothing again when nothing came', async () => {
    const svc = service('large');
    try {
      attributed(svc);
      for (let at = 0; at < 16 * CHUNK_SIZE; at += 4096) svc.feed(batchOf(at, 4096), 4096);
      let turns = 0;
      let counting = true;
      const spin = (): void => {
        if (!counting) return;
        turns++;
        setImmediate(spin);
      };
      setImmediate(spin);
      const rows = await summary(svc);
      counting = false;
      expect(rows).toEqual(recount(svc));
      // 1 M records: the event loop turned while they were counted (none did on a recount in one call).
      expect(turns).toBeGreaterThan(0);

      // Two clients asking at once get the same rows.
      const [a, b] = await Promise.all([summary(svc), summary(svc)]);
      expect(a).toEqual(rows);
      expect(b).toEqual(rows);

      const reads = vi.spyOn(svc.attribution.column, 'get');
      expect(await summary(svc)).toEqual(rows);
      expect(reads).not.toHaveBeenCalled();
      // New records: only they are counted.
      svc.feed(batchOf(16 * CHUNK_SIZE, 4096), 4096);
      expect(await summary(svc)).toEqual(recount(svc));
      expect(reads.mock.calls.length).toBeLessThanOrEqual(4096);
    } finally {
      svc.close();
    }
  });
});
