/**
 * Child of insights/open-waits.test.ts: a service with the insights attached and no other handle (as a bench or
 * a script has), which opens a file while waiting for the insights' worker after every batch (openQueuedBytes
 * 1). Prints `opened N` when the open is done; with nothing keeping the process alive during a wait, it ends
 * early instead (exit code 13: an unsettled top-level await).
 *
 *   node --import tsx electron/core/testing/open-waits-child.ts DIR RECORDS
 */
import { join } from 'node:path';
import type { Job } from '../../common/contract.js';
import { realisticCapture } from '../bench/synth.js';
import { attachInsights } from '../insights/index.js';
import { CaptureService } from '../service.js';

const [dir, count] = [process.argv[2]!, Number(process.argv[3])];
const svc = new CaptureService({ native: new Error('fed'), version: 'test', spoolDir: join(dir, 'spool') });
const insights = attachInsights(svc, {
  rulesFile: join(dir, 'alerts.conf'),
  log: () => undefined,
  openQueuedBytes: 1,
});

const ended = (id: number): Promise<Job> =>
  new Promise((resolve) => {
    const off = svc.on((event, data) => {
      const job = data as Job;
      if (event === 'job' && job.id === id && job.state !== 'running') {
        off();
        resolve(job);
      }
    });
  });

svc.startFeed({ snaplen: 256 });
for (const batch of realisticCapture(count, 4096, { packetBytes: true })) svc.feed(batch);
svc.stop();
const file = join(dir, 'capture.pcapng');
const exported = (await svc.handle(
  'export.start',
  { format: 'pcapng', scope: 'all', path: file },
  'ipc',
)) as {
  id: number;
};
const wrote = await ended(exported.id);
if (wrote.state !== 'done') throw new Error(`export: ${wrote.message ?? wrote.state}`);
const opened = (await svc.handle('file.open', { path: file }, 'ipc')) as { id: number };
const job = await ended(opened.id);
if (job.state !== 'done') throw new Error(`open: ${job.message ?? job.state}`);
process.stdout.write(`opened ${svc.store.length}\n`);
insights.close();
svc.close();
