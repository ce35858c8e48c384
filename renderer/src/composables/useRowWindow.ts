/**
 * Keeps the rows of the visible window fetched from the service: one request in flight at a time, and
 * always a last fetch for the latest window, so fast scrolling never queues stale requests. One row
 * before the window comes along too, for the delta time of the first visible row. At a host switch the rows
 * shown go at once (none until the new host's come), and rows that come after it are another host's: not
 * shown, the window is fetched from the host shown.
 */
import type { Row } from '@common/contract';
import { type Ref, markRaw, shallowRef, watch } from 'vue';
import { useHostsStore } from '../stores/hosts';
import { api } from '../transport';

export function useRowWindow(
  first: Ref<number>,
  visible: Ref<number>,
  viewCount: Ref<number>,
  version: Ref<number>,
) {
  const hosts = useHostsStore();
  const rows = shallowRef<Row[]>([]);
  const rowsStart = shallowRef(0);
  const prevRow = shallowRef<Row | null>(null);
  let inFlight = false;
  let again = false;

  async function fetchWindow(): Promise<void> {
    if (inFlight) {
      again = true;
      return;
    }
    inFlight = true;
    try {
      do {
        again = false;
        const host = hosts.key;
        const start = first.value;
        const from = Math.max(0, start - 1);
        const count = Math.min(visible.value + (start - from), Math.max(0, viewCount.value - from), 2000);
        const result =
          count > 0 ? await api.request('view.rows', { start: from, count }) : { start: from, rows: [] };
        if (hosts.key !== host) {
          // The rows shown are that host's too: none until the shown host's come.
          rows.value = [];
          prevRow.value = null;
          again = true;
          continue;
        }
        const list = result.rows;
        const hasPrev = result.start < start && list.length > 0;
        prevRow.value = hasPrev ? markRaw(list[0]!) : null;
        rows.value = markRaw(hasPrev ? list.slice(1) : list);
        rowsStart.value = hasPrev ? result.start + 1 : result.start;
      } while (again);
    } catch {
      // The status bar shows transport errors; the next change retries.
    } finally {
      inFlight = false;
    }
  }

  watch([first, visible, viewCount, version], () => void fetchWindow(), { immediate: true });
  watch(
    () => hosts.key,
    () => {
      rows.value = [];
      prevRow.value = null;
      void fetchWindow();
    },
  );
  return { rows, rowsStart, prevRow, refresh: fetchWindow };
}
