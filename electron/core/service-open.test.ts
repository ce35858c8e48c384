/**
 * Opening a file while a large capture is held: the service lets the old capture go and takes the file in
 * without holding its event loop (batches no larger than a live capture's, the old spool's gigabytes removed
 * in the thread pool), and ends with the file's records, nothing of the old capture, and its progress told.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job, Row } from '../common/contract.js';
import { realisticCapture } from './bench/synth.js';
import { forEachRecord } from './record.js';
import { CaptureService } from './service.js';

const N = 60_000;
let tmp: string;
let svc: CaptureService;

function jobEnd(id: number, seen: Job[]): Promise<Job> {
  return new Promise((resolve) => {
    const off = svc.on((event, data) => {
      const job = data as Job;
      if (event !== 'job' || job.id !== id) return;
      seen.push(job);
      if (job.state === 'running') return;
      off();
      resolve(job);
    });
  });
}

const fields = (r: Row): unknown[] => [r.src, r.dst, r.type, r.code, r.id, r.seq, r.len, r.dir];

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-open-'));
  svc = new CaptureService({
    native: new Error('no native session: batches are fed'),
    version: 'test',
    spoolDir: join(tmp, 'spool'),
  });
});

afterAll(() => {
  svc.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('opening a file while a capture is held', () => {
  it('reads every record in batches no larger than a live capture, reports progress, and lets the old capture go', async () => {
    svc.startFeed({ snaplen: 256 });
    for (const batch of realisticCapture(N, 4096, { packetBytes: true })) svc.feed(batch);
    svc.stop();
    expect(svc.store.live).toBe(N);
    const before = svc.rows(0, 50).rows.map(fields);
    const file = join(tmp, 'all.pcapng');
    const exported = (await svc.handle(
      'export.start',
      { format: 'pcapng', scope: 'all', path: file },
      'ipc',
    )) as {
      id: number;
    };
    expect((await jobEnd(exported.id, [])).state).toBe('done');

    // A second capture is held when the file is opened; its spool goes with it.
    svc.startFeed({ snaplen: 256 });
    for (const batch of realisticCapture(N, 4096, { packetBytes: true })) svc.feed(batch);
    svc.stop();
    const oldSpool = svc.spool!.paths;
    const oldChunk = svc.store.chunks[0];
    expect(oldSpool.every((p) => existsSync(p))).toBe(true);

    const ingested: number[] = [];
    const untap = svc.tapRecords((batch, _no, _ifname, byteOffset, byteLength) => {
      ingested.push(forEachRecord(batch, () => undefined, byteOffset, byteLength));
      // A service slower than the file's reader, as one with the insights attached is at 20 M records: the
      // reader stays ahead, and batches are still held when the file ends.
      for (const until = performance.now() + 5; performance.now() < until;);
    });
    // What the job's end takes in at once (the batches still held then): nothing, they go a slice a turn.
    const heldAtSettle: number[] = [];
    const settle = svc.settleIngest.bind(svc);
    svc.settleIngest = () => {
      heldAtSettle.push(svc.heldBatches);
      settle();
    };
    const jobs: Job[] = [];
    const { id } = (await svc.handle('file.open', { path: file }, 'ipc')) as { id: number };
    const job = await jobEnd(id, jobs);
    untap();
    svc.settleIngest = settle;
    expect(heldAtSettle).toEqual([0]);

    expect(job.state).toBe('done');
    expect(job.message).toBe(`${N.toLocaleString('en')} ICMP records read from ${file}`);
    expect(svc.store.live).toBe(N);
    expect(svc.counts().total).toBe(N);
    expect(svc.rows(0, 50).rows.map(fields)).toEqual(before);
    // The file's records went into the old capture's chunk (zeroed), not into new memory (store.ts).
    expect(svc.store.chunks[0]).toBe(oldChunk);
    expect(ingested.reduce((a, b) => a + b, 0)).toBe(N);
    // A live capture's batches hold at most 4096 records; a file's are taken in no larger, in slices.
    expect(Math.max(...ingested)).toBeLessThanOrEqual(4096);
    // Progress: the job started, and ended having read the whole file.
    expect(jobs[0]?.state ?? 'running').toBe('running');
    expect(job.total).toBeGreaterThan(0);
    expect(job.done).toBe(job.total);
    // The old capture's spool files are removed (off the event loop, so shortly after).
    for (let k = 0; k < 100 && oldSpool.some((p) => existsSync(p)); k++)
      await new Promise((r) => setTimeout(r, 20));
    expect(oldSpool.filter((p) => existsSync(p))).toEqual([]);
  });
});
