/** Filter history (up/down in the filter bar) and named saved filters, both kept in localStorage. */
import { defineStore } from 'pinia';
import { ref } from 'vue';

const HISTORY_KEY = 'icmpcap.filterHistory';
const SAVED_KEY = 'icmpcap.savedFilters';
const HISTORY_MAX = 50;

export interface SavedFilter {
  name: string;
  filter: string;
}

function load<T>(key: string, fallback: T): T {
  try {
    const raw = localStorage.getItem(key);
    return raw ? (JSON.parse(raw) as T) : fallback;
  } catch {
    return fallback;
  }
}

export const useFiltersStore = defineStore('filters', () => {
  /** Newest first. */
  const history = ref<string[]>(load<string[]>(HISTORY_KEY, []));
  const saved = ref<SavedFilter[]>(load<SavedFilter[]>(SAVED_KEY, []));

  function remember(filter: string): void {
    const f = filter.trim();
    if (!f) return;
    history.value = [f, ...history.value.filter((h) => h !== f)].slice(0, HISTORY_MAX);
    localStorage.setItem(HISTORY_KEY, JSON.stringify(history.value));
  }

  function save(name: string, filter: string): void {
    const n = name.trim();
    if (!n || !filter.trim()) return;
    saved.value = [...saved.value.filter((s) => s.name !== n), { name: n, filter: filter.trim() }];
    localStorage.setItem(SAVED_KEY, JSON.stringify(saved.value));
  }

  function remove(name: string): void {
    saved.value = saved.value.filter((s) => s.name !== name);
    localStorage.setItem(SAVED_KEY, JSON.stringify(saved.value));
  }

  return { history, saved, remember, save, remove };
});
