/** Exports and file opens run as service jobs; their progress arrives as `job` events. */
import type { ExportFormat, Job } from '@common/contract';
import { defineStore } from 'pinia';
import { computed, ref, shallowRef } from 'vue';
import { api } from '../transport';

export const useJobsStore = defineStore('jobs', () => {
  const jobs = shallowRef<ReadonlyMap<number, Job>>(new Map());
  const error = ref<string | null>(null);

  api.onEvent('job', (job) => {
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
    overwrite?: boolean;
  }): Promise<number | null> {
    try {
      const { id } = await api.request('export.start', params);
      track(id, 'export', params.path);
      error.value = null;
      return id;
    } catch (err) {
      // The service never replaces a file unasked: ask, then send again.
      if ((err as { code?: string }).code === 'file-exists' && !params.overwrite) {
        if (window.confirm(`${params.path} already exists. Replace it?`))
          return startExport({ ...params, overwrite: true });
        error.value = null;
        return null;
      }
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
