/**
 * The capture service with a ring-buffer limit: batches fed through the same path a native session's take
 * (CaptureService.feed), checked for bounded memory, spool segments on disk, stable record numbers, details
 * of an evicted record, export of 'all', a paused view; then a real loopback capture with a limit that a
 * burst pushes past it: the newest records (our pings) are still there.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Aggregates, CaptureState, Job, Row } from '../common/contract.js';
import { buildBatch, type RecordSpec } from '../../test/support/records.js';
import { readCaptureFileAll } from './files/index.js';
import { ipv4Icmp } from './files/testing/packets.js';
import { OFF, RECORD_HEADER_SIZE, alignRecord } from './record.js';
import { loadNative } from './native.js';
import { CaptureService } from './service.js';
import { BYTES_PER_RECORD, CHUNK_SIZE } from './store.js';

const LIMIT = 131072; // two chunks: units of one chunk
const T0 = 1_700_000_000_000_000_000n;

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-ring-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** buildBatch, with real IPv4 + ICMP echo bytes (36 bytes) as each record's captured data. */
function realBatch(specs: RecordSpec[]): ArrayBuffer {
  for (const s of specs) s.payload = 36;
  const batch = buildBatch(specs);
  const bytes = new Uint8Array(batch);
  let o = 0;
  for (const s of specs) {
    const ip = (t: string): number[] => t.split('.').map(Number);
    bytes.set(
      ipv4Icmp({ type: s.type, id: s.id, seq: s.seq, src: ip(s.src), dst: ip(s.dst), payload: 8 }),
      o + OFF.data,
    );
    o += alignRecord(RECORD_HEADER_SIZE + 36);
  }
  return batch;
}

/** Records `from..from+n-1`: echo requests, id = 7, seq = index & 0xffff, 1 us apart, 28 + 8 bytes. */
function batchOf(from: number, n: number, t0 = T0): ArrayBuffer {
  const specs: RecordSpec[] = [];
  for (let k = from; k < from + n; k++)
    specs.push({
      tsNs: t0 + BigInt(k) * 1000n,
      src: `10.0.${(k >>> 8) & 255}.${k & 255}`,
      dst: '192.0.2.1',
      type: 8,
      id: 7,
      seq: k & 0xffff,
      ifindex: 1,
    });
  return realBatch(specs);
}

function waitJob(svc: CaptureService, id: number): Promise<Job> {
  return new Promise((resolve) => {
    const off = svc.on((event, data) => {
      if (event === 'job' && (data as Job).id === id && (data as Job).state !== 'running') {
        off();
        resolve(data as Job);
      }
    });
  });
}

/** The spool's segment files (not the next one's, opened ahead of its cut and empty until then). */
function segments(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.pcapng') && statSync(join(dir, f)).size > 0)
    .sort();
}

