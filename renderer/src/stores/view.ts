/**
 * The table's view of the capture: the applied filter and sort (both live in the service, shared by every
 * window that looks at it), and the selection, kept by record number so it survives new rows, sorting and
 * filter changes. All of the shown host's: an answer that comes after a host switch is another host's, and
 * is not shown.
 */
import type { Counts, FilterProgress, Row, SortColumn } from '@common/contract';
import { defineStore } from 'pinia';
import { ref, shallowRef, watch } from 'vue';
import { RequestError, api } from '../transport';
import { useCaptureStore } from './capture';
import { useFiltersStore } from './filters';
import { useHostsStore } from './hosts';

export interface FilterError {
  message: string;
  position: number | null;
}

export const useViewStore = defineStore('view', () => {
  const hosts = useHostsStore();
  /** The filter the service's view applies, whoever applied it. */
  const filter = ref('');
  /** The applied filter came from the service (another window, or before this page opened), not this page. */
  const appliedElsewhere = ref(false);
  /** The last filter asked for, applied or not: the filter bar shows it. */
  const requested = ref('');
  const filterError = shallowRef<FilterError | null>(null);
  const applying = ref(false);
  const applyStartedMs = ref(0);
  const lastApplyMs = ref<number | null>(null);
  /** The service's word on the filter being (or last) applied: why it is slow, how far it has got. */
  const applyProgress = shallowRef<FilterProgress | null>(null);
  /** A filter put into the bar without applying it ("prepare as filter"); seq makes repeats count. */
  const prepared = shallowRef<{ text: string; seq: number } | null>(null);
  let preparedSeq = 0;
  function prepareFilter(text: string): void {
    prepared.value = { text, seq: ++preparedSeq };
  }
  api.onEvent('filter', (p) => {
    if (p.filter === requested.value) applyProgress.value = p;
  });
  const sort = shallowRef<{ column: SortColumn | null; descending: boolean }>({
    column: null,
    descending: false,
  });
  /** Bumped whenever the rows at a position may have changed without the count changing. */
  const version = ref(0);

  const selected = ref<number | null>(null);
  /** Position of the selected record in the view, or null when hidden by the filter. */
  const selectedPos = ref<number | null>(null);
  /** Extra rows marked with ctrl/shift-click, for "export selected". */
  const marked = shallowRef<ReadonlySet<number>>(new Set());
  /** Asks the table to bring a position into view (set by keyboard moves and filter changes). */
  const revealPos = ref<{ pos: number; seq: number } | null>(null);
  let revealSeq = 0;

  function reveal(pos: number): void {
    revealPos.value = { pos, seq: ++revealSeq };
  }

  async function locateSelection(andReveal: boolean): Promise<void> {
    if (selected.value === null) return;
    const no = selected.value;
    const host = hosts.key;
    try {
      const { position } = await api.request('view.positionOf', { no });
      if (selected.value !== no || hosts.key !== host) return;
      selectedPos.value = position;
      if (andReveal && position !== null) reveal(position);
    } catch {
      // An older service without positionOf: keep the selection, lose only its position.
    }
  }

  // The service pushes its view (filter, sort) with the counts; another window may change it at any time.
  // Followed on change only: a push that was on its way before this page's own apply ended is not news.
  let serviceFilter: string | null = null;
  let serviceSort = '';
  let sortsPending = 0;
  function followService(c: Counts, force = false): void {
    if (force || c.filter !== serviceFilter) {
      serviceFilter = c.filter;
      // This page's own apply under way: its answer says what is applied (see applyFilter).
      if (!applying.value && c.filter !== filter.value) {
        filter.value = c.filter;
        appliedElsewhere.value = true;
        lastApplyMs.value = null;
        version.value++;
      }
    }
    const sortKey = `${c.sort.column}/${c.sort.descending}`;
    if (force || sortKey !== serviceSort) {
      serviceSort = sortKey;
      const s = sort.value;
      if (sortsPending === 0 && (s.column !== c.sort.column || s.descending !== c.sort.descending)) {
        sort.value = c.sort;
        version.value++;
      }
    }
  }
  api.onEvent('counts', (c) => followService(c));
  /**
   * This page's filter or sort went to a host the window no longer shows (a switch meanwhile): the view is
   * the shown host's, as it last said.
   */
  const followShown = (): void => followService(useCaptureStore().counts, true);

  let applySeq = 0;
  /** Applies a filter in the service; a newer apply supersedes (and silences) an older one still running. */
  async function applyFilter(text: string): Promise<boolean> {
    const mine = ++applySeq;
    const host = hosts.key;
    requested.value = text;
    if (applyProgress.value?.filter !== text) applyProgress.value = null;
    applying.value = true;
    applyStartedMs.value = performance.now();
    try {
      const result = await api.request('view.setFilter', { filter: text });
      if (mine !== applySeq || hosts.key !== host) return false;
      filter.value = result.filter;
      appliedElsewhere.value = false;
      filterError.value = null;
      lastApplyMs.value = result.ms;
      const capture = useCaptureStore();
      capture.counts = { ...capture.counts, view: result.view, filter: result.filter };
      useFiltersStore().remember(text);
      version.value++;
      await locateSelection(true);
      return true;
    } catch (err) {
      if (mine !== applySeq || hosts.key !== host) return false;
      const e = err as RequestError;
      filterError.value = { message: e.message, position: e.position ?? null };
      return false;
    } finally {
      if (mine === applySeq) {
        applying.value = false;
        // Not applied (an error, or another window's filter replaced it): the view is what the service
        // last said. Asked of another host than the one shown now: the view is the shown host's.
        if (hosts.key !== host) followShown();
        else if (serviceFilter !== null && filter.value !== serviceFilter && filterError.value) {
          filter.value = serviceFilter;
          appliedElsewhere.value = true;
          lastApplyMs.value = null;
          version.value++;
        }
      }
    }
  }

  /** The sort this page asked for and is waiting on: the service's word on how far it has got. */
  const sorting = shallowRef<{
    column: SortColumn | null;
    descending: boolean;
    fraction: number;
    startedMs: number;
  } | null>(null);
  api.onEvent('sort', (p) => {
    const s = sorting.value;
    const same = s !== null && s.column === p.column && s.descending === p.descending;
    if (p.fraction < 1) {
      // Another window's sort (or this page's, after a reconnect) shows too: the view is theirs as well.
      if (same) sorting.value = { ...s, fraction: p.fraction };
      else if (sortsPending === 0) sorting.value = { ...p, startedMs: performance.now() };
    } else if (sortsPending === 0) sorting.value = null;
  });
  let sortSeq = 0;
  let sortCancelled = -1;

  async function setSort(column: SortColumn | null, descending: boolean): Promise<void> {
    sortsPending++;
    const mine = ++sortSeq;
    const host = hosts.key;
    sorting.value = { column, descending, fraction: 0, startedMs: performance.now() };
    try {
      const { view } = await api.request('view.setSort', { column, descending });
      if (hosts.key !== host) return;
      const capture = useCaptureStore();
      capture.counts = { ...capture.counts, view };
      sort.value = { column, descending };
      version.value++;
      await locateSelection(true);
    } catch (err) {
      // Replaced by a newer sort or filter (here or in another window), or cancelled: not an error. The
      // connection lost meanwhile: the banner says so, and the view follows the service's once back.
      const stopped = err instanceof RequestError && (err.code === 'cancelled' || err.code === 'transport');
      if (mine === sortSeq && sortCancelled !== mine && !stopped && hosts.key === host)
        filterError.value = { message: `sorting: ${(err as Error).message}`, position: null };
    } finally {
      sortsPending--;
      if (mine === sortSeq) sorting.value = null;
      if (hosts.key !== host) followShown();
    }
  }

  /** Stops the sort under way; the table keeps the order it shows. */
  async function cancelSort(): Promise<void> {
    sortCancelled = sortSeq;
    sorting.value = null;
    await api.request('view.cancelSort');
  }

  /** Header click: ascending, then descending, then the capture order. */
  function cycleSort(column: SortColumn): Promise<void> {
    const s = sort.value;
    if (s.column !== column) return setSort(column, false);
    if (!s.descending) return setSort(column, true);
    return setSort(null, false);
  }

  function select(row: Row, pos: number, how: 'only' | 'toggle' | 'range' = 'only'): void {
    if (how === 'toggle') {
      const next = new Set(marked.value);
      if (next.has(row.no)) next.delete(row.no);
      else next.add(row.no);
      marked.value = next;
    } else if (how === 'only') marked.value = new Set();
    selected.value = row.no;
    selectedPos.value = pos;
  }

  function markRange(nos: number[]): void {
    marked.value = new Set([...marked.value, ...nos]);
  }

  /** Moves the selection to a position, fetching that row when it is not on screen. */
  async function selectAt(pos: number, viewCount: number, onScreen: readonly Row[], onScreenStart: number) {
    if (viewCount === 0) return;
    const p = Math.max(0, Math.min(viewCount - 1, pos));
    let row = onScreen[p - onScreenStart];
    if (!row) {
      const host = hosts.key;
      const result = await api.request('view.rows', { start: p, count: 1 });
      if (hosts.key !== host) return;
      row = result.rows[0];
    }
    if (!row) return;
    select(row, p);
    reveal(p);
  }

  function clearSelection(): void {
    selected.value = null;
    selectedPos.value = null;
    marked.value = new Set();
  }

  // Another data set (Clear, Start, Open, or a capture that is not the one selected from): the
  // selection and the details shown for it go.
  const shown = useCaptureStore();
  watch(
    () => `${shown.datasetKey}|${shown.counts.total === 0}`,
    () => clearSelection(),
  );

  /** The records "export selected" means: the marked ones, else the selected one. */
  function selectedNos(): number[] {
    if (marked.value.size) return [...marked.value].sort((a, b) => a - b);
    return selected.value === null ? [] : [selected.value];
  }

  return {
    filter,
    appliedElsewhere,
    followService,
    requested,
    filterError,
    applying,
    applyStartedMs,
    lastApplyMs,
    applyProgress,
    prepared,
    prepareFilter,
    sort,
    version,
    selected,
    selectedPos,
    marked,
    revealPos,
    applyFilter,
    setSort,
    sorting,
    cancelSort,
    cycleSort,
    select,
    markRange,
    selectAt,
    clearSelection,
    selectedNos,
    locateSelection,
    reveal,
  };
});

export { RequestError };
