/**
 * The Alerts view's list of rules, per host: alerts.conf's as last read, or the user's unsaved draft of
 * them. The draft is kept here, not in the view, so it outlasts a visit to another view, as in any editor;
 * it ends when saved or discarded. Each host has its own: switching host shows that host's draft or file,
 * and Save writes a draft only to the host it is of.
 */
import type { AlertRulesInfo, RuleCheck } from '@common/insights';
import { defineStore } from 'pinia';
import { computed, ref, watch } from 'vue';
import { api } from '../transport';
import { useHostsStore } from './hosts';
import { useInsightsStore } from './insights';

/** Rules the user has changed (added a row, typed, removed one) and not saved. */
export interface RuleDraft {
  texts: string[];
  checks: RuleCheck[];
  /** alerts.conf's rules as last read while editing; null while editing began before the first read. */
  fromFile: string[] | null;
}

const CHANGED_ELSEWHERE = 'alerts.conf changed elsewhere: Save replaces it with the rules here.';

const same = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && a.every((t, i) => t === b[i]);
const written = (texts: readonly string[]): string[] => texts.filter((t) => t.trim() !== '');
const fileRules = (info: AlertRulesInfo | null | undefined) =>
  (info?.rules ?? []).filter((r) => r.origin === 'file');

export const useAlertRulesStore = defineStore('alertRules', () => {
  const hosts = useHostsStore();
  const insights = useInsightsStore();
  /** Drafts under the host's key (useHostsStore().key): one host's is never shown for another. */
  const drafts = ref<Record<string, RuleDraft>>({});
  /** What each host's last save, check or read of the file had to say. */
  const statuses = ref<Record<string, string>>({});

  const info = computed(() => (hosts.key === null ? null : (insights.rulesByHost[hosts.key] ?? null)));
  const draft = computed(() => (hosts.key === null ? null : (drafts.value[hosts.key] ?? null)));
  /** The rows shown: the draft's, else the file's. */
  const texts = computed(() => draft.value?.texts ?? fileRules(info.value).map((r) => r.text));
  const checks = computed(() => draft.value?.checks ?? fileRules(info.value).map((r) => r.check));
  const cliRules = computed(() => (info.value?.rules ?? []).filter((r) => r.origin === 'command-line'));
  const file = computed(() => info.value?.file ?? null);
  const status = computed(() => (hosts.key === null ? null : (statuses.value[hosts.key] ?? null)));
  const edited = computed(() => draft.value !== null);

  function setStatus(host: string, text: string | null): void {
    if (text === null) delete statuses.value[host];
    else statuses.value[host] = text;
  }

  /** The host's draft, begun from its file's rules on the first change. */
  function editing(host: string): RuleDraft {
    if (!drafts.value[host]) {
      const read = insights.rulesByHost[host];
      const rules = fileRules(read);
      const fromFile = rules.map((r) => r.text);
      drafts.value[host] = {
        texts: [...fromFile],
        checks: rules.map((r) => r.check),
        fromFile: read ? fromFile : null,
      };
    }
    return drafts.value[host];
  }

  /**
   * A host's rules were read (the first load arriving late, another window's save): its draft, if any, keeps
   * the user's edits and says when the file changed under them.
   */
  function arrived(host: string, read: AlertRulesInfo): void {
    const d = drafts.value[host];
    if (!d) return; // the list shows the file's rules as they are
    const rules = fileRules(read);
    const incoming = rules.map((r) => r.text);
    if (d.fromFile === null) {
      // Rows added before the file's rules arrived: the file's come first, the user's after them.
      d.texts.unshift(...incoming);
      d.checks.unshift(...rules.map((r) => r.check));
      d.fromFile = incoming;
      return;
    }
    const changed = !same(incoming, d.fromFile);
    d.fromFile = incoming;
    if (same(incoming, d.texts))
      delete drafts.value[host]; // the file holds just what the draft does
    else if (changed && !same(incoming, written(d.texts))) setStatus(host, CHANGED_ELSEWHERE);
  }

  watch(
    () => insights.rulesByHost,
    (now, before) => {
      for (const [host, read] of Object.entries(now)) if (read !== before[host]) arrived(host, read);
    },
  );

  let timer: ReturnType<typeof setTimeout> | undefined;
  let seq = 0;

  /** Checks the host's draft as typed; only while it is the host shown, as the request goes there. */
  async function check(host: string): Promise<void> {
    const d = drafts.value[host];
    if (!d || hosts.key !== host) return;
    const mine = ++seq;
    const result = await api.request('alerts.check', { rules: [...d.texts] });
    if (mine === seq && drafts.value[host] === d) d.checks = result;
  }

  function checkSoon(host: string): void {
    clearTimeout(timer);
    timer = setTimeout(() => void check(host), 200);
  }

  // A check left undone when the host was switched is done on coming back.
  watch(
    () => hosts.key,
    (host) => {
      if (host !== null && drafts.value[host]) checkSoon(host);
    },
  );

  /** Runs `change` on the shown host's draft (begun if need be). */
  function change(what: (d: RuleDraft, host: string) => void): void {
    const host = hosts.key;
    if (host !== null) what(editing(host), host);
  }

  const add = (): void =>
    change((d) => {
      d.texts.push('');
      d.checks.push({ ok: true, name: '' });
    });

  const type = (i: number, text: string): void =>
    change((d, host) => {
      d.texts[i] = text;
      setStatus(host, null);
      checkSoon(host);
    });

  const remove = (i: number): void =>
    change((d, host) => {
      d.texts.splice(i, 1);
      d.checks.splice(i, 1);
      setStatus(host, null);
    });

  /** Drops the shown host's draft: the list is its file's rules again. */
  function discard(): void {
    const host = hosts.key;
    if (host === null) return;
    clearTimeout(timer);
    delete drafts.value[host];
    setStatus(host, null);
  }

  async function save(): Promise<void> {
    const host = hosts.key;
    if (host === null) return;
    clearTimeout(timer);
    try {
      const result = await insights.saveRules(host, written(texts.value));
      if (!result.saved) {
        await check(host);
        setStatus(host, result.message ?? 'Not saved: fix the rules marked in red first.');
      } else {
        delete drafts.value[host]; // the list shows the file as saved
        setStatus(host, `Saved to ${result.file}.`);
      }
    } catch (err) {
      setStatus(host, (err as Error).message);
    }
  }

  return { texts, checks, cliRules, file, status, edited, add, type, remove, discard, save };
});
