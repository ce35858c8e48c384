/**
 * Remote agents in this window: the hosts the service reaches (electron/core/remote), which one the
 * window shows, and every host's peers side by side for the all-hosts view. Rows are per host: the
 * same remote peer seen from two hosts is two rows.
 */
import type { HostEvent, HostInfo, HostsAddParams, PeerStats } from '@common/contract';
import { defineStore } from 'pinia';
import { computed, markRaw, ref, shallowRef } from 'vue';
import { hostScope, localApi } from '../transport';

/** The key of this machine in `peersByHost`. */
export const LOCAL = 'local';

export interface HostPeerRow extends PeerStats {
  /** LOCAL or a host id. */
  host: string;
  hostName: string;
  /** The host is not connected now: its last known figures. */
  stale: boolean;
}

export const useHostsStore = defineStore('hosts', () => {
  const hosts = shallowRef<HostInfo[]>(hostScope.hosts);
  const selected = ref<string | null>(hostScope.selected);
  const peersByHost = shallowRef<Record<string, PeerStats[]>>({});
  const seenGeneration = new Map<string, number>();

  const setPeers = (host: string, peers: PeerStats[]): void => {
    peersByHost.value = { ...peersByHost.value, [host]: markRaw(peers) };
  };
  const loadPeers = (host: string): void => {
    const ask =
      host === LOCAL
        ? localApi.request('stats.get')
        : localApi.request('hosts.request', { host, method: 'stats.get' });
    void ask.then(
      (a) => setPeers(host, (a as { peers: PeerStats[] }).peers),
      () => undefined,
    );
  };

  hostScope.onHosts((list) => {
    hosts.value = list;
    if (!(LOCAL in peersByHost.value)) loadPeers(LOCAL);
    for (const h of list) {
      if (h.state === 'connected' && seenGeneration.get(h.id) !== h.generation) {
        seenGeneration.set(h.id, h.generation);
        loadPeers(h.id);
      }
    }
    const ids = new Set(list.map((h) => h.id));
    const kept = Object.fromEntries(
      Object.entries(peersByHost.value).filter(([k]) => k === LOCAL || ids.has(k)),
    );
    if (Object.keys(kept).length !== Object.keys(peersByHost.value).length) peersByHost.value = kept;
    if (selected.value !== null && !ids.has(selected.value)) select(null);
  });
  localApi.onEvent('aggregates', (a) => setPeers(LOCAL, a.peers));
  localApi.onEvent('host.event', (e: HostEvent) => {
    if (e.event === 'aggregates') setPeers(e.host, (e.data as { peers: PeerStats[] }).peers);
  });

  const byId = computed(() => new Map(hosts.value.map((h) => [h.id, h])));
  const current = computed(() => (selected.value === null ? null : (byId.value.get(selected.value) ?? null)));
  /**
   * What this window keeps per-host state under (an unsaved draft, the rules last read): LOCAL, or the
   * shown agent's address. Not its id: a restarted service numbers its hosts from h1 again, maybe in
   * another order. Null while the chosen host is not in the list (removed: the window goes back to LOCAL).
   */
  const key = computed(() => (selected.value === null ? LOCAL : (current.value?.url ?? null)));

  /** Every host's peers, one row per host and flow. */
  const mergedPeers = computed<HostPeerRow[]>(() => {
    const rows: HostPeerRow[] = [];
    for (const [host, peers] of Object.entries(peersByHost.value)) {
      const info = host === LOCAL ? null : byId.value.get(host);
      if (host !== LOCAL && !info) continue;
      const hostName = info ? info.name : 'this machine';
      const stale = info ? info.state !== 'connected' : false;
      for (const p of peers) rows.push({ ...p, host, hostName, stale });
    }
    return rows;
  });

  function select(host: string | null): void {
    selected.value = host;
    hostScope.select(host);
  }

  function start(): void {
    loadPeers(LOCAL);
  }

  const add = (params: HostsAddParams) => localApi.request('hosts.add', params);
  const remove = (host: string) => localApi.request('hosts.remove', { host });
  const trust = (host: string, fingerprint: string) => localApi.request('hosts.trust', { host, fingerprint });

  return { hosts, selected, current, key, mergedPeers, select, start, add, remove, trust };
});
