/**
 * Browser mode: the renderer served over HTTP(S) and the contract over a WebSocket. Listens on 127.0.0.1
 * unless told otherwise; every WebSocket and every data route needs the session's random token, sent in
 * a header (the WebSocket subprotocol `token.<token>`, or `Authorization: Bearer <token>`), never in a
 * URL; pages from other origins and requests for other host names (DNS rebinding) are refused.
 *
 * Nothing a client sends may take the service down: every handler catches, every socket has an error
 * listener, frames and joined requests are bounded (electron/common/wire.ts), half-open clients are
 * found by ping/pong and closed, and a client that does not read loses snapshot events and is
 * disconnected once its backlog passes a bound.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { WebSocket, WebSocketServer } from 'ws';
import { z } from 'zod';
import { type ContractError, type EventName, ServiceError } from '../common/contract.js';
import { contractError } from '../common/contract-error.js';
import { FRAME_BYTES, WS_PROTOCOL, WS_TOKEN_PREFIX } from '../common/wire.js';
import type { CaptureService } from './service.js';
import { BadTokenLimiter, type RateLimitOptions, bearerToken, tokenMatches } from './web/auth.js';
import { PageFiles } from './web/page-files.js';
import { PartJoiner } from './web/parts.js';
import { defaultSpoolDir } from './spool-store.js';

/** What a mounted route gets besides the request: whether it carried the token, and how to answer. */
export interface RouteContext {
  /** The request carried the session token (`Authorization: Bearer`). */
  authorized: boolean;
  /** The path, decoded, below the mount point ('' for the mount point itself). */
  rest: string;
  /** Answers with a status and a plain-text line. */
  text(status: number, line: string): void;
}

/** Extra HTTP routes (downloads, uploads, metrics): `handler` may answer or return false to pass on. */
export type RouteHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  ctx: RouteContext,
) => boolean | Promise<boolean> | void | Promise<void>;

export interface ServerOptions {
  service: CaptureService;
  /** Folder with the built renderer (index.html). */
  staticDir: string;
  host?: string;
  port?: number;
  token?: string;
  /** Serve HTTPS with this certificate and key (PEM). Required for a non-loopback host (cli.ts). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /**
   * Files for pages (electron/core/web/page-files.ts): downloads, uploads and the capture folder. Pages
   * always go through it, so none can name a path here. workDir defaults to $XDG_CACHE_HOME/icmpcap.
   */
  files?: { workDir?: string; captureFolder?: string; maxUploadBytes?: number };
  /** Ping every this many ms; a client that has not answered the previous ping is closed. */
  heartbeatMs?: number;
  /** A client whose unsent backlog passes this many bytes is disconnected. */
  maxBufferedBytes?: number;
  /** At most this many WebSocket clients at once. */
  maxClients?: number;
  /** How wrong tokens are slowed down (electron/core/web/auth.ts). */
  badTokens?: RateLimitOptions;
  /** Extra endpoints with their own authorisation (e.g. /metrics); true when one answered. */
  routes?: (req: IncomingMessage, res: ServerResponse) => boolean;
}

export interface RunningServer {
  url: string;
  token: string;
  port: number;
  host: string;
  /** 'https' when serving with TLS. */
  scheme: 'http' | 'https';
  /** Open WebSocket connections. */
  connections(): number;
  /** Adds a route for every path that starts with `prefix` (e.g. '/metrics', '/download/'). */
  mount(prefix: string, handler: RouteHandler): void;
  close(): Promise<void>;
}

const ClientMessage = z.object({
  id: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  method: z.string().max(64),
  params: z.unknown().optional(),
});

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
};

/** Events that are snapshots: a newer one always follows, so a slow client may miss some. */
const SNAPSHOT_EVENTS = new Set<EventName>([
  'counts',
  'aggregates',
  'interfaces',
  // Whole lists, replaced by the next push (electron/core/insights); firings are never dropped.
  'problems',
  'paths',
  'neighbours',
]);
const DEFAULT_MAX_BUFFERED = 8 * 1024 * 1024;
const DEFAULT_HEARTBEAT_MS = 15_000;

export { contractError };

const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'none'",
].join('; ');

const SECURITY_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
};

function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === '::1' || host === 'localhost';
}

/** The path of a request URL, decoded; null when it is malformed. */
export function requestPath(url: string | undefined): string | null {
  try {
    const pathname = new URL(url ?? '/', 'http://localhost').pathname;
    const decoded = decodeURIComponent(pathname);
    return decoded.includes('\0') ? null : decoded;
  } catch {
    return null;
  }
}

