/** Exports and file opens run as service jobs; their progress arrives as `job` events. */
import type { ExportFormat, Job } from '@common/contract';
import { defineStore } from 'pinia';
import { computed, ref, shallowRef } from 'vue';
import { api } from '../transport';
import { useCaptureStore } from './capture';

export const useJobsStore = defineStore('jobs', () => {
  const jobs = shallowRef<ReadonlyMap<number, Job>>(new Map());
  const error = ref<string | null>(null);
  /** Exports of every record: when one is done, what it covered is saved. */
  const fullExports = new Map<number, number>();

  api.onEvent('job', (job) => {
    const covered = fullExports.get(job.id);
    if (covered !== undefined && job.state !== 'running') {
      fullExports.delete(job.id);
      if (job.state === 'done') useCaptureStore().markExported(covered);
    }
    const next = new Map(jobs.value);
    next.set(job.id, job);
    jobs.value = next;
  });

  function track(id: number, kind: Job['kind'], path: string): void {
    if (jobs.value.has(id)) return; // the first event may have beaten the reply
    const next = new Map(jobs.value);
    next.set(id, { id, kind, state: 'running', done: 0, total: null, path });
    jobs.value = next;
  }

  async function startExport(params: {
    format: ExportFormat;
    scope: 'all' | 'view' | 'selected';
    nos?: number[];
    path: string;
  }): Promise<number | null> {
    try {
      const capture = useCaptureStore();
      const covered = capture.counts.total + (capture.counts.evicted ?? 0);
      const { id } = await api.request('export.start', params);
      const all = params.scope === 'all' || (params.scope === 'view' && !capture.counts.filter);
      const known = jobs.value.get(id);
      if (all && known?.state === 'done') capture.markExported(covered);
      else if (all) fullExports.set(id, covered);
      track(id, 'export', params.path);
      error.value = null;
      return id;
    } catch (err) {
      error.value = (err as Error).message;
      return null;
    }
  }

  async function openFile(path: string): Promise<number | null> {
    try {
      const { id } = await api.request('file.open', { path });
      track(id, 'open', path);
      error.value = null;
      return id;
    } catch (err) {
      error.value = (err as Error).message;
      return null;
    }
  }

  async function cancel(id: number): Promise<void> {
    try {
      const job = await api.request('job.cancel', { id });
      const next = new Map(jobs.value);
      next.set(id, job);
      jobs.value = next;
    } catch (err) {
      error.value = (err as Error).message;
    }
  }

  function dismiss(id: number): void {
    const next = new Map(jobs.value);
    next.delete(id);
    jobs.value = next;
  }

  const list = computed(() => [...jobs.value.values()]);
  return { jobs, list, error, startExport, openFile, cancel, dismiss };
});
