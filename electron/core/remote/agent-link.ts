/**
 * One remote agent (`icmpcap serve` on another host), reached by this service on the page's behalf.
 *
 * HTTPS: a TLS connection is made first and its certificate checked against the pin (pins.ts) before
 * anything is sent; only then does the WebSocket upgrade, carrying the token, go over that same
 * socket. So a host presenting another certificate never sees the token. Plain http:// is for a
 * loopback agent (or when the user allowed it for this host; hosts.ts decides).
 *
 * A lost host is retried with backoff, for ever; a refused one (changed certificate, wrong token) waits
 * for the user. The token lives only in this object: never logged, never in an event or a message.
 */
import { isIP } from 'node:net';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import WebSocket from 'ws';
import { type ContractError, type EventName, type HostInfo, ServiceError } from '../../common/contract.js';
import { WS_PROTOCOL, WS_TOKEN_PREFIX, encodeRequest } from '../../common/wire.js';
import { type PinStore, pinKey } from './pins.js';

export interface LinkTiming {
  /** Delays between attempts after a loss, ms (the last one repeats). */
  backoffMs?: number[];
  /** Ping every this many ms; a host silent for 3 intervals counts as lost. */
  heartbeatMs?: number;
  /** A connection (TLS + upgrade) must open within this many ms. */
  connectTimeoutMs?: number;
  /** A relayed request must be answered within this many ms. */
  requestTimeoutMs?: number;
}

type Sink = (event: 'hosts' | 'host.event', data: unknown) => void;

const DEFAULT_BACKOFF = [500, 1000, 2000, 4000, 8000];
/** Remote answers may be large (rows, aggregates); the remote bounds what it sends, this bounds memory. */
const MAX_ANSWER_BYTES = 64 * 1024 * 1024;

function errorText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ECONNREFUSED') return 'nothing listens there (connection refused)';
  if (e?.code === 'EHOSTUNREACH' || e?.code === 'ENETUNREACH') return 'the network cannot reach it';
  if (e?.code === 'ETIMEDOUT') return 'it did not answer in time';
  if (e?.code === 'ECONNRESET') return 'the connection was reset';
  return e instanceof Error ? e.message : String(err);
}

export class AgentLink {
  private ws: WebSocket | null = null;
  private tls: TLSSocket | null = null;
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >();
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private lastHeardMs = 0;
  private closed = false;
  private readonly timing: Required<LinkTiming>;
  info: HostInfo;

  constructor(
    id: string,
    name: string,
    readonly url: URL,
    private readonly token: string,
    private readonly pins: PinStore,
    private readonly sink: Sink,
    timing: LinkTiming = {},
  ) {
    this.timing = {
      backoffMs: timing.backoffMs ?? DEFAULT_BACKOFF,
      heartbeatMs: timing.heartbeatMs ?? 2000,
      connectTimeoutMs: timing.connectTimeoutMs ?? 5000,
      requestTimeoutMs: timing.requestTimeoutMs ?? 30_000,
    };
    this.info = {
      id,
      name,
      url: url.origin + '/',
      state: 'connecting',
      unreachableSinceMs: null,
      retryAtMs: null,
      message: null,
      fingerprint: url.protocol === 'https:' ? pins.pinned(pinKey(url)) : null,
      generation: 0,
    };
  }

  get key(): string {
    return pinKey(this.url);
  }

  private update(patch: Partial<HostInfo>): void {
    const next: HostInfo = { ...this.info, ...patch };
    if (patch.presentedFingerprint === undefined && 'presentedFingerprint' in patch)
      delete next.presentedFingerprint;
    this.info = next;
    this.sink('hosts', null);
  }

