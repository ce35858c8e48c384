/**
 * The renderer's one way to the service: the preload's `window.icmpcap` inside Electron, or a WebSocket
 * to the server in browser mode. Both implement IcmpcapApi, so nothing above this file knows which.
 *
 * Browser mode can lose the service (it stopped, crashed, or the network went): `connection` says so.
 * A closed socket, a socket that does not open within CONNECT_TIMEOUT_MS, or one that answers nothing
 * (not even the heartbeat) for HEARTBEAT_TIMEOUT_MS counts as lost; then it retries with backoff, and at
 * once when the address's #token= changes (a restarted service prints a new one).
 */
import type {
  ContractError,
  EventName,
  Events,
  IcmpcapApi,
  PageRequestName,
  PageRequestParams,
  Results,
} from '@common/contract';
import { WS_PROTOCOL, WS_TOKEN_PREFIX, encodeRequest } from '@common/wire';
import { createHostScope } from './hosts/scope';

declare global {
  interface Window {
    icmpcap?: IcmpcapApi;
  }
}

export class RequestError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly position?: number,
  ) {
    super(message);
    this.name = 'RequestError';
  }
}

export interface ConnectionStatus {
  state: 'connecting' | 'connected' | 'disconnected';
  /** Connections made so far (1 after the first); a reconnect raises it. */
  generation: number;
  /** When the state last changed (ms since the epoch). */
  sinceMs: number;
  /** When disconnected: when the next attempt starts. */
  retryAtMs: number | null;
  /** When disconnected: what happened, in plain words. */
  reason: string | null;
  /** When disconnected: what to do, once known (the page asks the address whether anything answers). */
  hint: string | null;
}

type Listener = (data: unknown) => void;

interface ServerMessage {
  id?: number | null;
  result?: unknown;
  error?: ContractError;
  event?: string;
  data?: unknown;
}
type StatusListener = (s: ConnectionStatus) => void;

const CONNECT_TIMEOUT_MS = 4000;
const HEARTBEAT_MS = 2000;
const HEARTBEAT_TIMEOUT_MS = 6000;
const BACKOFF_MS = [250, 500, 1000, 2000, 4000];

class WebSocketApi implements IcmpcapApi {
  private ws: WebSocket | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly statusListeners = new Set<StatusListener>();
  private waiters: { resolve: (ws: WebSocket) => void; reject: (e: Error) => void }[] = [];
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  private lastHeardMs = 0;
  status: ConnectionStatus = {
    state: 'connecting',
    generation: 0,
    sinceMs: Date.now(),
    retryAtMs: null,
    reason: null,
    hint: null,
  };

  constructor(
    private readonly url: string,
    private readonly token: () => string,
  ) {
    window.addEventListener('hashchange', () => {
      if (!tokenChanged()) return;
      // A new token (a restarted service): try it now, whatever the backoff says.
      this.attempt = 0;
      this.drop('the address changed: connecting with its token');
      this.open();
    });
  }

  private setStatus(patch: Partial<ConnectionStatus>): void {
    const state = patch.state ?? this.status.state;
    const changed = state !== this.status.state;
    this.status = { ...this.status, ...patch, ...(changed ? { sinceMs: Date.now() } : {}) };
    for (const l of this.statusListeners) l(this.status);
  }

