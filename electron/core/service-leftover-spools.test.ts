/**
 * Spools left behind by a process that died, through the service (`spool.list`, `spool.open`, `spool.clean`,
 * what the window's "capture left behind" panel asks): their segments are read and removed off the event
 * loop. Counting the packets of a leftover of 2 M records read 258 MB on the service's thread (100 ms; a
 * 20 M-record one, seconds). The synchronous reads and removals of node:fs are counted here.
 */
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Job, LeftoverSpoolInfo } from '../common/contract.js';

const syncCalls: string[] = [];
vi.mock('node:fs', async (original) => {
  const real = await original<typeof fs>();
  const counted =
    <A extends unknown[], R>(name: string, fn: (...args: A) => R) =>
    (...args: A): R => {
      syncCalls.push(name);
      return fn(...args);
    };
  const mocked = {
    ...real,
    readSync: counted('readSync', real.readSync),
    rmSync: counted('rmSync', real.rmSync),
    unlinkSync: counted('unlinkSync', real.unlinkSync),
  };
  return { ...mocked, default: mocked };
});

const { Spool } = await import('./spool-store.js');
const { listLeftoverSpools } = await import('./spool-recovery.js');
const { CaptureService } = await import('./service.js');
const { CHUNK_SIZE } = await import('./store.js');
const { realisticCapture } = await import('./bench/synth.js');

/** A pid no process has (above the kernel's pid_max of 2^22). */
const DEAD_PID = 99_999_999;
const RECORDS = 2 * CHUNK_SIZE + 8192;

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(join(tmpdir(), 'icmpcap-leftover-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Records with real IPv4/IPv6 + ICMP bytes (the file reader reads them back as a capture's). */
const made = (): ArrayBuffer[] => [...realisticCapture(RECORDS, 4096, { packetBytes: true })];

/** A spool of RECORDS records in three segments, named as a dead process's; returns its folder. */
async function leftover(name: string): Promise<string> {
  const dir = fs.mkdtempSync(join(tmp, `${name}-`));
  const spool = Spool.create(dir, 'icmpcap test', 262144);
  let at = 0;
  for (const batch of made()) {
    spool.append(
      batch,
      4096,
      () => 'eth0',
      at,
      () => true,
    );
    at += 4096;
  }
  const paths = spool.paths;
  spool.close(true);
  await spool.drained();
  for (const p of paths) fs.renameSync(p, p.replace(`-${process.pid}-`, `-${DEAD_PID}-`));
  return dir;
}

function jobDone(svc: InstanceType<typeof CaptureService>, id: number): Promise<Job> {
  return new Promise((resolve) => {
    const off = svc.on((event, data) => {
      const job = data as Job;
      if (event === 'job' && job.id === id && job.state !== 'running') {
        off();
        resolve(job);
      }
    });
  });
}

describe('leftover spools through the service', () => {
  it('are listed, opened and removed with no synchronous read or removal on the event loop', async () => {
    const dir = await leftover('one');
    expect(fs.readdirSync(dir)).toHaveLength(3);
    const svc = new CaptureService({ native: new Error('no native here'), version: 'test', spoolDir: dir });
    try {
      syncCalls.length = 0;
      const listed = (await svc.handle('spool.list', {}, 'ipc')) as LeftoverSpoolInfo[];
      expect(syncCalls).toEqual([]);
      // The same figures as the command line's listing (read on its own thread).
      const cli = listLeftoverSpools(dir);
      expect(listed).toEqual(
        cli.map(({ id, startedAtMs, packets, bytes }) => ({ id, startedAtMs, packets, bytes })),
      );
      expect(listed).toHaveLength(1);
      expect(listed[0]!.packets).toBe(RECORDS);
      expect(listed[0]!.id.endsWith(`-${DEAD_PID}`)).toBe(true);

      // Opened as the current capture: every record of its three segments.
      const { id } = (await svc.handle('spool.open', { id: 'latest' }, 'ipc')) as { id: number };
      expect((await jobDone(svc, id)).state).toBe('done');
      expect(svc.store.length).toBe(RECORDS);

      syncCalls.length = 0;
      const cleaned = (await svc.handle('spool.clean', { id: listed[0]!.id }, 'ipc')) as {
        removed: string[];
      };
      expect(syncCalls).toEqual([]);
      expect(cleaned.removed).toEqual([listed[0]!.id]);
      expect(fs.readdirSync(dir).filter((f) => f.includes(`-${DEAD_PID}-`))).toEqual([]);
      expect(await svc.handle('spool.list', {}, 'ipc')).toEqual([]);
    } finally {
      svc.close();
    }
  });

  it('say what is wrong for a spool that is not there, and never name a running one as left behind', async () => {
    const dir = await leftover('two');
    const svc = new CaptureService({ native: new Error('no native here'), version: 'test', spoolDir: dir });
    try {
      await expect(svc.handle('spool.open', { id: '20000101-000000-1' }, 'ipc')).rejects.toMatchObject({
        code: 'not-found',
        message: expect.stringMatching(/no spool 20000101-000000-1 in .*icmpcap spool/) as unknown,
      });
      // This process's own spool (a capture started here) is live: neither listed nor removed by a clean of all.
      svc.startFeed();
      svc.feed(made()[0]!, 4096);
      const mine = svc.spool!.path;
      const cleaned = (await svc.handle('spool.clean', {}, 'ipc')) as { removed: string[] };
      expect(cleaned.removed).toHaveLength(1);
      expect(fs.existsSync(mine)).toBe(true);
      await expect(svc.handle('spool.open', { id: 'latest' }, 'ipc')).rejects.toMatchObject({
        code: 'not-found',
        message: expect.stringMatching(/no spool was left behind/) as unknown,
      });
    } finally {
      svc.close();
    }
  });
});
