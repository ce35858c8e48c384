/** Browser mode's guards: token, origin and host checks, and hostile messages answered with errors. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type RunningServer, startServer } from './server.js';
import { CaptureService } from './service.js';

let server: RunningServer;
let service: CaptureService;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'icmpcap-static-'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>icmpcap</title>');
  service = new CaptureService({ native: new Error('no addon in this test'), version: '1.2.3' });
  server = await startServer({ service, staticDir: dir });
});

afterAll(async () => {
  service.close();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Connects with `token` as the page does (a subprotocol), or with none when it is null. */
function connect(token: string | null, headers: Record<string, string> = {}, query = ''): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const protocols = token === null ? ['icmpcap'] : ['icmpcap', `token.${token}`];
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws${query}`, protocols, { headers });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(String(res.statusCode))));
    ws.once('error', reject);
  });
}

function ask(ws: WebSocket, payload: string): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const onMessage = (data: WebSocket.RawData) => {
      const msg = JSON.parse((data as Buffer).toString()) as Record<string, unknown>;
      if ('event' in msg) return;
      ws.off('message', onMessage);
      resolve(msg);
    };
    ws.on('message', onMessage);
    ws.send(payload);
  });
}

describe('browser-mode server', () => {
  it('listens on 127.0.0.1 and prints a URL with the token', () => {
    expect(server.host).toBe('127.0.0.1');
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/#token=${server.token}`);
    expect(server.token.length).toBeGreaterThanOrEqual(32);
  });

  it('refuses a WebSocket without the right token, and a token in the URL', async () => {
    await expect(connect(null)).rejects.toThrow('401');
    await expect(connect('wrong')).rejects.toThrow('401');
    await expect(connect(`${server.token}x`)).rejects.toThrow('401');
    // The token never travels in a query string: there it does not count.
    await expect(connect(null, {}, `?token=${server.token}`)).rejects.toThrow('401');
  });

  it('refuses pages from other origins and other host names, even with the token', async () => {
    await expect(connect(server.token, { Origin: 'http://evil.example' })).rejects.toThrow('403');
    await expect(connect(server.token, { Host: `rebound.example:${server.port}` })).rejects.toThrow('403');
  });

  it('answers a request from the same origin with the token', async () => {
    const ws = await connect(server.token, { Origin: `http://127.0.0.1:${server.port}` });
    const reply = await ask(ws, JSON.stringify({ id: 1, method: 'hello' }));
    expect(reply).toMatchObject({ id: 1, result: { version: '1.2.3', transport: 'websocket' } });
    ws.close();
  });

  it('answers hostile messages with clear errors and keeps the connection usable', async () => {
    const ws = await connect(server.token);
    expect(await ask(ws, 'not json')).toMatchObject({ id: null, error: { code: 'bad-request' } });
    expect(await ask(ws, JSON.stringify({ method: 'hello' }))).toMatchObject({
      error: { code: 'bad-request' },
    });
    expect(await ask(ws, JSON.stringify({ id: 2, method: '__proto__' }))).toMatchObject({
      id: 2,
      error: { code: 'unknown-method' },
    });
    expect(
      await ask(ws, JSON.stringify({ id: 3, method: 'view.rows', params: { start: 0, count: 1e9 } })),
    ).toMatchObject({
      id: 3,
      error: { code: 'bad-request' },
    });
    expect(
      await ask(ws, JSON.stringify({ id: 4, method: 'capture.start', params: { interfaces: ['a b'] } })),
    ).toMatchObject({ id: 4, error: { code: 'bad-request' } });
    // A kernel buffer that is no whole number of bytes from 1 MiB to 1 TiB ("1e400" parses as Infinity).
    for (const bufferBytes of ['"64"', '-1', '0', '1e400', '1572864.5', '1099511627777', 'null', '{}', '[1]'])
      expect(
        await ask(ws, `{"id": 6, "method": "capture.start", "params": {"bufferBytes": ${bufferBytes}}}`),
        bufferBytes,
      ).toMatchObject({ id: 6, error: { code: 'bad-request' } });
    // A valid one passes the contract (and fails here only for want of an addon).
    expect(
      await ask(
        ws,
        JSON.stringify({ id: 7, method: 'capture.start', params: { bufferBytes: 64 * 2 ** 20 } }),
      ),
    ).toMatchObject({ id: 7, error: { code: 'capture-failed' } });
    expect(await ask(ws, JSON.stringify({ id: 5, method: 'hello' }))).toMatchObject({ id: 5, result: {} });
    ws.close();
  });

  it('serves the page with a strict CSP and nothing outside its folder', async () => {
    const res = await fetch(`http://127.0.0.1:${server.port}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
    const escape = await fetch(`http://127.0.0.1:${server.port}/..%2f..%2fetc%2fpasswd`);
    expect(escape.status).toBe(404);
  });
  it('slows down repeated wrong tokens from one address', async () => {
    const codes: string[] = [];
    for (let i = 0; i < 8; i++) {
      codes.push(
        await connect(`guess${i}`).then(
          () => 'open',
          (err: Error) => err.message,
        ),
      );
    }
    expect(codes).toContain('429');
    // While it waits, even the right token is not checked.
    await expect(connect(server.token)).rejects.toThrow('429');
  });
});