  onStatus(listener: StatusListener): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  /** Starts (or restarts) one connection attempt. */
  open(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.ws) return;
    this.setStatus({ state: 'connecting', retryAtMs: null });
    // The token goes as a subprotocol (a header), never in the URL where logs and history keep it.
    const ws = new WebSocket(this.url, [WS_PROTOCOL, `${WS_TOKEN_PREFIX}${this.token()}`]);
    this.ws = ws;
    const timeout = setTimeout(() => this.lost(ws, 'the service did not answer'), CONNECT_TIMEOUT_MS);
    ws.onopen = () => {
      clearTimeout(timeout);
      this.attempt = 0;
      this.lastHeardMs = Date.now();
      this.heartbeat = setInterval(() => this.beat(ws), HEARTBEAT_MS);
      this.setStatus({
        state: 'connected',
        generation: this.status.generation + 1,
        reason: null,
        hint: null,
      });
      for (const w of this.waiters.splice(0)) w.resolve(ws);
    };
    ws.onclose = () => {
      clearTimeout(timeout);
      this.lost(ws, 'the connection closed');
    };
    ws.onmessage = (msg) => {
      this.lastHeardMs = Date.now();
      this.receive(String(msg.data));
    };
  }

  /** Forgets the socket without waiting for its close handshake (a stopped peer never answers). */
  private drop(reason: string): void {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    ws.onopen = ws.onclose = ws.onmessage = null;
    try {
      ws.close();
    } catch {
      // already closing
    }
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    for (const p of this.pending.values())
      p.reject(new RequestError('transport', `not connected: ${reason}`));
    this.pending.clear();
  }

  private lost(ws: WebSocket, reason: string): void {
    if (ws !== this.ws) return;
    this.drop(reason);
    const delay = BACKOFF_MS[Math.min(this.attempt++, BACKOFF_MS.length - 1)]!;
    this.setStatus({ state: 'disconnected', retryAtMs: Date.now() + delay, reason });
    for (const w of this.waiters.splice(0)) w.reject(this.notConnected());
    this.retryTimer = setTimeout(() => this.open(), delay);
    void this.explain();
  }

  /** Tells "nothing listens there" from "a service listens but refuses this token". */
  private async explain(): Promise<void> {
    let hint: string;
    try {
      const res = await fetch('/', { cache: 'no-store', signal: AbortSignal.timeout(CONNECT_TIMEOUT_MS) });
      hint = res.ok
        ? 'a service answers at this address but does not take this page’s token (was it restarted?): open the address it printed, with its #token=…'
        : `the address answers HTTP ${res.status}`;
    } catch {
      hint = 'nothing answers at this address: is `icmpcap serve` still running?';
    }
    if (this.status.state !== 'connected' && hint !== this.status.hint) this.setStatus({ hint });
  }

  private beat(ws: WebSocket): void {
    if (Date.now() - this.lastHeardMs > HEARTBEAT_TIMEOUT_MS) {
      this.lost(ws, 'the service stopped answering');
      return;
    }
    // Any answer (or event) counts as a sign of life.
    void this.request('filter.check', { filter: '' }).catch(() => undefined);
  }

  private notConnected(): RequestError {
    return new RequestError(
      'transport',
      `not connected to the icmpcap service${this.status.reason ? ` (${this.status.reason})` : ''}: reconnecting…`,
    );
  }

  private socket(): Promise<WebSocket> {
    if (this.ws && this.status.state === 'connected') return Promise.resolve(this.ws);
    if (this.status.state === 'disconnected') return Promise.reject(this.notConnected());
    this.open();
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private receive(text: string): void {
    let msg: ServerMessage | null;
    try {
      msg = JSON.parse(text) as ServerMessage | null;
    } catch {
      return;
    }
    if (msg === null || typeof msg !== 'object') return;
    if (typeof msg.event === 'string') {
      this.emit(msg.event, msg.data);
      return;
    }
    if (typeof msg.id !== 'number') return;
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (msg.error) p.reject(new RequestError(msg.error.code, msg.error.message, msg.error.position));
    else p.resolve(msg.result);
  }

  private emit(event: string, data: unknown): void {
    for (const l of this.listeners.get(event) ?? []) l(data);
  }

  async request<M extends PageRequestName>(method: M, params?: PageRequestParams<M>): Promise<Results[M]> {
    const ws = await this.socket();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      // A request longer than one frame (thousands of selected rows) goes in parts.
      for (const frame of encodeRequest(JSON.stringify({ id, method, params: params ?? {} }))) ws.send(frame);
    });
  }

  onEvent<E extends EventName>(event: E, listener: (data: Events[E]) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as Listener);
    return () => set.delete(listener as Listener);
  }
}

let currentToken = '';

/** The session token of browser mode (from the address's #token=, kept for reloads of this tab). */
export function tokenFromLocation(): string {
  const hash = new URLSearchParams(location.hash.slice(1));
  const token = hash.get('token') ?? sessionStorage.getItem('icmpcap.token') ?? '';
  if (token) sessionStorage.setItem('icmpcap.token', token);
  return token;
}

function tokenChanged(): boolean {
  const token = tokenFromLocation();
  if (token === currentToken) return false;
  currentToken = token;
  return true;
}

/** The connection to the service, for the page's "Disconnected — reconnecting…" state. */
export interface Connection {
  readonly status: ConnectionStatus;
  onStatus(listener: StatusListener): () => void;
  /** Connects (first call) or retries now. */
  open(): void;
}

function createTransport(): { api: IcmpcapApi; connection: Connection } {
  if (window.icmpcap) {
    // Electron IPC: the service lives in the main process and cannot go away while the page lives.
    const status: ConnectionStatus = {
      state: 'connected',
      generation: 1,
      sinceMs: Date.now(),
      retryAtMs: null,
      reason: null,
      hint: null,
    };
    return {
      api: window.icmpcap,
      connection: { status, onStatus: () => () => undefined, open: () => undefined },
    };
  }
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  currentToken = tokenFromLocation();
  const ws = new WebSocketApi(`${scheme}://${location.host}/ws`, () => currentToken);
  return { api: ws, connection: ws };
}

const transport = createTransport();
/** This window's own service, whatever host the window shows (the hosts bar and the all-hosts view). */
export const localApi = transport.api;
/** The host the window shows (renderer/src/hosts/scope.ts): `api` and `connection` follow it. */
export const hostScope = createHostScope(transport.api, transport.connection);
export const api = hostScope.api;
export const connection = hostScope.connection;

/** True in a browser (browser mode): files go by download and upload, not native dialogs. */
export const inBrowser = !window.icmpcap;

/**
 * An HTTP request to the service (downloads, uploads) with the token in the Authorization header,
 * never in the URL. Only for browser mode.
 */
export function serviceFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set('Authorization', `Bearer ${tokenFromLocation()}`);
  return fetch(path, { ...init, headers, credentials: 'omit', cache: 'no-store' });
}