describe('capture service with a ring-buffer limit (fed batches)', () => {
  it('refuses limits below the minimum', async () => {
    const svc = new CaptureService({ native: new Error('no native here'), version: 'test' });
    try {
      for (const limit of [{ records: 1000 }, { seconds: 5 }, { records: 1.5e5 + 0.5 }, { bytes: 1 }]) {
        await expect(svc.handle('capture.start', { limit }, 'ipc')).rejects.toMatchObject({
          code: 'bad-request',
        });
      }
    } finally {
      svc.close();
    }
  });

  it('keeps the newest records, bounded in memory and on disk, with stable numbers', async () => {
    const spoolDir = join(tmp, 'spool');
    const svc = new CaptureService({ native: new Error('no native here'), version: 'test', spoolDir });
    const states: CaptureState[] = [];
    svc.on((event, data) => {
      if (event === 'state') states.push(data as CaptureState);
    });
    try {
      const state = svc.startFeed({ limit: { records: LIMIT } });
      expect(state).toMatchObject({ state: 'running', limit: { records: LIMIT }, evicted: 0 });
      const TOTAL = 5 * CHUNK_SIZE + 1234;
      let maxBytes = 0;
      let maxSegments = 0;
      for (let at = 0; at < TOTAL; at += 4096) {
        svc.feed(batchOf(at, Math.min(4096, TOTAL - at)));
        maxBytes = Math.max(maxBytes, svc.store.bytesAllocated);
        // The spool's segments (dropped ones are deleted in the thread pool: counted on disk below).
        maxSegments = Math.max(maxSegments, svc.spool!.paths.length);
        expect(svc.store.live).toBeLessThanOrEqual(LIMIT);
      }
      const store = svc.store;
      expect(store.length).toBe(TOTAL);
      // The limit passed at 131073 records; units of one chunk: 4 chunks dropped by the end.
      expect(store.firstIndex).toBe(4 * CHUNK_SIZE);
      expect(store.live).toBe(CHUNK_SIZE + 1234);
      // Memory: at most the limit's chunks and the one being filled.
      expect(maxBytes).toBeLessThanOrEqual(3 * CHUNK_SIZE * BYTES_PER_RECORD);
      expect(store.bytesAllocated).toBe(2 * CHUNK_SIZE * BYTES_PER_RECORD);
      // Disk: one segment per unit; dropped units' segments are deleted.
      expect(maxSegments).toBeLessThanOrEqual(3);
      await svc.spool!.removals();
      await svc.spool!.drained();
      const files = segments(spoolDir);
      expect(files.map((f) => f.slice(-12))).toEqual(['-0004.pcapng', '-0005.pcapng']);
      // Every segment is a complete pcapng once the spool's writes (in the thread pool) have landed.
      await svc.spool!.drained();
      let onDisk = 0;
      for (const f of files) {
        const { records, summary } = await readCaptureFileAll(join(spoolDir, f));
        expect(summary.error).toBeUndefined();
        onDisk += records.length;
      }
      expect(onDisk).toBe(store.live);

      const counts = svc.counts();
      expect(counts).toMatchObject({ total: store.live, evicted: 4 * CHUNK_SIZE, view: store.live });
      expect(svc.captureState).toMatchObject({ limit: { records: LIMIT }, evicted: 4 * CHUNK_SIZE });
      expect(states.map((s) => s.evicted)).toEqual([
        0,
        CHUNK_SIZE,
        2 * CHUNK_SIZE,
        3 * CHUNK_SIZE,
        4 * CHUNK_SIZE,
      ]);

      // Rows: the first live record keeps its number.
      const { rows, view } = svc.rows(0, 3);
      expect(view).toBe(store.live);
      const first = 4 * CHUNK_SIZE;
      expect(rows.map((r) => r.no)).toEqual([first + 1, first + 2, first + 3]);
      expect(rows[0]).toMatchObject({
        src: `10.0.${(first >>> 8) & 255}.${first & 255}`,
        seq: first & 0xffff,
      });
      expect(rows[0]!.tsNs).toBe((T0 + BigInt(first) * 1000n).toString());
      expect(svc.rows(store.live - 1, 5).rows.map((r) => r.no)).toEqual([TOTAL]);

      // Details: a live record from its segment; an evicted one is not found, saying why.
      const d = (await svc.handle('record.details', { no: TOTAL - 5 }, 'ipc')) as {
        row: Row;
        bytesHex: string;
      };
      expect(d.row.no).toBe(TOTAL - 5);
      const bytes = Buffer.from(d.bytesHex, 'hex');
      expect(bytes.readUInt16BE(20 + 6)).toBe((TOTAL - 6) & 0xffff);
      await expect(svc.handle('record.details', { no: 1 }, 'ipc')).rejects.toMatchObject({
        code: 'not-found',
        message: expect.stringMatching(/fell out of the ring buffer/) as unknown,
      });
      await expect(svc.handle('record.details', { no: first }, 'ipc')).rejects.toMatchObject({
        code: 'not-found',
      });
      expect(await svc.handle('view.positionOf', { no: 5 }, 'ipc')).toEqual({ position: null });
      expect(await svc.handle('view.positionOf', { no: first + 11 }, 'ipc')).toEqual({ position: 10 });

      // Filter and sort over the live records only.
      await svc.handle('view.setFilter', { filter: 'icmp.seq < 100' }, 'ipc');
      // seq wraps every 65536 records: two runs of 100.
      const runs = [first, first + CHUNK_SIZE].flatMap((base) =>
        Array.from({ length: 100 }, (_, k) => base + k + 1),
      );
      expect(svc.rows(0, 300).rows.map((r) => r.no)).toEqual(runs);
      await svc.handle('view.setSort', { column: 'no', descending: true }, 'ipc');
      expect(svc.rows(0, 1).rows[0]!.no).toBe(first + CHUNK_SIZE + 100);
      await svc.handle('view.setSort', { column: null }, 'ipc');
      await svc.handle('view.setFilter', { filter: '' }, 'ipc');

      // Aggregates stay cumulative: every record ever captured.
      const stats = (await svc.handle('stats.get', {}, 'ipc')) as Aggregates;
      expect(stats.total).toBe(TOTAL);

      // Export 'all': the live records, in order, read back from the segments.
      const out = join(tmp, 'all.pcapng');
      const { id } = (await svc.handle(
        'export.start',
        { format: 'pcapng', scope: 'all', path: out },
        'ipc',
      )) as {
        id: number;
      };
      const job = await waitJob(svc, id);
      expect(job).toMatchObject({ state: 'done', done: store.live, total: store.live });
      const exported = await readCaptureFileAll(out);
      expect(exported.records).toHaveLength(store.live);
      expect(exported.records[0]!.tsNs).toBe(T0 + BigInt(first) * 1000n);
      expect(exported.records.at(-1)!.seq).toBe((TOTAL - 1) & 0xffff);

      // Paused: the table holds still, the ring goes on; nothing breaks, evicted rows leave the table.
      await svc.handle('capture.pause', {}, 'ipc');
      const before = svc.rows(0, 1).rows[0]!.no;
      let fed = TOTAL;
      for (; fed < TOTAL + CHUNK_SIZE; fed += 4096) svc.feed(batchOf(fed, 4096));
      expect(store.firstIndex).toBe(5 * CHUNK_SIZE);
      const paused = svc.rows(0, 2000);
      expect(paused.rows[0]!.no).toBeGreaterThan(before);
      expect(paused.rows[0]!.no).toBe(store.firstIndex + 1);
      expect(paused.view).toBe(1234); // what the table showed that is still live
      // Everything the paused table showed goes: an empty table, not a crash.
      for (; fed < TOTAL + 3 * CHUNK_SIZE; fed += 4096) svc.feed(batchOf(fed, 4096));
      expect(store.firstIndex).toBe(7 * CHUNK_SIZE);
      expect(svc.rows(0, 100)).toEqual({ start: 0, rows: [], view: 0 });
      await svc.handle('capture.resume', {}, 'ipc');
      expect(svc.counts().view).toBe(store.live);
      expect(svc.counts().evicted).toBe(7 * CHUNK_SIZE);
      expect(svc.rows(0, 1).rows[0]!.no).toBe(7 * CHUNK_SIZE + 1);

      // capture.clear: numbers start again at 1, old segments go, the ring still bounds disk and memory.
      await svc.handle('capture.clear', {}, 'ipc');
      await svc.spool!.removals();
      await svc.spool!.drained();
      expect(segments(spoolDir)).toHaveLength(1);
      for (let at = 0; at < 4 * CHUNK_SIZE; at += 4096) svc.feed(batchOf(at, 4096));
      expect(store.firstIndex).toBe(2 * CHUNK_SIZE);
      await svc.spool!.removals();
      await svc.spool!.drained();
      expect(segments(spoolDir).map((f) => f.slice(-12))).toEqual(['-0011.pcapng', '-0012.pcapng']);
      expect(svc.rows(0, 1).rows[0]!.no).toBe(2 * CHUNK_SIZE + 1);
      const again = (await svc.handle('record.details', { no: 3 * CHUNK_SIZE + 5 }, 'ipc')) as { row: Row };
      expect(again.row.seq).toBe(4);
    } finally {
      svc.close();
    }
    expect(segments(spoolDir)).toEqual([]); // a clean close removes every segment
  });

  it('with a seconds limit keeps about the last S seconds of capture time', async () => {
    const spoolDir = join(tmp, 'spool-seconds');
    const svc = new CaptureService({ native: new Error('no native here'), version: 'test', spoolDir });
    try {
      svc.startFeed({ limit: { seconds: 10 } });
      // 10 us apart: 20 s of capture time.
      const N = 2_000_000;
      for (let at = 0; at < N; at += 8192) {
        const specs: RecordSpec[] = [];
        for (let k = at; k < Math.min(N, at + 8192); k++)
          specs.push({
            tsNs: T0 + BigInt(k) * 10_000n,
            src: '10.0.0.1',
            dst: '10.0.0.2',
            type: 8,
            id: 1,
            seq: k & 0xffff,
          });
        svc.feed(realBatch(specs));
        // Batches arrive as separate turns of the event loop, as a native session's do: the spool's writes
        // (in the thread pool) finish meanwhile.
        await new Promise((resolve) => setImmediate(resolve));
      }
      const store = svc.store;
      expect(svc.counts().droppedRing).toBe(0);
      expect(store.firstIndex).toBeGreaterThan(0);
      const span = (store.length - 1 - store.firstIndex) * 10_000;
      expect(span).toBeLessThanOrEqual(10e9);
      expect(span).toBeGreaterThan(7e9);
      // Segments cover about 1/8 of the window each.
      await svc.spool!.removals();
      await svc.spool!.drained();
      const files = segments(spoolDir);
      expect(files.length).toBeGreaterThanOrEqual(6);
      expect(files.length).toBeLessThanOrEqual(10);
    } finally {
      svc.close();
    }
  });
});

