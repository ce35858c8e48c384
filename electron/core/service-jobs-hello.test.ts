/**
 * A page that was away (a dropped connection, a suspended laptop) when a job ended learns its end from `hello`,
 * and a restarted service never hands out an id a page may still show as one of its running jobs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hello } from '../common/contract.js';
import { randomCapture } from './bench/synth.js';
import { FINISHED_KEPT, JobRunner } from './jobs.js';
import { jobEnd } from './testing/jobs.js';
import { CaptureService } from './service.js';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-jobs-hello-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function loaded(records: number, name: string): CaptureService {
  const svc = new CaptureService({
    native: new Error('no native here'),
    version: 'test',
    spoolDir: join(tmp, name),
  });
  svc.startFeed();
  for (const batch of randomCapture(records, 5)) svc.feed(batch);
  svc.tick();
  return svc;
}

async function hello(svc: CaptureService): Promise<Hello> {
  return (await svc.handle('hello', {}, 'websocket')) as Hello;
}

async function startExport(svc: CaptureService, path: string): Promise<number> {
  const started = (await svc.handle('export.start', { format: 'pcapng', scope: 'all', path }, 'ipc')) as {
    id: number;
  };
  return started.id;
}

describe('jobs in hello', () => {
  it('lists a running export as running, and once it ended (no one listening) as it ended', async () => {
    const svc = loaded(300_000, 'a');
    try {
      const id = await startExport(svc, join(tmp, 'a.pcapng'));
      const end = jobEnd(svc, id);
      const running = (await hello(svc)).jobs?.find((job) => job.id === id);
      expect(running).toMatchObject({ id, kind: 'export', state: 'running' });
      const ended = await end;
      expect(ended.state).toBe('done');
      // A page that reconnects now sees what the event it missed said.
      expect((await hello(svc)).jobs?.find((job) => job.id === id)).toEqual(ended);
      // A failed one too, with what went wrong.
      const bad = await startExport(svc, join(tmp, 'no-such-folder', 'x.pcapng'));
      const failed = await jobEnd(svc, bad);
      expect(failed.state).toBe('error');
      expect((await hello(svc)).jobs?.find((job) => job.id === bad)).toEqual(failed);
    } finally {
      svc.close();
    }
  });

  it('a restarted service numbers its jobs apart from the one before', async () => {
    const ids: number[] = [];
    for (const name of ['b', 'c', 'd']) {
      const svc = loaded(2000, name);
      try {
        const id = await startExport(svc, join(tmp, `${name}.pcapng`));
        await jobEnd(svc, id);
        ids.push(id);
      } finally {
        svc.close();
      }
    }
    expect(new Set(ids).size).toBe(3);
    // Within what the download route takes (/download/<up to 9 digits>).
    for (const id of ids) expect(id).toBeLessThan(1e9);
  });

  it('keeps the last FINISHED_KEPT finished jobs, oldest dropped first', async () => {
    const runner = new JobRunner(() => {});
    const ids: number[] = [];
    for (let k = 0; k < FINISHED_KEPT + 5; k++)
      ids.push(runner.start('export', `f${k}`, () => Promise.resolve('ok')));
    const never = runner.start('open', 'slow', () => new Promise<string>(() => {}));
    await new Promise((r) => setTimeout(r, 10));
    const listed = runner.list();
    expect(listed.map((job) => job.id)).toEqual([...ids.slice(5), never]);
    expect(listed.at(-1)).toMatchObject({ state: 'running', kind: 'open' });
    expect(listed[0]).toMatchObject({ state: 'done', message: 'ok', path: 'f5' });
  });
});