function remoteOf(socket: Socket): string {
  return socket.remoteAddress ?? 'unknown';
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const host = opts.host ?? '127.0.0.1';
  const token = opts.token ?? randomBytes(24).toString('base64url');
  const loopbackOnly = isLoopback(host);
  const scheme = opts.tls ? 'https' : 'http';
  const maxBuffered = opts.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED;
  const eventDropBytes = Math.min(1024 * 1024, maxBuffered / 4);
  const files = new PageFiles({
    service: opts.service,
    workDir: opts.files?.workDir ?? dirname(defaultSpoolDir()),
    ...(opts.files?.captureFolder ? { captureFolder: opts.files.captureFolder } : {}),
    ...(opts.files?.maxUploadBytes ? { maxUploadBytes: opts.files.maxUploadBytes } : {}),
  });
  const limiter = new BadTokenLimiter(opts.badTokens);
  const routes: { prefix: string; handler: RouteHandler }[] = [];
  let port = 0;

  const allowedHost = (hostHeader: string | undefined): boolean => {
    if (!loopbackOnly) return true; // --listen: the user chose to expose it; TLS and the token guard it
    if (!hostHeader) return false;
    return [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`].includes(hostHeader.toLowerCase());
  };

  /** Checks a token from one address, with the bad-token limit; answers why not, or null when fine. */
  const checkToken = (address: string, given: string | null): 'wait' | 'bad' | null => {
    if (limiter.waitMs(address) > 0) return 'wait';
    if (!tokenMatches(token, given)) {
      limiter.failed(address);
      return 'bad';
    }
    limiter.succeeded(address);
    return null;
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    const fail = (err: unknown): void => {
      if (!res.headersSent) {
        res
          .writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8', ...SECURITY_HEADERS })
          .end(`icmpcap: ${contractError(err).message}\n`);
      } else res.destroy();
    };
    try {
      if (opts.routes?.(req, res)) return;
      const outcome = route(req, res);
      if (outcome instanceof Promise) outcome.catch(fail);
    } catch (err) {
      fail(err);
    }
  };

  const route = (req: IncomingMessage, res: ServerResponse): void | Promise<void> => {
    const text = (status: number, line: string, extra: Record<string, string> = {}): void => {
      if (res.headersSent) return void res.destroy();
      res
        .writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', ...SECURITY_HEADERS, ...extra })
        .end(`${line}\n`);
    };
    if (!allowedHost(req.headers.host)) {
      return text(403, `use ${scheme}://127.0.0.1:${port}/ to reach icmpcap`);
    }
    const path = requestPath(req.url);
    if (path === null) return text(400, 'malformed path: check the address');
    const route = routes.find((r) => path === r.prefix.replace(/\/$/, '') || path.startsWith(r.prefix));
    if (route) {
      const given = bearerToken(req.headers.authorization);
      let authorized = false;
      if (given !== null) {
        const why = checkToken(remoteOf(req.socket), given);
        if (why === 'wait') return text(429, 'too many wrong tokens: wait a moment', { 'Retry-After': '5' });
        authorized = why === null;
      }
      const ctx: RouteContext = {
        authorized,
        rest: path.slice(route.prefix.length),
        text: (status, line) => text(status, line),
      };
      return Promise.resolve(route.handler(req, res, ctx)).then((handled) => {
        if (handled === false && !res.headersSent) serveStatic(opts.staticDir, path, req, res, text);
      });
    }
    serveStatic(opts.staticDir, path, req, res, text);
  };

  const http: Server = opts.tls
    ? createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key, minVersion: 'TLSv1.2' }, onRequest)
    : createServer({ connectionsCheckingInterval: 2000 }, onRequest);
  // Slow clients: headers within 10 s, idle sockets closed after 30 s (uploads keep their socket busy).
  http.headersTimeout = 10_000;
  http.requestTimeout = 0;
  http.setTimeout(30_000, (socket: Socket) => socket.destroy());
  http.keepAliveTimeout = 5_000;
  http.maxConnections = 512;
  http.on('clientError', (_err, socket: Socket) => {
    if (socket.writable && !socket.destroyed) {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    }
    socket.destroy();
  });
  http.on('tlsClientError', (_err, socket: Socket) => socket.destroy());
  http.on('connection', (socket: Socket) => socket.on('error', () => undefined));
  http.on('secureConnection', (socket: Socket) => socket.on('error', () => undefined));

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: FRAME_BYTES,
    perMessageDeflate: false,
    handleProtocols: (protocols) => (protocols.has(WS_PROTOCOL) ? WS_PROTOCOL : false),
  });
  wss.on('error', () => undefined);

  http.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => undefined);
    const refuse = (status: number, why: string): void => {
      if (socket.writable) {
        socket.end(`HTTP/1.1 ${status} ${why}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      }
      socket.destroy();
    };
    try {
      const path = requestPath(req.url);
      if (path !== '/ws') return refuse(404, 'Not Found');
      if (!allowedHost(req.headers.host)) return refuse(403, 'Forbidden host');
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== `${scheme}://${req.headers.host ?? ''}`)
        return refuse(403, 'Forbidden origin');
      if (wss.clients.size >= (opts.maxClients ?? 64)) return refuse(503, 'Too many clients');
      const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
      if (!offered.includes(WS_PROTOCOL)) return refuse(400, 'Use the icmpcap subprotocol');
      const given = offered.find((p) => p.startsWith(WS_TOKEN_PREFIX))?.slice(WS_TOKEN_PREFIX.length);
      const why = checkToken(remoteOf(socket), given ?? null);
      if (why === 'wait') return refuse(429, 'Too many wrong tokens');
      if (why === 'bad') return refuse(401, 'Unauthorized');
      wss.handleUpgrade(req, socket, head, (ws) => attach(ws));
    } catch {
      refuse(400, 'Bad Request');
    }
  });

  const alive = new WeakMap<WebSocket, boolean>();
  const heartbeat = setInterval(() => {
    for (const ws of wss.clients) {
      if (alive.get(ws) === false) {
        ws.terminate();
        continue;
      }
      alive.set(ws, false);
      try {
        ws.ping();
      } catch {
        ws.terminate();
      }
    }
  }, opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS);
  heartbeat.unref();

  /** Sends unless the client is gone; a client too far behind is disconnected. */
  const send = (ws: WebSocket, text: string): void => {
    if (ws.readyState !== WebSocket.OPEN) return;
    ws.send(text, (err) => {
      if (err) ws.terminate();
    });
    if (ws.bufferedAmount > maxBuffered) ws.terminate();
  };

  const attach = (ws: WebSocket): void => {
    alive.set(ws, true);
    ws.on('error', () => ws.terminate());
    ws.on('pong', () => alive.set(ws, true));
    const joiner = new PartJoiner();
    const off = opts.service.on((event, data) => {
      if (ws.readyState !== WebSocket.OPEN) return;
      // Snapshots are dropped for a client that is behind; state and job events are not, and a
      // client that stays behind is disconnected by send().
      if (SNAPSHOT_EVENTS.has(event) && ws.bufferedAmount > eventDropBytes) return;
      try {
        send(ws, JSON.stringify({ event, data: files.eventForPage(event, data) }));
      } catch {
        // an event that cannot be sent is skipped; the next snapshot follows
      }
    });
    ws.on('close', off);
    ws.on('message', (raw, isBinary) => {
      try {
        if (isBinary) return reject(ws, null, 'send requests as JSON text frames');
        const frame = (raw as Buffer).toString('utf8');
        if (frame.startsWith('#')) {
          const part = joiner.add(frame);
          if ('error' in part) return reject(ws, null, part.error);
          if (part.done) void answer(ws, part.text);
          return;
        }
        void answer(ws, frame);
      } catch (err) {
        send(ws, JSON.stringify({ id: null, error: contractError(err) }));
      }
    });
  };

  const reject = (ws: WebSocket, id: number | null, message: string): void =>
    send(ws, JSON.stringify({ id, error: { code: 'bad-request', message } satisfies ContractError }));

  const answer = async (ws: WebSocket, text: string): Promise<void> => {
    let id: number | null = null;
    try {
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        throw new ServiceError(
          'bad-request',
          'a request must be JSON: {"id": 1, "method": "...", "params": {...}}',
        );
      }
      const msg = ClientMessage.safeParse(json);
      if (!msg.success) {
        throw new ServiceError('bad-request', 'a request needs a numeric "id" and a string "method"');
      }
      id = msg.data.id;
      const result = await files.handle(msg.data.method, msg.data.params);
      send(ws, JSON.stringify({ id, result }));
    } catch (err) {
      try {
        send(ws, JSON.stringify({ id, error: contractError(err) }));
      } catch {
        ws.terminate();
      }
    }
  };

  await new Promise<void>((resolve, reject) => {
    http.once('error', (err) => {
      files.close();
      reject(err);
    });
    http.listen(opts.port ?? 0, host, () => {
      http.off('error', reject);
      http.on('error', () => undefined);
      resolve();
    });
  });
  port = (http.address() as AddressInfo).port;
  const mount = (prefix: string, handler: RouteHandler): void => {
    routes.push({ prefix, handler });
  };
  files.mount(mount);
  const shownHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  return {
    url: `${scheme}://${shownHost}:${port}/#token=${token}`,
    token,
    port,
    host,
    scheme,
    connections: () => wss.clients.size,
    mount,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(heartbeat);
        files.close();
        for (const client of wss.clients) client.terminate();
        wss.close();
        http.close(() => resolve());
        http.closeAllConnections();
      }),
  };
}

function serveStatic(
  root: string,
  pathname: string,
  req: IncomingMessage,
  res: ServerResponse,
  text: (status: number, line: string) => void,
): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { Allow: 'GET, HEAD', ...SECURITY_HEADERS }).end();
    return;
  }
  const rel = normalize(pathname === '/' ? 'index.html' : pathname.slice(1));
  const file = join(root, rel);
  let isFile = false;
  if (!rel.startsWith('..') && file.startsWith(root + sep)) {
    try {
      isFile = statSync(file).isFile();
    } catch {
      isFile = false;
    }
  }
  if (!isFile) {
    let built = false;
    try {
      built = statSync(join(root, 'index.html')).isFile();
    } catch {
      built = false;
    }
    if (!built) return text(500, 'the renderer is not built: run `npm run build`');
    return text(404, 'not found');
  }
  res.writeHead(200, {
    'Content-Type': MIME[extname(file)] ?? 'application/octet-stream',
    'Content-Security-Policy': CSP,
    ...SECURITY_HEADERS,
    'Cache-Control': 'no-cache',
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  const stream = createReadStream(file);
  stream.on('error', () => res.destroy());
  stream.pipe(res);
}
