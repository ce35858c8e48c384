/**
 * Browser mode survives what a hostile or broken client sends: malformed URIs, oversized frames,
 * invalid UTF-8, half-open sockets, clients that never read; and a request the contract allows always
 * fits the transport (a selection of thousands of rows is sent in parts).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { type Socket, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { encodeRequest } from '../common/wire.js';
import { type RunningServer, startServer } from './server.js';
import { CaptureService } from './service.js';

let server: RunningServer;
let service: CaptureService;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'icmpcap-static-'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>icmpcap</title>');
  service = new CaptureService({ native: new Error('no addon in this test'), version: '1.2.3' });
  server = await startServer({ service, staticDir: dir, heartbeatMs: 300, maxBufferedBytes: 512 * 1024 });
});

afterAll(async () => {
  service.close();
  await server.close();
});

function open(): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws`, ['icmpcap', `token.${server.token}`]);
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(String(res.statusCode))));
    ws.once('error', reject);
  });
}

function closed(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.once('close', (code) => resolve(code)));
}

function reply(ws: WebSocket, id: number): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const onMessage = (data: WebSocket.RawData) => {
      const msg = JSON.parse((data as Buffer).toString()) as Record<string, unknown>;
      if (msg.id !== id) return;
      ws.off('message', onMessage);
      resolve(msg);
    };
    ws.on('message', onMessage);
  });
}

async function stillServes(): Promise<void> {
  const ws = await open();
  const answer = reply(ws, 99);
  ws.send(JSON.stringify({ id: 99, method: 'hello' }));
  expect(await answer).toMatchObject({ id: 99, result: { version: '1.2.3' } });
  ws.close();
}

function rawHttp(request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(server.port, '127.0.0.1', () => socket.end(request));
    let out = '';
    socket.on('data', (d) => (out += d.toString()));
    socket.on('close', () => resolve(out));
    socket.on('error', reject);
  });
}

describe('hostile HTTP', () => {
  it('answers a malformed escape in the path with 400 and keeps serving', async () => {
    const res = await fetch(`http://127.0.0.1:${server.port}/%ff`);
    expect(res.status).toBe(400);
    const res2 = await fetch(`http://127.0.0.1:${server.port}/%E0%A4%A`);
    expect(res2.status).toBe(400);
    expect((await fetch(`http://127.0.0.1:${server.port}/`)).status).toBe(200);
    await stillServes();
  });

  it('survives garbage request lines and headers', async () => {
    for (const garbage of [
      'GET /\x00\x01 HTTP/1.1\r\n\r\n',
      'GARBAGE\r\n\r\n',
      `GET / HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nContent-Length: -5\r\n\r\n`,
      `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: x\r\n\r\n`,
      `GET /%c0%af%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\n\r\n`,
    ]) {
      const out = await rawHttp(garbage);
      expect(out).toMatch(/^HTTP\/1\.1 4\d\d/);
    }
    await stillServes();
  });
});

describe('hostile WebSocket frames', () => {
  it('closes a connection that sends a frame over the limit, and keeps serving', async () => {
    const ws = await open();
    ws.on('error', () => undefined);
    const code = closed(ws);
    ws.send('x'.repeat(200 * 1024));
    expect(await code).toBe(1009);
    await stillServes();
  });

  it('closes a connection that sends invalid UTF-8, and keeps serving', async () => {
    const ws = await open();
    ws.on('error', () => undefined);
    const code = closed(ws);
    // A text frame with bytes that are not UTF-8: FIN + text opcode, masked, 4 bytes.
    const socket = (ws as unknown as { _socket: Socket })._socket;
    const payload = Buffer.from([0xff, 0xfe, 0xc0, 0x80]);
    const mask = Buffer.from([1, 2, 3, 4]);
    const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
    socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]));
    expect(await code).toBe(1007);
    await stillServes();
  });

  it('answers an export of 9,000 selected rows (sent in parts) instead of dying', async () => {
    const ws = await open();
    const nos = Array.from({ length: 9000 }, (_, i) => 2 * i + 1_000_001);
    const text = JSON.stringify({
      id: 7,
      method: 'export.start',
      params: { format: 'pcapng', scope: 'selected', nos },
    });
    expect(text.length).toBeGreaterThan(64 * 1024);
    const answer = reply(ws, 7);
    for (const part of encodeRequest(text)) ws.send(part);
    // The service has nothing captured: a contract answer, not a dead connection.
    expect(await answer).toMatchObject({ id: 7, error: { code: 'bad-request' } });
    ws.close();
    await stillServes();
  });

  it('answers garbage parts and schema violations with errors', async () => {
    const ws = await open();
    const a = reply(ws, null as unknown as number);
    ws.send('#2/3\nnot the first part');
    expect(await a).toMatchObject({ error: { code: 'bad-request' } });
    const b = reply(ws, 8);
    ws.send(JSON.stringify({ id: 8, method: 'view.rows', params: { start: -1, count: 'x' } }));
    expect(await b).toMatchObject({ id: 8, error: { code: 'bad-request' } });
    ws.close();
  });
});

describe('slow and stuck clients', () => {
  it('closes a half-open connection that stops answering pings', async () => {
    const ws = await open();
    ws.on('error', () => undefined);
    expect(server.connections()).toBeGreaterThan(0);
    const socket = (ws as unknown as { _socket: Socket })._socket;
    socket.pause(); // no pongs from here on
    const deadline = Date.now() + 10_000;
    while (server.connections() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(server.connections()).toBe(0);
    ws.terminate();
  });

  it('disconnects a client that never reads instead of buffering without bound', async () => {
    // A server whose heartbeat is far away, so only the backlog bound can end this client.
    const dir = mkdtempSync(join(tmpdir(), 'icmpcap-static-'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>icmpcap</title>');
    const patient = await startServer({
      service,
      staticDir: dir,
      heartbeatMs: 600_000,
      maxBufferedBytes: 512 * 1024,
    });
    const ws = await new Promise<WebSocket>((resolve, reject) => {
      const c = new WebSocket(`ws://127.0.0.1:${patient.port}/ws`, ['icmpcap', `token.${patient.token}`]);
      c.once('open', () => resolve(c));
      c.once('error', reject);
    });
    ws.on('error', () => undefined);
    const socket = (ws as unknown as { _socket: Socket })._socket;
    socket.pause();
    const code = closed(ws);
    // Requests keep coming, replies are never read: the server must give up on this client.
    const big = JSON.stringify({ id: 1, method: 'hello' });
    let sent = 0;
    while (patient.connections() > 0 && sent < 400_000) {
      for (let i = 0; i < 500; i++) ws.send(big);
      sent += 500;
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(patient.connections()).toBe(0);
    socket.resume();
    await code;
    await patient.close();
    await stillServes();
  });
});
