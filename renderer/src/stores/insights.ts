/**
 * Problems, Paths, Neighbours and Alerts as the service pushes them (at most twice a second), replaced
 * wholesale (shallowRef), never deeply observed. Firings also raise a desktop notification in browser mode
 * (the Electron main process shows its own). They are the shown host's: an answer that comes after a host
 * switch is another host's, and is not shown (the alert rules are filed under their own host).
 */
import type {
  AlertFiring,
  AlertRulesInfo,
  NeighboursSnapshot,
  PathInfo,
  ProblemInfo,
} from '@common/insights';
import { firingText } from '@common/firing-text';
import { defineStore } from 'pinia';
import { markRaw, ref, shallowRef, watch } from 'vue';
import { api, connection, inBrowser } from '../transport';
import { useHostsStore } from './hosts';
import { useViewStore } from './view';

const EMPTY_NEIGHBOURS: NeighboursSnapshot = {
  routers: [],
  hosts: [],
  findings: [],
  learningUntilNs: null,
  allowRouters: null,
};

/** The browser's permission for notifications: 'unsupported' where the page cannot have any. */
function permissionNow(): NotificationPermission | 'unsupported' {
  return typeof Notification === 'undefined' ? 'unsupported' : Notification.permission;
}

export const useInsightsStore = defineStore('insights', () => {
  const hosts = useHostsStore();
  const problems = shallowRef<ProblemInfo[]>([]);
  const paths = shallowRef<PathInfo[]>([]);
  const neighbours = shallowRef<NeighboursSnapshot>(EMPTY_NEIGHBOURS);
  const firings = shallowRef<AlertFiring[]>([]);
  /**
   * Each host's alert rules as last read, under the host's key (useHostsStore().key) when they were asked
   * for: a reply that comes after a host switch is still filed under its own host, and the Alerts view
   * checks a host's draft against that host's file only.
   */
  const rulesByHost = shallowRef<Readonly<Record<string, AlertRulesInfo>>>({});
  const error = ref<string | null>(null);
  const permission = ref(permissionNow());
  /** Firings not yet seen in the Alerts view (the tab's badge). */
  const unseen = ref(0);

  api.onEvent('problems', (p) => (problems.value = markRaw(p)));
  api.onEvent('paths', (p) => (paths.value = markRaw(p)));
  api.onEvent('neighbours', (n) => (neighbours.value = markRaw(n)));
  // Events come only from the host shown (hosts/scope.ts).
  api.onEvent('alert.rules', (r) => setRules(hosts.key, r));
  api.onEvent('alert.fired', (f) => {
    firings.value = markRaw([...firings.value, f].slice(-500));
    unseen.value++;
    notify(f);
  });

  // Another host shown: none of the host before's problems, paths, neighbours or firings (nor the tabs' counts)
  // stay on screen while the new host's are on their way (load, on its connection). Its rules stay filed.
  watch(
    () => hosts.key,
    () => {
      problems.value = [];
      paths.value = [];
      neighbours.value = EMPTY_NEIGHBOURS;
      firings.value = [];
      unseen.value = 0;
      error.value = null;
    },
  );

  function setRules(host: string | null, info: AlertRulesInfo): void {
    if (host !== null) rulesByHost.value = { ...rulesByHost.value, [host]: markRaw(info) };
  }

  function notify(f: AlertFiring): void {
    if (!inBrowser || permissionNow() !== 'granted') return;
    const { title, body } = firingText(f);
    try {
      new Notification(title, { body, tag: `icmpcap-${f.rule}` });
    } catch {
      // Some browsers allow notifications only from a service worker: the Alerts view still lists it.
    }
  }

  /** Asks the browser once, from the user's click (browsers ignore requests made without one). */
  async function askPermission(): Promise<void> {
    if (typeof Notification === 'undefined') return;
    permission.value = await Notification.requestPermission();
  }

  async function load(): Promise<void> {
    const host = hosts.key;
    try {
      const [p, t, n, f, r] = await Promise.all([
        api.request('problems.list'),
        api.request('paths.list'),
        api.request('neighbours.get'),
        api.request('alerts.firings'),
        api.request('alerts.rules'),
      ]);
      setRules(host, r);
      // Asked of the host shown before a switch: the window shows another now, loaded on the switch.
      if (hosts.key !== host) return;
      problems.value = markRaw(p);
      paths.value = markRaw(t);
      neighbours.value = markRaw(n);
      firings.value = markRaw(f);
      error.value = null;
    } catch (err) {
      if (hosts.key === host) error.value = (err as Error).message;
    }
  }

  /** Saves the rules of `host`, which must be the host shown: the request goes to that one. */
  async function saveRules(host: string, texts: string[]): Promise<AlertRulesInfo> {
    if (hosts.key !== host) throw new Error('Not saved: the window shows another host now.');
    const info = await api.request('alerts.setRules', { rules: texts });
    if (info.saved) setRules(host, info);
    return info;
  }

  async function configureNeighbours(p: { learnSeconds?: number; allowRouters?: string[] }): Promise<void> {
    const host = hosts.key;
    const n = await api.request('neighbours.configure', p);
    if (hosts.key === host) neighbours.value = markRaw(n);
  }

  /**
   * Selects the evidence packets in the table: the first one selected (details), all of them marked. A
   * display filter that hides them is lifted.
   */
  async function selectPackets(nos: readonly number[]): Promise<void> {
    const view = useViewStore();
    const sorted = [...new Set(nos)].sort((a, b) => a - b);
    if (sorted.length === 0) return;
    view.clearSelection();
    view.marked = new Set(sorted);
    view.selected = sorted[0]!;
    await view.locateSelection(true);
    if (view.selectedPos === null && view.filter) await view.applyFilter('');
  }

  let seenGeneration = -1;
  const reload = (s: typeof connection.status): void => {
    if (s.state === 'connected' && s.generation !== seenGeneration) {
      seenGeneration = s.generation;
      void load();
    }
  };
  connection.onStatus(reload);
  reload(connection.status);

  return {
    problems,
    paths,
    neighbours,
    firings,
    rulesByHost,
    error,
    permission,
    unseen,
    load,
    saveRules,
    configureNeighbours,
    selectPackets,
    askPermission,
  };
});
