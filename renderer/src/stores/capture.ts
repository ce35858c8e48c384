import type { CaptureState, Counts, InterfaceInfo, SourceAvailability, StartParams } from '@common/contract';
import { defineStore } from 'pinia';
import { computed, ref, shallowRef, watch } from 'vue';
import { api } from '../transport';
import { useHostsStore } from './hosts';
import { useJobsStore } from './jobs';

const EXPORTED_KEY = 'icmpcap.exported';

const EMPTY_COUNTS: Counts = {
  total: 0,
  view: 0,
  rate: 0,
  droppedKernel: 0,
  droppedRing: 0,
  firstTsNs: null,
  filter: '',
  sort: { column: null, descending: false },
};

/**
 * The shown host's capture. An answer that comes after a host switch is another host's: not shown. From a
 * switch until the new host's hello, nothing is known of it (`waitingFor`): nothing of the host before is
 * shown meanwhile.
 */
export const useCaptureStore = defineStore('capture', () => {
  const hosts = useHostsStore();
  const state = shallowRef<CaptureState>({ state: 'idle', interfaces: [] });
  const counts = shallowRef<Counts>(EMPTY_COUNTS);
  const sources = shallowRef<SourceAvailability[]>([]);
  const interfaces = shallowRef<InterfaceInfo[]>([]);
  const version = ref('');
  const error = ref<string | null>(null);
  const connected = ref(false);
  const busy = ref(false);
  /** A switch of host: the new host has not answered hello yet. */
  const waiting = ref(false);
  /** The host waited for after a switch, by name; null: not waiting. */
  const waitingFor = computed(() =>
    !waiting.value ? null : hosts.selected === null ? 'this machine' : (hosts.current?.name ?? 'the host'),
  );

  const running = computed(() => state.value.state === 'running' || state.value.state === 'paused');
  /** Bumped by Clear: with the source, file and start time, it names the data set being shown. */
  const clears = ref(0);
  const datasetKey = computed(
    () =>
      `${state.value.source ?? ''}|${state.value.file ?? ''}|${state.value.startedAtMs ?? ''}|${clears.value}`,
  );
  /**
   * Records of this data set written to a file in full (an export of everything), so discarding them is
   * no loss. Kept per tab in sessionStorage: a reload still knows.
   */
  const exportedTotal = ref(readExported());
  function readExported(): { key: string; total: number } | null {
    try {
      return JSON.parse(sessionStorage.getItem(EXPORTED_KEY) ?? 'null') as {
        key: string;
        total: number;
      } | null;
    } catch {
      return null;
    }
  }
  /** `key`: the data set exported (the one shown when the export began). */
  function markExported(total: number, key = datasetKey.value): void {
    exportedTotal.value = { key, total };
    sessionStorage.setItem(EXPORTED_KEY, JSON.stringify(exportedTotal.value));
  }
  /** Captured packets that are in no file yet (an opened file's are, in that file). */
  const unsaved = computed(() => {
    if (state.value.source === 'file' || counts.value.total === 0) return 0;
    const e = exportedTotal.value;
    const saved = e && e.key === datasetKey.value ? e.total : 0;
    return Math.max(
      0,
      Math.min(counts.value.total, counts.value.total + (counts.value.evicted ?? 0) - saved),
    );
  });
  const anySourceAvailable = computed(() => sources.value.some((s) => s.available));

  api.onEvent('state', (s) => (state.value = s));
  api.onEvent('counts', (c) => (counts.value = c));
  api.onEvent('interfaces', (list) => (interfaces.value = list));

  // At once (sync): the host before's capture is gone before anything is asked of the new host.
  watch(
    () => hosts.key,
    () => {
      waiting.value = true;
      connected.value = false;
      state.value = { state: 'idle', interfaces: [] };
      counts.value = EMPTY_COUNTS;
      sources.value = [];
      interfaces.value = [];
      error.value = null;
    },
    { flush: 'sync' },
  );

  async function connect(): Promise<void> {
    const host = hosts.key;
    try {
      const hello = await api.request('hello');
      if (hosts.key !== host) return;
      version.value = hello.version;
      state.value = hello.state;
      counts.value = hello.counts;
      sources.value = hello.sources;
      interfaces.value = hello.interfaces;
      if (host !== null) useJobsStore().reconcile(host, hello.jobs);
      connected.value = true;
      waiting.value = false;
      error.value = null;
    } catch (err) {
      if (hosts.key === host) error.value = (err as Error).message;
    }
  }

  /** Asks the host shown; the answer is written (`take`) only if the window still shows that host. */
  async function run<T>(ask: () => Promise<T>, take: (result: T) => void): Promise<void> {
    const host = hosts.key;
    busy.value = true;
    try {
      const result = await ask();
      if (hosts.key !== host) return;
      take(result);
      error.value = null;
    } catch (err) {
      if (hosts.key === host) error.value = (err as Error).message;
    } finally {
      busy.value = false;
    }
  }

  const setState = (s: CaptureState): void => {
    state.value = s;
  };
  const start = (params: StartParams) => run(() => api.request('capture.start', params), setState);
  const stop = () => run(() => api.request('capture.stop'), setState);
  const pause = () => run(() => api.request('capture.pause'), setState);
  const resume = () => run(() => api.request('capture.resume'), setState);
  const clear = () =>
    run(
      () => api.request('capture.clear'),
      (c) => {
        counts.value = c;
        clears.value++;
      },
    );

  return {
    state,
    counts,
    sources,
    interfaces,
    version,
    error,
    connected,
    busy,
    waitingFor,
    running,
    datasetKey,
    unsaved,
    markExported,
    anySourceAvailable,
    connect,
    start,
    stop,
    pause,
    resume,
    clear,
  };
});
