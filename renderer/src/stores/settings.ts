/** Table layout and time display preferences, persisted in localStorage. */
import { defineStore } from 'pinia';
import { computed, ref, watch } from 'vue';
import { COLUMNS, type ColumnId } from '../columns';
import type { TimeFormat, TimePrecision } from '../format';

export type { TimeFormat, TimePrecision };

interface Saved {
  order: ColumnId[];
  hidden: ColumnId[];
  widths: Partial<Record<ColumnId, number>>;
  timeFormat: TimeFormat;
  precision: TimePrecision;
}

const KEY = 'icmpcap.tableSettings';
const DEFAULT_ORDER = COLUMNS.map((c) => c.id);

function load(): Saved {
  const fallback: Saved = {
    order: DEFAULT_ORDER,
    hidden: [],
    widths: {},
    timeFormat: 'absolute',
    precision: 'us',
  };
  try {
    const saved = JSON.parse(localStorage.getItem(KEY) ?? 'null') as Partial<Saved> | null;
    if (!saved) return fallback;
    // Keep only known columns, and add any new ones at the end.
    const order = (saved.order ?? []).filter((id) => DEFAULT_ORDER.includes(id));
    for (const id of DEFAULT_ORDER) if (!order.includes(id)) order.push(id);
    return { ...fallback, ...saved, order };
  } catch {
    return fallback;
  }
}

export const useSettingsStore = defineStore('settings', () => {
  const initial = load();
  const order = ref<ColumnId[]>(initial.order);
  const hidden = ref<ColumnId[]>(initial.hidden);
  const widths = ref<Partial<Record<ColumnId, number>>>(initial.widths);
  const timeFormat = ref<TimeFormat>(initial.timeFormat);
  const precision = ref<TimePrecision>(initial.precision);

  const visibleColumns = computed(() =>
    order.value.filter((id) => !hidden.value.includes(id)).map((id) => COLUMNS.find((c) => c.id === id)!),
  );
  const gridTemplate = computed(
    () => `${visibleColumns.value.map((c) => `${widths.value[c.id] ?? c.width}px`).join(' ')} 1fr`,
  );
  const totalWidth = computed(() =>
    visibleColumns.value.reduce((sum, c) => sum + (widths.value[c.id] ?? c.width), 0),
  );

  function toggle(id: ColumnId): void {
    if (hidden.value.includes(id)) hidden.value = hidden.value.filter((h) => h !== id);
    else if (visibleColumns.value.length > 1) hidden.value = [...hidden.value, id];
  }

  function move(id: ColumnId, before: ColumnId | null): void {
    if (id === before) return;
    const next = order.value.filter((c) => c !== id);
    const at = before === null ? next.length : next.indexOf(before);
    next.splice(at < 0 ? next.length : at, 0, id);
    order.value = next;
  }

  function resize(id: ColumnId, width: number): void {
    widths.value = { ...widths.value, [id]: Math.max(32, Math.round(width)) };
  }

  function reset(): void {
    order.value = DEFAULT_ORDER;
    hidden.value = [];
    widths.value = {};
  }

  watch(
    [order, hidden, widths, timeFormat, precision],
    () => {
      const saved: Saved = {
        order: order.value,
        hidden: hidden.value,
        widths: widths.value,
        timeFormat: timeFormat.value,
        precision: precision.value,
      };
      localStorage.setItem(KEY, JSON.stringify(saved));
    },
    { deep: true },
  );

  return {
    order,
    hidden,
    widths,
    timeFormat,
    precision,
    visibleColumns,
    gridTemplate,
    totalWidth,
    toggle,
    move,
    resize,
    reset,
  };
});
