import type { CaptureState, Counts, InterfaceInfo, SourceAvailability, StartParams } from '@common/contract';
import { defineStore } from 'pinia';
import { computed, ref, shallowRef } from 'vue';
import { api } from '../transport';

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

export const useCaptureStore = defineStore('capture', () => {
  const state = shallowRef<CaptureState>({ state: 'idle', interfaces: [] });
  const counts = shallowRef<Counts>(EMPTY_COUNTS);
  const sources = shallowRef<SourceAvailability[]>([]);
  const interfaces = shallowRef<InterfaceInfo[]>([]);
  const version = ref('');
  const error = ref<string | null>(null);
  const connected = ref(false);
  const busy = ref(false);

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
  function markExported(total: number): void {
    exportedTotal.value = { key: datasetKey.value, total };
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

  async function connect(): Promise<void> {
    try {
      const hello = await api.request('hello');
      version.value = hello.version;
      state.value = hello.state;
      counts.value = hello.counts;
      sources.value = hello.sources;
      interfaces.value = hello.interfaces;
      connected.value = true;
      error.value = null;
    } catch (err) {
      error.value = (err as Error).message;
    }
  }

  async function run<T>(action: () => Promise<T>): Promise<T | undefined> {
    busy.value = true;
    try {
      const result = await action();
      error.value = null;
      return result;
    } catch (err) {
      error.value = (err as Error).message;
      return undefined;
    } finally {
      busy.value = false;
    }
  }

  const start = (params: StartParams) =>
    run(async () => (state.value = await api.request('capture.start', params)));
  const stop = () => run(async () => (state.value = await api.request('capture.stop')));
  const pause = () => run(async () => (state.value = await api.request('capture.pause')));
  const resume = () => run(async () => (state.value = await api.request('capture.resume')));
  const clear = () =>
    run(async () => {
      counts.value = await api.request('capture.clear');
      clears.value++;
    });

  return {
    state,
    counts,
    sources,
    interfaces,
    version,
    error,
    connected,
    busy,
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
