import type { CaptureState, Counts, InterfaceInfo, SourceAvailability, StartParams } from '@common/contract';
import { defineStore } from 'pinia';
import { computed, ref, shallowRef } from 'vue';
import { api } from '../transport';

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
  const clear = () => run(async () => (counts.value = await api.request('capture.clear')));

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
    anySourceAvailable,
    connect,
    start,
    stop,
    pause,
    resume,
    clear,
  };
});
