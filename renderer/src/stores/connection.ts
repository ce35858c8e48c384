/**
 * The page's link to the service, and what happens around a reconnect. Each time the transport
 * (re)connects, `hello` brings the service's state; when it is the same capture as before (same start,
 * same source, no fewer records) the view resumes as it was: the filter and sort still live in the
 * service, the selection and scroll position in this page. A different service (restarted) gets this
 * page's filter applied again, and the selection goes. Another host than the one lost (a switch of host)
 * is not a restart: its state is taken as at a first connection.
 */
import type { CaptureState, Counts } from '@common/contract';
import { defineStore } from 'pinia';
import { computed, shallowRef } from 'vue';
import { connection } from '../transport';
import { useCaptureStore } from './capture';
import { useHostsStore } from './hosts';
import { useStatsStore } from './stats';
import { useViewStore } from './view';

function sameCapture(a: { state: CaptureState; counts: Counts }, b: { state: CaptureState; counts: Counts }) {
  return (
    a.state.startedAtMs === b.state.startedAtMs &&
    a.state.source === b.state.source &&
    a.state.file === b.state.file &&
    b.counts.total + (b.counts.evicted ?? 0) >= a.counts.total + (a.counts.evicted ?? 0)
  );
}

export const useConnectionStore = defineStore('connection', () => {
  const status = shallowRef(connection.status);
  /** When the service was lost (the retries in between do not move it). */
  const lostAtMs = shallowRef(0);
  const connected = computed(() => status.value.state === 'connected');
  /** Disconnected after having been connected (the first attempt failing is the "cannot reach" notice). */
  const lost = computed(() => status.value.state !== 'connected' && status.value.generation > 0);

  /** The capture when the connection was lost, and the host it was of (useHostsStore().key). */
  let before: { host: string | null; state: CaptureState; counts: Counts } | null = null;
  /** The host whose capture the page holds: the last one connected to (null: none yet). */
  let holding: string | null = null;
  let seenGeneration = 0;

  async function onConnected(): Promise<void> {
    const capture = useCaptureStore();
    const view = useViewStore();
    const stats = useStatsStore();
    const host = useHostsStore().key;
    await capture.connect();
    // The window shows another host now: its own connection does the rest.
    if (!capture.connected || useHostsStore().key !== host) return;
    // Not the host lost: a switch of host, not a reconnect.
    if (before !== null && before.host !== host) before = null;
    holding = host;
    const now = { state: capture.state, counts: capture.counts };
    if (before === null) {
      // First connection: the view lives in the service, a filter applied before this page loaded is still in
      // force. It is the applied filter, not a request of this page: text typed meanwhile stays in the bar.
      view.followService(now.counts, true);
    } else if (sameCapture(before, now)) {
      view.followService(now.counts, true); // another window may have changed the view meanwhile
      view.version++;
      await view.locateSelection(false);
    } else {
      view.clearSelection();
      view.sort = now.counts.sort;
      if (view.filter && view.filter !== now.counts.filter) await view.applyFilter(view.filter);
      else view.followService(now.counts, true);
      view.version++;
    }
    await stats.load();
  }

  connection.onStatus((s) => {
    const capture = useCaptureStore();
    if (s.state !== 'connected' && status.value.state === 'connected') {
      const host = holding ?? useHostsStore().key;
      // After a switch of host the page holds no host's capture (the new host has not answered): nothing to
      // resume, the next connection is a first one.
      before = capture.waitingFor === null ? { host, state: capture.state, counts: capture.counts } : null;
      lostAtMs.value = Date.now();
      capture.connected = false;
    }
    status.value = s;
    if (s.state === 'connected' && s.generation !== seenGeneration) {
      seenGeneration = s.generation;
      void onConnected();
    }
  });

  function start(): void {
    if (connection.status.state === 'connected' && seenGeneration === 0) {
      // Electron: always connected.
      seenGeneration = connection.status.generation;
      void onConnected();
    } else connection.open();
  }

  return { status, lostAtMs, connected, lost, start, retryNow: () => connection.open() };
});
