/**
 * Aggregates pushed by the service (about twice a second) and the RTT series of the peers picked for the
 * chart. Everything here is replaced wholesale (shallowRef), never deeply observed. They are the shown
 * host's: an answer that comes after a host switch is another host's, and is not shown.
 */
import type { Aggregates, PeerSeries } from '@common/contract';
import { defineStore } from 'pinia';
import { computed, markRaw, ref, shallowRef, watch } from 'vue';
import { api } from '../transport';
import { useHostsStore } from './hosts';

export const MAX_CHART_PEERS = 16;

export const useStatsStore = defineStore('stats', () => {
  const hosts = useHostsStore();
  const aggregates = shallowRef<Aggregates | null>(null);
  const error = ref<string | null>(null);
  const chartPeers = shallowRef<string[]>([]);
  const peerSeries = shallowRef<PeerSeries[]>([]);

  api.onEvent('aggregates', (a) => (aggregates.value = markRaw(a)));
  // Another host shown: nothing of the host before (its peers, the Peers tab's count, the flows picked for the
  // chart) stays on screen while the new host's statistics are on their way.
  watch(
    () => hosts.key,
    () => {
      aggregates.value = null;
      chartPeers.value = [];
      peerSeries.value = [];
      error.value = null;
    },
  );

  async function load(): Promise<void> {
    const host = hosts.key;
    try {
      const a = await api.request('stats.get');
      if (hosts.key !== host) return;
      aggregates.value = markRaw(a);
      error.value = null;
    } catch (err) {
      if (hosts.key === host) error.value = (err as Error).message;
    }
  }

  function toggleChartPeer(peer: string): void {
    const has = chartPeers.value.includes(peer);
    if (has) chartPeers.value = chartPeers.value.filter((p) => p !== peer);
    else if (chartPeers.value.length < MAX_CHART_PEERS) chartPeers.value = [...chartPeers.value, peer];
    void loadPeerSeries();
  }

  let inFlight = false;
  async function loadPeerSeries(): Promise<void> {
    if (inFlight) return;
    if (!chartPeers.value.length) {
      peerSeries.value = [];
      return;
    }
    inFlight = true;
    const host = hosts.key;
    try {
      const series = await api.request('stats.peerSeries', { peers: chartPeers.value, maxPoints: 1000 });
      if (hosts.key !== host) return;
      peerSeries.value = markRaw(series);
      error.value = null;
    } catch (err) {
      if (hosts.key === host) error.value = (err as Error).message;
    } finally {
      inFlight = false;
    }
  }

  const peers = computed(() => aggregates.value?.peers ?? []);
  const addresses = computed(() => (aggregates.value?.topTalkers ?? []).map((t) => t.address));

  return {
    aggregates,
    error,
    chartPeers,
    peerSeries,
    peers,
    addresses,
    load,
    toggleChartPeer,
    loadPeerSeries,
  };
});
