/** Waiting for a capture service's jobs (export, open) to end, for tests and benchmarks. */
import type { Job } from '../../common/contract.js';
import type { CaptureService } from '../service.js';

/** The job `id` of `svc` once it has ended (done, failed or cancelled). */
export function jobEnd(svc: CaptureService, id: number): Promise<Job> {
  return new Promise((resolve) => {
    const off = svc.on((event, data) => {
      const job = data as Job;
      if (event !== 'job' || job.id !== id || job.state === 'running') return;
      off();
      resolve(job);
    });
  });
}

/** As `jobEnd`, but rejects unless the job is done. */
export async function jobDone(svc: CaptureService, id: number): Promise<Job> {
  const job = await jobEnd(svc, id);
  if (job.state !== 'done') throw new Error(`job ${id} ${job.state}: ${job.message ?? ''}`);
  return job;
}
