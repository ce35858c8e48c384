/**
 * The host the window shows: this machine, or a remote agent the service reaches for it
 * (electron/core/remote). Stores and views use `api` and `connection` as before; with a remote host
 * chosen, requests go to it as `hosts.request` and its relayed events (`host.event`) come out as if
 * they were this service's own. A host switch, or a remote host coming back, is a new connection
 * generation, so the stores reload the view as after a reconnect; a remote host that is gone is a
 * disconnected connection (the window greys, the banner says since when).
 */
import type {
  EventName,
  Events,
  HostEvent,
  HostInfo,
  IcmpcapApi,
  PageRequestName,
  PageRequestParams,
  Results,
} from '@common/contract';
import type { Connection, ConnectionStatus } from '../transport';

type Listener = (data: unknown) => void;
type StatusListener = (s: ConnectionStatus) => void;

export interface HostScope {
  api: IcmpcapApi;
  connection: Connection;
  /** The chosen host's id, or null for this machine. */
  readonly selected: string | null;
  select(host: string | null): void;
  /** The remote hosts as the service last told. */
  readonly hosts: HostInfo[];
  onHosts(listener: (hosts: HostInfo[]) => void): () => void;
}

function clock(ms: number): string {
  return new Date(ms).toLocaleTimeString();
}

export function createHostScope(base: IcmpcapApi, baseConnection: Connection): HostScope {
  let selected: string | null = null;
  let hosts: HostInfo[] = [];
  let generation = 0;
  let identity = '';
  const listeners = new Map<string, Set<Listener>>();
  const hostListeners = new Set<(hosts: HostInfo[]) => void>();
  const statusListeners = new Set<StatusListener>();
  const forwarded = new Set<string>();

  const fire = (event: string, data: unknown): void => {
    for (const l of listeners.get(event) ?? []) l(data);
  };

  const compute = (): ConnectionStatus => {
    const b = baseConnection.status;
    const host = selected === null ? null : (hosts.find((h) => h.id === selected) ?? null);
    let status: ConnectionStatus;
    if (b.state !== 'connected' || selected === null) status = { ...b };
    else if (!host) {
      status = { ...b, state: 'disconnected', reason: 'this host was removed', hint: null, retryAtMs: null };
    } else if (host.state === 'connected') {
      status = { ...b, state: 'connected', reason: null, hint: null, retryAtMs: null };
    } else {
      const since = host.unreachableSinceMs;
      const reason = `${host.name} is unreachable${since ? ` since ${clock(since)}` : ''}`;
      status = {
        state: host.state === 'connecting' ? 'connecting' : 'disconnected',
        generation: 0,
        sinceMs: since ?? b.sinceMs,
        retryAtMs: host.retryAtMs,
        reason,
        // The banner shows this line: which host, since when, and why.
        hint: host.message ? `${reason}: ${host.message}` : reason,
      };
    }
    if (status.state === 'connected') {
      const key =
        selected === null ? `local:${b.generation}` : `${selected}:${b.generation}:${host?.generation ?? 0}`;
      if (key !== identity) {
        identity = key;
        generation++;
      }
    }
    return { ...status, generation };
  };

  let current = compute();
  const refresh = (): void => {
    const next = compute();
    const same =
      next.state === current.state &&
      next.generation === current.generation &&
      next.reason === current.reason &&
      next.hint === current.hint &&
      next.retryAtMs === current.retryAtMs;
    current = next;
    if (!same) for (const l of statusListeners) l(current);
  };

  const setHosts = (list: HostInfo[]): void => {
    hosts = list;
    for (const l of hostListeners) l(hosts);
    refresh();
  };

  base.onEvent('hosts', setHosts);
  base.onEvent('host.event', (e: HostEvent) => {
    if (e.host === selected) fire(e.event, e.data);
  });
  baseConnection.onStatus((s) => {
    if (s.state === 'connected') {
      // The list may have changed while the page was away (or the service restarted without hosts).
      void base.request('hosts.list').then(setHosts, () => undefined);
    }
    refresh();
  });
  if (baseConnection.status.state === 'connected')
    void base.request('hosts.list').then(setHosts, () => undefined);

  const api: IcmpcapApi = {
    request<M extends PageRequestName>(method: M, params?: PageRequestParams<M>): Promise<Results[M]> {
      if (selected === null || method.startsWith('hosts.')) return base.request(method, params);
      return base.request('hosts.request', { host: selected, method, params: params ?? {} }) as Promise<
        Results[M]
      >;
    },
    onEvent<E extends EventName>(event: E, listener: (data: Events[E]) => void): () => void {
      if (!forwarded.has(event) && event !== 'host.event' && event !== 'hosts') {
        forwarded.add(event);
        // This machine's own events count only while it is the host shown.
        base.onEvent(event, (data) => {
          if (selected === null) fire(event, data);
        });
      }
      if (event === 'hosts' || event === 'host.event') return base.onEvent(event, listener);
      let set = listeners.get(event);
      if (!set) listeners.set(event, (set = new Set()));
      set.add(listener as Listener);
      return () => set.delete(listener as Listener);
    },
  };

  const connection: Connection = {
    get status() {
      return current;
    },
    onStatus(listener) {
      statusListeners.add(listener);
      return () => statusListeners.delete(listener);
    },
    open: () => baseConnection.open(),
  };

  return {
    api,
    connection,
    get selected() {
      return selected;
    },
    select(host) {
      if (host === selected) return;
      selected = host;
      refresh();
    },
    get hosts() {
      return hosts;
    },
    onHosts(listener) {
      hostListeners.add(listener);
      return () => hostListeners.delete(listener);
    },
  };
}
