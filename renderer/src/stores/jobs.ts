/** Exports and file opens run as service jobs; their progress arrives as `job` events. */
import type { ExportRequest, FileChoices, Job, OpenRequest } from '@common/contract';
import { plainWords } from '@common/plain-words';
import { defineStore } from 'pinia';
import { computed, ref, shallowRef } from 'vue';
import { RequestError, api, inBrowser, serviceFetch } from '../transport';
import { useCaptureStore } from './capture';

const RECENT_KEY = 'icmpcap.recentFolderFiles';

/** What the page remembers of files opened from the capture folder (browser mode), newest first. */
function recentFolderFiles(): string[] {
  try {
    const list = JSON.parse(localStorage.getItem(RECENT_KEY) ?? '[]') as unknown;
    return Array.isArray(list) ? list.filter((n): n is string => typeof n === 'string').slice(0, 10) : [];
  } catch {
    return [];
  }
}

export const useJobsStore = defineStore('jobs', () => {
  const jobs = shallowRef<ReadonlyMap<number, Job>>(new Map());
  const error = ref<string | null>(null);
  const recentNames = ref<string[]>(recentFolderFiles());
  /** Exports started here in a browser: fetched as a download once done. */
  const downloads = new Set<number>();

  /** Exports of every record: when one is done, what it covered is saved (no "save before…" for it). */
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
    if (downloads.has(job.id) && job.state !== 'running') {
      downloads.delete(job.id);
      if (job.state === 'done') void download(job);
    }
  });

  function fail(err: unknown): null {
    error.value = plainWords(err instanceof Error ? err.message : String(err));
    return null;
  }

  function track(id: number, kind: Job['kind'], path: string): void {
    if (jobs.value.has(id)) return; // the first event may have beaten the reply
    const next = new Map(jobs.value);
    next.set(id, { id, kind, state: 'running', done: 0, total: null, path });
    jobs.value = next;
  }

  /** Saves a finished export from the service as a browser download. */
  async function download(job: Job): Promise<void> {
    try {
      const res = await serviceFetch(`/download/${job.id}`);
      if (!res.ok) throw new Error((await res.text()).trim() || `the download failed (${res.status})`);
      const url = URL.createObjectURL(await res.blob());
      const a = document.createElement('a');
      a.href = url;
      a.download = job.path;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (err) {
      fail(err);
    }
  }

  /** Starts an export: a native save dialog in Electron, a download in a browser. Null: not started. */
  async function startExport(params: ExportRequest): Promise<number | null> {
    try {
      const capture = useCaptureStore();
      const covered = capture.counts.total + (capture.counts.evicted ?? 0);
      const { id } = await api.request('export.start', params);
      error.value = null;
      if (id === null) return null; // the user closed the save dialog
      if (params.scope === 'all' || (params.scope === 'view' && !capture.counts.filter)) {
        if (jobs.value.get(id)?.state === 'done') capture.markExported(covered);
        else fullExports.set(id, covered);
      }
      if (inBrowser) downloads.add(id);
      track(id, 'export', '');
      return id;
    } catch (err) {
      return fail(err);
    }
  }

  async function openFile(source: OpenRequest): Promise<number | null> {
    try {
      const { id } = await api.request('file.open', source);
      error.value = null;
      if (id === null) return null;
      track(id, 'open', source.from === 'folder' ? source.name : '');
      if (source.from === 'folder') {
        recentNames.value = [source.name, ...recentNames.value.filter((n) => n !== source.name)].slice(0, 10);
        localStorage.setItem(RECENT_KEY, JSON.stringify(recentNames.value));
      }
      return id;
    } catch (err) {
      return fail(err);
    }
  }

  /** Browser mode: sends a file from this computer to the service, then opens it there. */
  async function upload(file: File): Promise<number | null> {
    try {
      const res = await serviceFetch('/upload', {
        method: 'POST',
        body: file,
        headers: { 'X-File-Name': encodeURIComponent(file.name), 'Content-Type': 'application/octet-stream' },
      });
      if (!res.ok) throw new Error((await res.text()).trim() || `the upload failed (${res.status})`);
      const { upload } = (await res.json()) as { upload: string };
      return await openFile({ from: 'upload', upload });
    } catch (err) {
      return fail(err);
    }
  }

  async function choices(): Promise<FileChoices | null> {
    try {
      return await api.request('files.list');
    } catch (err) {
      if (err instanceof RequestError && err.code === 'unknown-method') return null;
      return fail(err);
    }
  }

  async function cancel(id: number): Promise<void> {
    try {
      const job = await api.request('job.cancel', { id });
      const next = new Map(jobs.value);
      next.set(id, job);
      jobs.value = next;
    } catch (err) {
      fail(err);
    }
  }

  function dismiss(id: number): void {
    const next = new Map(jobs.value);
    next.delete(id);
    jobs.value = next;
  }

  const list = computed(() => [...jobs.value.values()]);
  return { jobs, list, error, recentNames, startExport, openFile, upload, choices, cancel, dismiss };
});
