/**
 * What the capture service keeps when things go wrong: a full disk under the spool (a real small tmpfs), a
 * FIFO or a missing file given to Open, an export onto an existing file. Records come through `feed`, the
 * path a native session's batches take (spool, index, view).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CaptureState, Job } from '../common/contract.js';
import { randomCapture } from './bench/synth.js';
import { CaptureService } from './service.js';

const isRoot = process.getuid?.() === 0;

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

const settle = () => new Promise((r) => setTimeout(r, 20));

describe('capture service reliability', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'icmpcap-rel-'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  function service(spoolDir = join(tmp, 'spool')): CaptureService {
    return new CaptureService({ native: new Error('no native here'), version: 'test', spoolDir });
  }

  it.skipIf(!isRoot)(
    'a full disk stops the capture with a message; what was spooled stays exportable; the service serves on',
    async () => {
      const disk = join(tmp, 'small-disk');
      mkdirSync(disk);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', disk]);
      const svc = service(disk);
      try {
        const states: CaptureState[] = [];
        svc.on((event, data) => {
          if (event === 'state') states.push(data as CaptureState);
        });
        svc.startFeed();
        let fed = 0;
        for (const batch of randomCapture(40_000, 7, 1000)) {
          svc.feed(batch);
          fed += 1000;
          await settle();
          if (svc.captureState.state !== 'running') break;
        }
        expect(svc.captureState.state).toBe('stopped');
        expect(svc.captureState.message).toMatch(/disk holding the spool is full \(ENOSPC/);
        expect(svc.captureState.message).toMatch(/records captured before are kept and can be exported/);
        const kept = svc.store.live;
        expect(kept).toBeGreaterThan(1000);
        // The batch whose write hit the full disk is kept too (its bytes stay in the write queue, in memory).
        expect(kept).toBeLessThanOrEqual(fed);
        // Still serving: requests answer, and every kept record exports (to another disk).
        expect(
          ((await svc.handle('hello', {}, 'websocket')) as { counts: { total: number } }).counts.total,
        ).toBe(kept);
        const out = join(tmp, 'after-full.pcapng');
        const id = (
          (await svc.handle('export.start', { format: 'pcapng', scope: 'all', path: out }, 'ipc')) as {
            id: number;
          }
        ).id;
        const job = await waitJob(svc, id);
        expect(job.state).toBe('done');
        const tshark = execFileSync('tshark', ['-r', out, '-T', 'fields', '-e', 'frame.number'], {
          encoding: 'utf8',
        });
        expect(tshark.trim().split('\n')).toHaveLength(kept);
      } finally {
        svc.close();
        execFileSync('umount', ['-l', disk]);
      }
    },
    60_000,
  );

  it('refuses a FIFO given to Open at once, keeping the capture it has', async () => {
    const svc = service();
    try {
      svc.startFeed();
      for (const batch of randomCapture(2000, 3, 1000)) svc.feed(batch);
      const before = svc.captureState.state;
      const fifo = join(tmp, 'stream.fifo');
      execFileSync('mkfifo', [fifo]);
      await expect(svc.handle('file.open', { path: fifo }, 'ipc')).rejects.toThrow(
        /FIFO.*not a capture file/,
      );
      const { id } = (await svc.handle('file.open', { path: join(tmp, 'nope.pcapng') }, 'ipc')) as {
        id: number;
      };
      expect((await waitJob(svc, id)).message).toMatch(/no such file/);
      expect(svc.captureState.state).toBe(before);
      expect(svc.store.live).toBe(2000);
    } finally {
      svc.close();
    }
  });

  it('keeps the current capture, and never sticks in "starting", when a file cannot be read', async () => {
    const svc = service();
    try {
      svc.startFeed();
      for (const batch of randomCapture(1000, 4, 1000)) svc.feed(batch);
      const before = svc.captureState.state;
      const garbage = join(tmp, 'garbage.pcapng');
      writeFileSync(garbage, 'this is not a capture file at all');
      const { id } = (await svc.handle('file.open', { path: garbage }, 'ipc')) as { id: number };
      const job = await waitJob(svc, id);
      expect(job.state).toBe('error');
      expect(job.message).toMatch(/not a pcap or pcapng file/);
      expect(svc.captureState.state).toBe(before);
      expect(svc.store.live).toBe(1000);
    } finally {
      svc.close();
    }
  });

  it('refuses to replace an existing file unless asked, then replaces it atomically', async () => {
    const svc = service();
    try {
      svc.startFeed();
      for (const batch of randomCapture(1000, 5, 1000)) svc.feed(batch);
      svc.stop();
      const target = join(tmp, 'existing.csv');
      writeFileSync(target, 'keep me');
      await expect(
        svc.handle('export.start', { format: 'csv', scope: 'all', path: target }, 'ipc'),
      ).rejects.toMatchObject({ code: 'file-exists' });
      expect(readFileSync(target, 'utf8')).toBe('keep me');
      const { id } = (await svc.handle(
        'export.start',
        { format: 'csv', scope: 'all', path: target, overwrite: true },
        'ipc',
      )) as { id: number };
      expect((await waitJob(svc, id)).state).toBe('done');
      expect(readFileSync(target, 'utf8').split('\r\n')).toHaveLength(1000 + 2);
      expect(existsSync(target)).toBe(true);
    } finally {
      svc.close();
    }
  });
});
