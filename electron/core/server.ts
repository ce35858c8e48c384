/**
 * Browser mode: the renderer served over HTTP and the contract over a WebSocket. Listens on 127.0.0.1
 * unless told otherwise; every WebSocket needs the session's random token; pages from other origins
 * and requests for other host names (DNS rebinding) are refused.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, sep } from 'node:path';
import { WebSocket, WebSocketServer } from 'ws';
import { z } from 'zod';
import { type ContractError, ServiceError } from '../common/contract.js';
import type { CaptureService } from './service.js';

export interface ServerOptions {
  service: CaptureService;
  /** Folder with the built renderer (index.html). */
  staticDir: string;
  host?: string;
  port?: number;
  token?: string;
  /** Extra endpoints with their own authorisation (e.g. /metrics); true when one answered. */
  routes?: (req: IncomingMessage, res: ServerResponse) => boolean;
}

export interface RunningServer {
  url: string;
  token: string;
  port: number;
  host: string;
  close(): Promise<void>;
}

const ClientMessage = z.object({
  id: z.number().int().nonnegative(),
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

const MAX_BUFFERED_EVENT_BYTES = 4 * 1024 * 1024;

export function contractError(err: unknown): ContractError {
  if (err instanceof ServiceError) return err.toJSON();
  const message = err instanceof Error ? err.message : String(err);
  return { code: 'internal', message };
}

function tokenMatches(expected: string, given: string | null): boolean {
  if (given === null) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const host = opts.host ?? '127.0.0.1';
  const token = opts.token ?? randomBytes(24).toString('base64url');
  const loopbackOnly = host === '127.0.0.1' || host === '::1' || host === 'localhost';
  let port = 0;

  const allowedHost = (hostHeader: string | undefined): boolean => {
    if (!loopbackOnly) return true; // --listen: the user chose to expose it; the token still guards data
    if (!hostHeader) return false;
    return [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`].includes(hostHeader.toLowerCase());
  };

  const http = createServer((req, res) => {
    if (opts.routes?.(req, res)) return;
    serveStatic(opts.staticDir, req, res, allowedHost(req.headers.host), port);
  });
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });

  http.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const origin = req.headers.origin;
    const refuse = (status: number, why: string): void => {
      socket.end(`HTTP/1.1 ${status} ${why}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    if (url.pathname !== '/ws') return refuse(404, 'Not Found');
    if (!allowedHost(req.headers.host)) return refuse(403, 'Forbidden host');
    if (origin !== undefined && origin !== `http://${req.headers.host ?? ''}`)
      return refuse(403, 'Forbidden origin');
    if (!tokenMatches(token, url.searchParams.get('token'))) return refuse(401, 'Unauthorized');
    wss.handleUpgrade(req, socket, head, (ws) => attach(ws, opts.service));
  });

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(opts.port ?? 0, host, () => {
      http.off('error', reject);
      resolve();
    });
  });
  port = (http.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  return {
    url: `http://${shownHost}:${port}/#token=${token}`,
    token,
    port,
    host,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close();
        http.close(() => resolve());
        http.closeAllConnections();
      }),
  };
}

function attach(ws: WebSocket, service: CaptureService): void {
  const off = service.on((event, data) => {
    if (ws.readyState !== WebSocket.OPEN) return;
    // Events are snapshots: under backpressure a newer one will follow, so dropping is safe.
    if (event === 'counts' && ws.bufferedAmount > MAX_BUFFERED_EVENT_BYTES) return;
    ws.send(JSON.stringify({ event, data }));
  });
  ws.on('close', off);
  ws.on('message', (raw, isBinary) => void answer(ws, service, raw as Buffer, isBinary));
}

async function answer(ws: WebSocket, service: CaptureService, raw: Buffer, isBinary: boolean): Promise<void> {
  {
    let id: number | null = null;
    try {
      if (isBinary) throw new ServiceError('bad-request', 'send requests as JSON text frames');
      let json: unknown;
      try {
        json = JSON.parse(raw.toString());
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
      const result = await service.handle(msg.data.method, msg.data.params, 'websocket');
      ws.send(JSON.stringify({ id, result }));
    } catch (err) {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ id, error: contractError(err) }));
    }
  }
}

const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

function serveStatic(
  root: string,
  req: IncomingMessage,
  res: ServerResponse,
  hostOk: boolean,
  port: number,
): void {
  if (!hostOk) {
    res
      .writeHead(403, { 'Content-Type': 'text/plain' })
      .end(`use http://127.0.0.1:${port}/ to reach icmpcap\n`);
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { Allow: 'GET, HEAD' }).end();
    return;
  }
  const pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
  const rel = normalize(pathname === '/' ? 'index.html' : pathname.slice(1));
  const file = join(root, rel);
  if (rel.startsWith('..') || !file.startsWith(root + sep) || !existsSync(file) || !statSync(file).isFile()) {
    const index = join(root, 'index.html');
    if (!existsSync(index)) {
      res
        .writeHead(500, { 'Content-Type': 'text/plain' })
        .end('the renderer is not built: run `npm run build`\n');
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
    return;
  }
  res.writeHead(200, {
    'Content-Type': MIME[extname(file)] ?? 'application/octet-stream',
    'Content-Security-Policy': CSP,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-cache',
  });
  if (req.method === 'HEAD') res.end();
  else createReadStream(file).pipe(res);
}
