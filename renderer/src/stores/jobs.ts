/**
 * Exports and file opens run as service jobs; their progress arrives as `job` events. Each host's jobs are
 * its own (two services number theirs alike): kept under the key of the host they run on (LOCAL or the
 * agent's address, as `useHostsStore().key`), followed whatever host the window shows, listed while their
 * host is shown, and cancelled on that host.
 */
import type { ExportRequest, FileChoices, HostEvent, Job, OpenRequest } from '@common/contract';
import { plainWords } from '@common/plain-words';
import { defineStore } from 'pinia';
import { computed, ref, shallowRef } from 'vue';
import { RequestError, api, inBrowser, localApi, serviceFetch } from '../transport';
import { useCaptureStore } from './capture';
import { LOCAL, useHostsStore } from './hosts';

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

/** A job and the host it runs on. */
export interface HostJob extends Job {
  /** The host's key (useHostsStore().key). */
  host: string;
}

export const useJobsStore = defineStore('jobs', () => {
  const hosts = useHostsStore();
  /** Each host's jobs by id, under the host's key. */
  const byHost = shallowRef<Readonly<Record<string, ReadonlyMap<number, HostJob>>>>({});
  const error = ref<string | null>(null);
  const recentNames = ref<string[]>(recentFolderFiles());
  /** This machine's exports started here in a browser: fetched as a download once done. */
  const downloads = new Set<number>();

  /**
   * This machine's exports of every record: when one is done, what it covered is saved (no "save before…"
   * for it), for the data set it was of.
   */
  const fullExports = new Map<number, { covered: number; dataset: string }>();
  /**
   * This machine's job events that came while an export of it was being started, latest by id: the reply
   * naming the job may come after its events, even after its end (a small export). Kept while a start is
   * under way; the reply takes its job's from here.
   */
  const early = new Map<number, Job>();
  let starting = 0;

  const jobOf = (host: string, id: number): HostJob | undefined => byHost.value[host]?.get(id);
  function put(host: string, job: Job): void {
    const next = new Map(byHost.value[host]);
    next.set(job.id, { ...job, host });
    byHost.value = { ...byHost.value, [host]: next };
  }

  function arrived(host: string, job: Job): void {
    put(host, job);
    if (host !== LOCAL) return;
    if (starting > 0) early.set(job.id, job);
    if (job.state === 'running') return;
    const full = fullExports.get(job.id);
    if (full !== undefined) {
      fullExports.delete(job.id);
      if (job.state === 'done') useCaptureStore().markExported(full.covered, full.dataset);
    }
    if (downloads.delete(job.id) && job.state === 'done') void download(job);
  }
  // Every host's, not only the shown one's: a job goes on (and ends) while another host is shown.
  localApi.onEvent('job', (job) => arrived(LOCAL, job));
  localApi.onEvent('host.event', (e: HostEvent) => {
    const url = e.event === 'job' ? hosts.hosts.find((h) => h.id === e.host)?.url : undefined;
    if (url !== undefined) arrived(url, e.data as Job);
  });

  /**
   * A host's hello (a first connection or a reconnect): the jobs it lists as they are now. A job this page saw
   * running that ended while the page was away takes its end (and, this machine's, its download); one the
   * host does not list any more (it was restarted, or ended long before) cannot be running: it is shown as
   * ended, its outcome unknown. Running jobs started from elsewhere meanwhile are listed too.
   */
  function reconcile(host: string, jobs: readonly Job[] | undefined): void {
    if (jobs === undefined) return; // an agent of an older version: its job events are all there is
    const listed = new Map(jobs.map((job) => [job.id, job]));
    for (const job of byHost.value[host]?.values() ?? []) {
      if (job.state !== 'running') continue;
      const now = listed.get(job.id);
      if (now !== undefined && now.kind === job.kind) arrived(host, now);
      else
        put(host, {
          ...job,
          state: 'error',
          message:
            'the service was restarted, or the page was away too long, before this job ended: ' +
            'whether it finished is unknown; check its file, or start it again',
        });
    }
    for (const job of jobs) if (job.state === 'running' && !jobOf(host, job.id)) put(host, job);
  }

  function fail(err: unknown): null {
    error.value = plainWords(err instanceof Error ? err.message : String(err));
    return null;
  }

  function track(host: string, id: number, kind: Job['kind'], path: string): void {
    if (jobOf(host, id)) return; // the first event may have beaten the reply
    put(host, { id, kind, state: 'running', done: 0, total: null, path });
  }

  /** Saves a finished export of this machine's service as a browser download. */
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

  /**
   * Starts an export on the host shown: a native save dialog in Electron, a download in a browser. Null: not
   * started. The job is that host's, even should the window show another by the time it is started.
   */
  async function startExport(params: ExportRequest): Promise<number | null> {
    const host = hosts.key;
    if (host === LOCAL) starting++;
    try {
      const capture = useCaptureStore();
      const covered = capture.counts.total + (capture.counts.evicted ?? 0);
      const dataset = capture.datasetKey;
      const { id } = await api.request('export.start', params);
      error.value = null;
      // Null: the user closed the save dialog (a host removed meanwhile cannot have started it).
      if (id === null || host === null) return null;
      // This machine's job may have sent events before this reply, even its end (a small export).
      const came = host === LOCAL ? early.get(id) : undefined;
      const done = came?.state === 'done';
      const running = came === undefined || came.state === 'running';
      // Only this machine's: its files are downloaded from this page's service (a remote host's are not).
      if (host === LOCAL && (params.scope === 'all' || (params.scope === 'view' && !capture.counts.filter))) {
        if (done) capture.markExported(covered, dataset);
        else if (running) fullExports.set(id, { covered, dataset });
      }
      if (host === LOCAL && inBrowser) {
        if (done) void download(came);
        else if (running) downloads.add(id);
      }
      track(host, id, 'export', '');
      return id;
    } catch (err) {
      return fail(err);
    } finally {
      if (host === LOCAL && --starting === 0) early.clear();
    }
  }

  async function openFile(source: OpenRequest): Promise<number | null> {
    const host = hosts.key;
    try {
      const { id } = await api.request('file.open', source);
      error.value = null;
      if (id === null || host === null) return null;
      track(host, id, 'open', source.from === 'folder' ? source.name : '');
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

  /** Cancels a job on the host it runs on, whatever host the window shows now. */
  async function cancel(host: string, id: number): Promise<void> {
    try {
      let job: Job;
      if (host === LOCAL) job = await localApi.request('job.cancel', { id });
      else {
        const info = hosts.hosts.find((h) => h.url === host);
        if (!info) throw new Error(`${host} is no longer a host of this window: its job cannot be cancelled`);
        job = (await localApi.request('hosts.request', {
          host: info.id,
          method: 'job.cancel',
          params: { id },
        })) as Job;
      }
      put(host, job);
    } catch (err) {
      if (hosts.key === host) fail(err);
    }
  }

  function dismiss(host: string, id: number): void {
    const next = new Map(byHost.value[host]);
    next.delete(id);
    byHost.value = { ...byHost.value, [host]: next };
  }

  /** The shown host's jobs. */
  const list = computed(() => (hosts.key === null ? [] : [...(byHost.value[hosts.key]?.values() ?? [])]));
  return {
    byHost,
    list,
    error,
    recentNames,
    startExport,
    openFile,
    upload,
    choices,
    cancel,
    dismiss,
    reconcile,
  };
});
