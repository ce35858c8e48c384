/**
 * The renderer's one way to the service: the preload's `window.icmpcap` inside Electron, or a WebSocket
 * to the server in browser mode. Both implement IcmpcapApi, so nothing above this file knows which.
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

type Listener = (data: unknown) => void;

interface ServerMessage {
  id?: number | null;
  result?: unknown;
  error?: ContractError;
  event?: string;
  data?: unknown;
}

class WebSocketApi implements IcmpcapApi {
  private ws: WebSocket | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Map<string, Set<Listener>>();
  private opened: Promise<WebSocket> | null = null;

  constructor(
    private readonly url: string,
    private readonly token: () => string,
  ) {}

  private connect(): Promise<WebSocket> {
    if (this.opened) return this.opened;
    this.opened = new Promise((resolve, reject) => {
      // The token goes as a subprotocol (a header), never in the URL where logs and history keep it.
      const ws = new WebSocket(this.url, [WS_PROTOCOL, `${WS_TOKEN_PREFIX}${this.token()}`]);
      ws.onopen = () => resolve(ws);
      ws.onerror = () =>
        reject(
          new RequestError(
            'transport',
            'cannot reach the icmpcap service: is `icmpcap serve` running, and is the token in the address right?',
          ),
        );
      ws.onclose = () => {
        this.opened = null;
        for (const p of this.pending.values())
          p.reject(new RequestError('transport', 'the connection to the icmpcap service closed'));
        this.pending.clear();
        this.emit('__closed', null);
      };
      ws.onmessage = (msg) => this.receive(String(msg.data));
      this.ws = ws;
    });
    return this.opened;
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
    const ws = this.ws && this.ws.readyState === WebSocket.OPEN ? this.ws : await this.connect();
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
    void this.connect().catch(() => undefined);
    return () => set.delete(listener as Listener);
  }
}

/** The session token of browser mode (from the address's #token=, kept for reloads of this tab). */
export function tokenFromLocation(): string {
  const hash = new URLSearchParams(location.hash.slice(1));
  const token = hash.get('token') ?? sessionStorage.getItem('icmpcap.token') ?? '';
  if (token) sessionStorage.setItem('icmpcap.token', token);
  return token;
}

export function createApi(): IcmpcapApi {
  if (window.icmpcap) return window.icmpcap;
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  return new WebSocketApi(`${scheme}://${location.host}/ws`, tokenFromLocation);
}

export const api = createApi();

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