  /** Starts (or restarts now) a connection attempt. */
  connect(): void {
    if (this.closed) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.ws || this.tls) return;
    this.update({ retryAtMs: null });
    if (this.url.protocol === 'https:') this.connectTls();
    else this.upgrade(undefined);
  }

  private connectTls(): void {
    const host = this.url.hostname.replace(/^\[|\]$/g, '');
    const socket = tlsConnect({
      host,
      port: Number(this.url.port || 443),
      ...(isIP(host) ? {} : { servername: host }),
      // The certificate is checked against the pin below, before anything is sent on this socket.
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
    });
    this.tls = socket;
    const timer = setTimeout(
      () => socket.destroy(new Error('it did not answer in time')),
      this.timing.connectTimeoutMs,
    );
    const fail = (err: Error): void => {
      clearTimeout(timer);
      if (this.tls !== socket) return;
      this.tls = null;
      this.lost(errorText(err));
    };
    socket.once('error', fail);
    socket.once('close', () => fail(new Error('the connection closed')));
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const presented = socket.getPeerCertificate().fingerprint256;
      let check;
      try {
        check = this.pins.check(this.key, presented);
      } catch (err) {
        socket.destroy();
        this.tls = null;
        return this.refuse((err as Error).message);
      }
      if (check.outcome === 'changed') {
        socket.removeAllListeners('close');
        socket.destroy();
        this.tls = null;
        return this.refuse(check.message, {
          fingerprint: check.pinned,
          presentedFingerprint: check.presented,
        });
      }
      this.update({ fingerprint: check.fingerprint, presentedFingerprint: undefined });
      socket.removeListener('error', fail);
      socket.removeAllListeners('close');
      this.upgrade(socket);
    });
  }

  /** The WebSocket upgrade, with the token, over the checked TLS socket (or plain TCP for http://). */
  private upgrade(socket: TLSSocket | undefined): void {
    const scheme = this.url.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(
      `${scheme}//${this.url.host}/ws`,
      [WS_PROTOCOL, `${WS_TOKEN_PREFIX}${this.token}`],
      {
        perMessageDeflate: false,
        maxPayload: MAX_ANSWER_BYTES,
        handshakeTimeout: this.timing.connectTimeoutMs,
        followRedirects: false,
        ...(socket ? { createConnection: () => socket } : {}),
      },
    );
    this.ws = ws;
    this.tls = null;
    ws.on('error', (err) => this.lost(errorText(err), ws));
    ws.on('close', () => this.lost('the connection closed', ws));
    ws.on('unexpected-response', (_req, res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      if (status === 401) {
        this.drop(ws);
        this.refuse(
          'the host refused the token: remove the host and add it again with the token its `icmpcap serve` printed ' +
            '(start it with --token-file to keep one token across restarts)',
        );
      } else {
        this.lost(
          `it answered HTTP ${status}${status === 429 ? ' (too many wrong tokens: waiting)' : ''}`,
          ws,
        );
      }
    });
    ws.on('pong', () => (this.lastHeardMs = Date.now()));
    ws.on('message', (raw) => {
      this.lastHeardMs = Date.now();
      this.receive((raw as Buffer).toString('utf8'));
    });
    ws.on('open', () => {
      this.lastHeardMs = Date.now();
      this.heartbeat = setInterval(() => this.beat(ws), this.timing.heartbeatMs);
      this.heartbeat.unref();
      this.call('hello', {}).then(
        (hello) => {
          if (ws !== this.ws) return;
          this.attempt = 0;
          this.update({
            state: 'connected',
            unreachableSinceMs: null,
            retryAtMs: null,
            message: null,
            version: (hello as { version?: string }).version ?? '?',
            generation: this.info.generation + 1,
          });
        },
        (err: unknown) => this.lost(`it did not greet: ${errorText(err)}`, ws),
      );
    });
  }

  private beat(ws: WebSocket): void {
    if (Date.now() - this.lastHeardMs > 3 * this.timing.heartbeatMs) {
      this.lost('it stopped answering', ws);
      return;
    }
    try {
      ws.ping();
    } catch {
      this.lost('the connection failed', ws);
    }
  }

  private receive(text: string): void {
    let msg: { id?: unknown; result?: unknown; error?: ContractError; event?: unknown; data?: unknown };
    try {
      msg = JSON.parse(text) as typeof msg;
    } catch {
      return;
    }
    if (msg === null || typeof msg !== 'object') return;
    if (typeof msg.event === 'string') {
      this.sink('host.event', { host: this.info.id, event: msg.event as EventName, data: msg.data });
      return;
    }
    if (typeof msg.id !== 'number') return;
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.error && typeof msg.error === 'object') {
      const code = typeof msg.error.code === 'string' ? msg.error.code : 'internal';
      p.reject(new ServiceError(code, `${this.info.name}: ${String(msg.error.message)}`, msg.error.position));
    } else p.resolve(msg.result);
  }

  private call(method: string, params: unknown): Promise<unknown> {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return Promise.reject(this.unreachable());
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ServiceError('host-unreachable', `${this.info.name} did not answer ${method} in time`));
      }, this.timing.requestTimeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      for (const frame of encodeRequest(JSON.stringify({ id, method, params: params ?? {} }))) ws.send(frame);
    });
  }

  /** A request to the remote service, once connected. */
  request(method: string, params: unknown): Promise<unknown> {
    if (this.info.state !== 'connected') return Promise.reject(this.unreachable());
    return this.call(method, params);
  }

  private unreachable(): ServiceError {
    const since = this.info.unreachableSinceMs;
    return new ServiceError(
      'host-unreachable',
      this.info.state === 'refused'
        ? `${this.info.name} is not connected: ${this.info.message ?? 'refused'}`
        : `${this.info.name} is unreachable${since ? ` since ${new Date(since).toISOString()}` : ''}: icmpcap reconnects by itself`,
    );
  }

  private drop(ws: WebSocket | null): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    if (ws) {
      ws.removeAllListeners();
      ws.on('error', () => undefined);
      ws.terminate();
    }
    if (ws === this.ws) this.ws = null;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(this.unreachable());
    }
    this.pending.clear();
  }

  private lost(reason: string, ws: WebSocket | null = null): void {
    if (ws !== this.ws || this.closed) return;
    this.drop(ws);
    if (this.info.state === 'refused') return;
    const delay = this.timing.backoffMs[Math.min(this.attempt++, this.timing.backoffMs.length - 1)]!;
    this.update({
      state: 'unreachable',
      unreachableSinceMs: this.info.unreachableSinceMs ?? Date.now(),
      retryAtMs: Date.now() + delay,
      message: `${reason}; retrying`,
    });
    this.retryTimer = setTimeout(() => this.connect(), delay);
    this.retryTimer.unref();
  }

  private refuse(message: string, extra: Partial<HostInfo> = {}): void {
    this.drop(this.ws);
    this.update({
      state: 'refused',
      unreachableSinceMs: this.info.unreachableSinceMs ?? Date.now(),
      retryAtMs: null,
      message,
      ...extra,
    });
  }

  /** The user accepted the certificate the host presents now. */
  trust(fingerprint: string): void {
    if (this.info.state !== 'refused' || this.info.presentedFingerprint !== fingerprint) {
      throw new ServiceError(
        'bad-request',
        `${this.info.name} does not present the certificate ${fingerprint}: nothing to accept`,
      );
    }
    this.pins.trust(this.key, fingerprint);
    this.attempt = 0;
    this.update({ state: 'connecting', message: null, fingerprint, presentedFingerprint: undefined });
    this.connect();
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.tls?.destroy();
    this.tls = null;
    this.drop(this.ws);
  }
}
