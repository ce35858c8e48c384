/**
 * The spool's segments dropped by the ring buffer are deleted off the event loop: unlinking a segment of tens
 * of megabytes whose pages are still being written back takes the file system 100-300 ms on this machine's
 * disk, a whole frozen turn of the service (it was 2.5 s of a 5 M-record capture with a ring limit). The
 * synchronous calls of node:fs are counted here; the files must still be gone once the removals settle.
 */
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildBatch, type RecordSpec } from '../../test/support/records.js';
import { CHUNK_SIZE } from './store.js';

const syncRemovals: string[] = [];
const syncOpens: string[] = [];
vi.mock('node:fs', async (original) => {
  const real = await original<typeof fs>();
  const counted =
    <A extends unknown[], R>(list: () => string[], name: string, fn: (...args: A) => R) =>
    (...args: A): R => {
      list().push(`${name} ${String(args[0])}`);
      return fn(...args);
    };
  const mocked = {
    ...real,
    rmSync: counted(() => syncRemovals, 'rmSync', real.rmSync),
    unlinkSync: counted(() => syncRemovals, 'unlinkSync', real.unlinkSync),
    openSync: counted(() => syncOpens, 'openSync', real.openSync),
  };
  return { ...mocked, default: mocked };
});

const { Spool, SEGMENT_SCALE } = await import('./spool-store.js');

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(join(tmpdir(), 'icmpcap-spool-store-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function batchOf(from: number, n: number): ArrayBuffer {
  const specs: RecordSpec[] = [];
  for (let k = from; k < from + n; k++)
    specs.push({
      tsNs: 1_700_000_000_000_000_000n + BigInt(k) * 1000n,
      src: '10.0.0.1',
      dst: '192.0.2.1',
      type: 8,
      id: 7,
      seq: k & 0xffff,
      ifindex: 1,
      payload: 64,
    });
  return buildBatch(specs);
}

const pcapngs = (dir: string): string[] =>
  fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.pcapng'))
    .sort();

/** The spool's files with bytes in them (the next segment's, opened ahead, is empty until its cut). */
const written = (dir: string): string[] => pcapngs(dir).filter((f) => fs.statSync(join(dir, f)).size > 0);

type SpoolType = ReturnType<typeof Spool.create>;
/** Until the next segment's file, opened ahead in the thread pool, is ready for the cut. */
async function openedAhead(spool: SpoolType): Promise<void> {
  const ahead = (): { fd: number | null } | null =>
    (spool as unknown as { ahead: { fd: number | null } | null }).ahead;
  for (let i = 0; i < 1000 && ahead()?.fd == null; i++) await new Promise((r) => setTimeout(r, 5));
  expect(ahead()?.fd).toEqual(expect.any(Number));
}

describe('spool segments dropped by the ring buffer', () => {
  it('are deleted off the event loop, and are gone once the removals settle', async () => {
    const dir = fs.mkdtempSync(join(tmp, 'drop-'));
    const spool = Spool.create(dir, 'icmpcap test', 262144);
    try {
      // A new segment at every chunk boundary: four segments of one chunk each.
      const cut = (): boolean => true;
      for (let at = 0; at < 4 * CHUNK_SIZE; at += 4096)
        spool.append(batchOf(at, 4096), 4096, () => 'lo', at, cut);
      expect(spool.paths).toHaveLength(4);
      await spool.drained();
      expect(written(dir)).toHaveLength(4);

      syncRemovals.length = 0;
      expect(spool.dropBefore(3 * CHUNK_SIZE)).toBe(3);
      expect(syncRemovals).toEqual([]);
      // The spool no longer counts them, at once.
      expect(spool.paths).toHaveLength(1);

      await spool.removals();
      expect(written(dir)).toEqual([spool.paths[0]!.slice(dir.length + 1)]);
      expect(spool.path.endsWith('-0003.pcapng')).toBe(true);
    } finally {
      spool.close();
    }
  });

  it('restarting the numbering deletes the older segments off the event loop too', async () => {
    const dir = fs.mkdtempSync(join(tmp, 'restart-'));
    const spool = Spool.create(dir, 'icmpcap test', 262144);
    try {
      const cut = (): boolean => true;
      for (let at = 0; at < 2 * CHUNK_SIZE + 4096; at += 4096)
        spool.append(batchOf(at, 4096), 4096, () => 'lo', at, cut);
      expect(spool.paths).toHaveLength(3);
      syncRemovals.length = 0;
      spool.restartNumbering();
      expect(syncRemovals).toEqual([]);
      await spool.removals();
      await spool.drained();
      expect(written(dir).map((f) => f.slice(-12))).toEqual(['-0002.pcapng']);
    } finally {
      spool.close();
    }
  });
});

describe('spool segments', () => {
  it('are opened ahead in the thread pool: a cut opens no file on the event loop, and none is left over', async () => {
    for (const keep of [false, true]) {
      const dir = fs.mkdtempSync(join(tmp, 'ahead-'));
      const spool = Spool.create(dir, 'icmpcap test', 262144);
      const cut = (): boolean => true;
      for (let at = 0; at < CHUNK_SIZE; at += 4096)
        spool.append(batchOf(at, 4096), 4096, () => 'lo', at, cut);
      await openedAhead(spool);
      syncOpens.length = 0;
      // The next chunk's first batch cuts segment 1: its file is the one opened ahead.
      const located = spool.append(batchOf(CHUNK_SIZE, 4096), 4096, () => 'lo', CHUNK_SIZE, cut);
      expect(syncOpens).toEqual([]);
      expect(spool.paths).toHaveLength(2);
      expect(Math.floor(located[0]! / SEGMENT_SCALE)).toBe(1);
      await spool.drained();
      expect(written(dir)).toEqual(spool.paths.map((p) => p.slice(dir.length + 1)));
      // Its packets read back from the file opened ahead (the reader opens it by its name).
      const tsLo = Number((1_700_000_000_000_000_000n + BigInt(CHUNK_SIZE) * 1000n) & 0xffffffffn);
      expect(spool.readPacket(located[0]!).tsLo).toBe(tsLo);
      // Segment 2's file is being opened ahead now; the end of the spool lets it go.
      await openedAhead(spool);
      const segments = spool.paths.map((p) => p.slice(dir.length + 1));
      spool.close(keep);
      await spool.removals();
      await spool.drained();
      expect(pcapngs(dir)).toEqual(keep ? segments : []);
    }
  });
});

describe('spool appends', () => {
  it('locate every record and start segments at chunk starts, whatever record count the caller gives', async () => {
    const dir = fs.mkdtempSync(join(tmp, 'counts-'));
    const spool = Spool.create(dir, 'icmpcap test', 262144);
    try {
      // Batches of uneven sizes, so chunk starts fall inside batches; the count given is wrong both ways.
      const sizes = [3000, 1, 5000, 4096, 7777, 1234];
      const cut = (): boolean => true;
      const locations: number[] = [];
      let at = 0;
      let k = 0;
      while (at < 3 * CHUNK_SIZE + 100) {
        const n = sizes[k++ % sizes.length]!;
        const said = k % 2 ? 1 : n * 3;
        const located = spool.append(batchOf(at, n), said, (i) => `if-${i}`, at, cut);
        locations.push(...located.subarray(0, n));
        at += n;
      }
      // One segment per chunk started (the first holds chunk 0).
      expect(spool.paths).toHaveLength(Math.ceil(at / CHUNK_SIZE));
      // Record i was captured at T + i µs (batchOf): each location holds its packet.
      const tsLo = (i: number) => Number((1_700_000_000_000_000_000n + BigInt(i) * 1000n) & 0xffffffffn);
      for (let i = 0; i < at; i += 997) expect(spool.readPacket(locations[i]!).tsLo).toBe(tsLo(i));
      expect(spool.readPacket(locations[at - 1]!).tsLo).toBe(tsLo(at - 1));
      // Each segment's first record is a chunk's first.
      for (let s = 1; s < spool.paths.length; s++) {
        const first = s * CHUNK_SIZE;
        expect(Math.floor(locations[first]! / SEGMENT_SCALE)).toBe(s);
        expect(Math.floor(locations[first - 1]! / SEGMENT_SCALE)).toBe(s - 1);
      }
      await spool.drained();
    } finally {
      spool.close();
    }
  });
});
