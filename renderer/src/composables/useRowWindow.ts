/**
 * Keeps the rows of the visible window fetched from the service: one request in flight at a time, and
 * always a last fetch for the latest window, so fast scrolling never queues stale requests.
 */
import type { Row } from '@common/contract';
import { type Ref, shallowRef, watch } from 'vue';
import { api } from '../transport';

export function useRowWindow(first: Ref<number>, visible: Ref<number>, viewCount: Ref<number>) {
  const rows = shallowRef<Row[]>([]);
  const rowsStart = shallowRef(0);
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
        const start = first.value;
        const count = Math.min(visible.value, Math.max(0, viewCount.value - start));
        const result = await api.request('view.rows', { start, count });
        rows.value = result.rows;
        rowsStart.value = result.start;
      } while (again);
    } catch {
      // The status bar shows transport errors; the next change retries.
    } finally {
      inFlight = false;
    }
  }

  watch([first, visible, viewCount], () => void fetchWindow(), { immediate: true });
  return { rows, rowsStart, refresh: fetchWindow };
}