describe('a real capture with a limit', () => {
  it('still shows the newest records (loopback pings after a burst that passes the limit)', async () => {
    const ID = 20000 + (process.pid % 10000);
    const svc = new CaptureService({
      native: loadNative(),
      version: 'test',
      spoolDir: join(tmp, 'spool-real'),
    });
    try {
      const state = (await svc.handle(
        'capture.start',
        { source: 'afpacket', interfaces: ['lo'], limit: { records: LIMIT } },
        'ipc',
      )) as CaptureState;
      expect(state).toMatchObject({ state: 'running', limit: { records: LIMIT }, evicted: 0 });
      // A burst of 3 units through the same path (times just before now).
      const t0 = BigInt(Date.now() - 5000) * 1_000_000n;
      for (let at = 0; at < 3 * CHUNK_SIZE; at += 4096) svc.feed(batchOf(at, 4096, t0));
      execFileSync('ping', ['-c', '3', '-i', '0.05', '-W', '2', '-e', String(ID), '127.0.0.1'], {
        stdio: 'ignore',
      });
      const deadline = Date.now() + 10_000;
      let mine: Row[] = [];
      while (Date.now() < deadline) {
        const live = svc.counts().view;
        mine = svc.rows(Math.max(0, live - 2000), 2000).rows.filter((r) => r.id === ID);
        if (mine.length >= 12) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      svc.stop();
      expect(mine).toHaveLength(12);
      expect(svc.store.firstIndex).toBeGreaterThan(0);
      expect(svc.captureState.evicted).toBe(svc.store.firstIndex);
      expect(mine[0]!.no).toBeGreaterThan(3 * CHUNK_SIZE);
      const d = (await svc.handle('record.details', { no: mine[0]!.no }, 'ipc')) as {
        row: Row;
        bytesHex: string;
      };
      expect(d.row).toEqual(mine[0]);
      const bytes = Buffer.from(d.bytesHex, 'hex');
      expect(bytes.readUInt16BE(20 + 4)).toBe(ID);
    } finally {
      svc.close();
    }
  });
});
