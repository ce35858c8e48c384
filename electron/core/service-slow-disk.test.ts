/**
 * The capture service on a disk that stops taking writes (a real frozen ext4: see stuck-disk.ts): the event
 * loop keeps serving, every record just ingested reads back (details) from the spool's write queue, a disk
 * that falls past the queue's bound costs batches that are counted and said, never unbounded memory; once
 * the disk takes writes again, the capture goes on and every kept record exports.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeRecord, MAX_RECORD_SIZE } from './files/packet.js';
import { readCaptureFileAll } from './files/read.js';
import { ipv4Icmp } from './files/testing/packets.js';
import { canStickDisk, stuckDisk, type StuckDisk } from './files/testing/stuck-disk.js';
import { Direction } from './record.js';
import { CaptureService } from './service.js';
import { jobEnd } from './testing/jobs.js';

const T0 = 1_795_329_960_000_000_000n;

/** Batch `b`: 1000 echo requests with real IPv4 + ICMP bytes, seq = their number, payload bytes = b. */
function batchOf(b: number): { batch: ArrayBuffer; packets: Uint8Array[] } {
  const out = new Uint8Array(1000 * MAX_RECORD_SIZE);
  const packets: Uint8Array[] = [];
  let at = 0;
  for (let k = 0; k < 1000; k++) {
    const n = b * 1000 + k;
    const packet = ipv4Icmp({ seq: n & 0xffff, id: b, payload: 64 + (k % 50) });
    packets.push(packet);
    const tsNs = T0 + BigInt(n) * 1000n;
    at += encodeRecord(packet, { tsNs, ifindex: 1, dir: Direction.In, origLen: packet.length }, out, at)!;
  }
  return { batch: out.buffer.slice(0, at), packets };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

/** A service whose spool is on `disk` (and whose write queue holds at most `spoolBacklogMax` bytes). */
function spoolingOn(disk: StuckDisk, spoolBacklogMax?: number): CaptureService {
  return new CaptureService({
    native: new Error('no native here'),
    version: 'test',
    spoolDir: join(disk.dir, 'spool'),
    ...(spoolBacklogMax === undefined ? {} : { spoolBacklogMax }),
  });
}

describe('capture service on a disk that stops taking writes', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'icmpcap-slow-'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it.skipIf(!canStickDisk())(
    'keeps serving, reads fresh records from the write queue, counts what the full queue drops, exports the rest',
    async () => {
      const disk = stuckDisk(tmp, 64);
      const svc = spoolingOn(disk, 1 << 20);
      try {
        svc.startFeed();
        const batches = Array.from({ length: 60 }, (_, b) => batchOf(b));
        let next = 0;
        for (; next < 5; next++) svc.feed(batches[next]!.batch, 1000);
        await svc.spool!.drained();
        disk.freeze(10);
        let fed = 5000;
        // Fed as a native session delivers: one batch per turn of the event loop.
        while (svc.counts().droppedRing === 0 && next < batches.length) {
          const { batch, packets } = batches[next++]!;
          const before = svc.store.length;
          svc.feed(batch, 1000);
          fed += 1000;
          await turn();
          expect(disk.thawed()).toBe(false); // the loop turned while the disk held the writes
          if (svc.store.length === before) continue; // this one was dropped
          // Every record just ingested reads back whole from the spool (its bytes are not on disk yet).
          for (const k of [0, 499, 999]) {
            const d = (await svc.handle('record.details', { no: before + k + 1 }, 'ipc')) as {
              bytesHex: string;
            };
            expect(d.bytesHex).toBe(Buffer.from(packets[k]!).toString('hex'));
          }
        }
        // The queue's bound was reached: the batch was dropped, counted and said; the capture runs on.
        const dropped = svc.counts().droppedRing;
        expect(dropped).toBeGreaterThan(0);
        expect(svc.captureState.state).toBe('running');
        expect(svc.captureState.message).toMatch(/disk holding the spool cannot keep up/);
        expect(svc.spool!.backlog).toBeLessThanOrEqual(1 << 20);
        expect(svc.store.live + dropped).toBe(fed);
        expect(disk.thawed()).toBe(false);

        disk.thaw();
        await svc.spool!.drained();
        for (let k = 0; k < 5 && next < batches.length; k++) {
          svc.feed(batches[next++]!.batch, 1000);
          fed += 1000;
          await turn();
        }
        expect(svc.counts().droppedRing).toBe(dropped);
        expect(svc.store.live + dropped).toBe(fed);
        const out = join(tmp, 'after-thaw.pcapng');
        const { id } = (await svc.handle(
          'export.start',
          { format: 'pcapng', scope: 'all', path: out },
          'ipc',
        )) as { id: number };
        expect((await jobEnd(svc, id)).state).toBe('done');
        const { records, summary } = await readCaptureFileAll(out);
        expect(summary.error).toBeUndefined();
        expect(records).toHaveLength(svc.store.live);
      } finally {
        svc.close();
        disk.remove();
      }
    },
    60_000,
  );

  it.skipIf(!canStickDisk())(
    "exports to another disk while the spool's disk holds its writes: the records still queued go too, and a cancel is heard",
    async () => {
      const disk = stuckDisk(tmp, 64);
      const svc = spoolingOn(disk);
      try {
        svc.startFeed();
        for (let b = 0; b < 5; b++) svc.feed(batchOf(b).batch, 1000);
        await svc.spool!.drained();
        disk.freeze(20);
        for (let b = 5; b < 8; b++) {
          svc.feed(batchOf(b).batch, 1000);
          await turn();
        }
        expect(svc.spool!.backlog).toBeGreaterThan(0); // the last 3000 records are only in the queue
        const out = join(tmp, 'while-frozen.pcapng');
        const { id } = (await svc.handle(
          'export.start',
          { format: 'pcapng', scope: 'all', path: out, overwrite: true },
          'ipc',
        )) as { id: number };
        const job = await jobEnd(svc, id);
        expect(job.state).toBe('done');
        // Written while the spool's disk was still frozen (the export waited for nothing it holds).
        expect(disk.thawed()).toBe(false);
        const { records, summary } = await readCaptureFileAll(out);
        expect(summary.error).toBeUndefined();
        expect(records).toHaveLength(8000);
        expect(records.map((r) => r.seq)).toEqual(Array.from({ length: 8000 }, (_, n) => n & 0xffff));
        // A second export, cancelled at once, ends as cancelled, with the disk still frozen.
        const second = (await svc.handle(
          'export.start',
          { format: 'pcapng', scope: 'all', path: join(tmp, 'cancelled.pcapng'), overwrite: true },
          'ipc',
        )) as { id: number };
        const ended = jobEnd(svc, second.id);
        await svc.handle('job.cancel', { id: second.id }, 'ipc');
        expect((await ended).state).toBe('cancelled');
        expect(disk.thawed()).toBe(false);
      } finally {
        svc.close();
        disk.remove();
      }
    },
    60_000,
  );
});
