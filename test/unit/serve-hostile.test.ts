/**
 * The hostile-input suite: more than 10,000 generated HTTP requests and WebSocket frames (fuzzed paths,
 * methods, headers, bodies, frames, JSON, parts and contract calls, some naming files outside the
 * service's folders) against a running `icmpcap serve`. Afterwards it still answers `hello`, its memory
 * is within 20 % of where it started, and no file outside its folders was touched.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  constants,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { type Socket, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { PageRequestSchemas } from '../../electron/common/contract.js';
import { encodeRequest } from '../../electron/common/wire.js';
import { link, pcapFile } from '../../electron/core/files/testing/file-builder.js';
import { ipv4Icmp } from '../../electron/core/files/testing/packets.js';

const ROOT = resolve(import.meta.dirname, '../..');
let tmp: string;
let outside: string;
let fifo: string;
let captures: string;
let proc: ChildProcess;
let port = 0;
let token = '';
let output = '';

/** A small seeded generator, so a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = prng(Number(process.env.ICMPCAP_FUZZ_SEED ?? 0x1c4ca9));
const int = (n: number): number => Math.floor(rand() * n);
const pick = <T>(list: readonly T[]): T => list[int(list.length)]!;
const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256)));

function rss(): number {
  const status = readFileSync(`/proc/${proc.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) * 1024;
}

function fingerprint(dir: string): string {
  return readdirSync(dir)
    .sort()
    .map((name) => {
      const st = statSync(join(dir, name));
      return `${name}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
    })
    .join('\n');
}

let outsideBefore = '';
let capturesBefore = '';

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-hostile-'));
  outside = join(tmp, 'outside');
  captures = join(tmp, 'captures');
  for (const d of ['home', 'cwd', 'outside', 'captures']) mkdirSync(join(tmp, d));
  writeFileSync(join(outside, 'canary.pcap'), 'do not touch');
  fifo = join(outside, 'fifo.pcap');
  execFileSync('mkfifo', ['-m', '0666', fifo]);
  // Started as root, serve runs as nobody: let it into the capture folder, and let it write the canary
  // folder and open the FIFO if it tried, so that "untouched" means it did not try.
  chmodSync(tmp, 0o755);
  chmodSync(captures, 0o755);
  chmodSync(outside, 0o777);
  const packets = Array.from({ length: 500 }, (_, i) => ({
    tsNs: 1_700_000_000_000_000_000n + BigInt(i) * 1_000_000n,
    frame: link.ethernet(ipv4Icmp({ seq: i + 1, type: i % 2 ? 0 : 8 })),
  }));
  writeFileSync(join(captures, 'pings.pcap'), pcapFile(1, packets));
  outsideBefore = fingerprint(outside);
  capturesBefore = fingerprint(captures);
  proc = spawn(
    process.execPath,
    [
      // V8's young generation grows to 48 MB under allocation pressure and shrinks only when idle: capped,
      // so that RSS measures what stays (a leak), and a leak in the old space ends the process (fails).
      '--max-semi-space-size=1',
      '--max-old-space-size=64',
      join(ROOT, 'bin/icmpcap.mjs'),
      'serve',
      ...(process.getuid?.() === 0 ? ['-Z', 'nobody'] : []),
      '--no-start',
      '--captures',
      captures,
      '--max-upload-mb',
      '1',
    ],
    {
      cwd: join(tmp, 'cwd'),
      env: {
        ...process.env,
        HOME: join(tmp, 'home'),
        XDG_CACHE_HOME: join(tmp, 'home', 'cache'),
        XDG_CONFIG_HOME: join(tmp, 'home', 'config'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  await new Promise<void>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`serve did not start:\n${output}`)), 20_000);
    const onData = (d: Buffer): void => {
      output += d.toString();
      const m = /serving on http:\/\/127\.0\.0\.1:(\d+)\/#token=(\S+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        port = Number(m[1]);
        token = m[2]!;
        ok();
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.on('exit', (code) => fail(new Error(`serve exited with ${code}:\n${output}`)));
  });
});

afterAll(async () => {
  if (proc.exitCode === null) {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
  }
});

function connectOnce(): Promise<WebSocket | number> {
  return new Promise((ok) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, ['icmpcap', `token.${token}`]);
    ws.on('error', () => undefined);
    ws.once('open', () => ok(ws));
    ws.once('unexpected-response', (_q, res) => ok(res.statusCode ?? 0));
  });
}

/** Connects as the page does; after the fuzzer's wrong tokens its address may have to wait (429). */
async function client(): Promise<WebSocket> {
  for (let attempt = 0; attempt < 30; attempt++) {
    const ws = await connectOnce();
    if (typeof ws !== 'number') return ws;
    if (ws !== 429) throw new Error(`upgrade refused: ${ws}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error('still rate-limited after 15 s');
}

/** Sends a request and waits for its reply (events and other replies are skipped). */
function call(ws: WebSocket, id: number, method: string, params: unknown): Promise<Record<string, unknown>> {
  return new Promise((ok, fail) => {
    const timer = setTimeout(
      () => fail(new Error(`no reply to ${method} #${id} (state ${ws.readyState})`)),
      5000,
    );
    const onMessage = (raw: WebSocket.RawData): void => {
      const msg = JSON.parse((raw as Buffer).toString()) as Record<string, unknown>;
      if (msg.id !== id) return;
      clearTimeout(timer);
      ws.off('message', onMessage);
      ws.off('close', onClose);
      ok(msg);
    };
    const onClose = (): void => {
      clearTimeout(timer);
      ws.off('message', onMessage);
      fail(new Error('closed'));
    };
    ws.once('close', onClose);
    ws.on('message', onMessage);
    for (const frame of encodeRequest(JSON.stringify({ id, method, params }))) ws.send(frame);
  });
}

function raw(request: Buffer | string): Promise<void> {
  return new Promise((ok) => {
    const socket: Socket = tcpConnect(port, '127.0.0.1', () => socket.end(request));
    socket.setTimeout(5000, () => socket.destroy());
    socket.on('data', () => undefined);
    socket.on('error', () => ok());
    socket.on('close', () => ok());
  });
}

const PATH_PIECES = [
  '%ff',
  '%',
  '%e0%a4%a',
  '..',
  '%2e%2e',
  '%2f',
  '%00',
  '\u00e9',
  'ws',
  'download',
  'upload',
  'index.html',
  'assets',
  '//',
  '~',
  '%c0%af',
  'metrics',
  '?token=x',
  '#',
];
const METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'OPTIONS',
  'PATCH',
  'TRACE',
  'CONNECT',
  'G\u0000T',
  'BREW',
];

function fuzzPath(): string {
  let p = '';
  const n = 1 + int(6);
  for (let i = 0; i < n; i++)
    p += '/' + (rand() < 0.7 ? pick(PATH_PIECES) : encodeURIComponent(bytes(int(12)).toString('latin1')));
  if (rand() < 0.02) p += '/' + 'a'.repeat(20_000);
  return p;
}

function fuzzHttp(): Buffer {
  const headers: string[] = [];
  const host =
    rand() < 0.8
      ? `127.0.0.1:${port}`
      : pick(['evil.example', '', `localhost:${port}`, '[::1]', 'x'.repeat(300)]);
  if (host) headers.push(`Host: ${host}`);
  if (rand() < 0.4)
    headers.push(
      `Authorization: ${pick([`Bearer ${token}`, 'Bearer wrong', 'Basic xyz', `Bearer ${'z'.repeat(900)}`, 'Bearer'])}`,
    );
  if (rand() < 0.2) headers.push(`X-File-Name: ${pick(['%ff', '../../etc/passwd', 'a.pcap', '%00x', 'é'])}`);
  if (rand() < 0.1)
    headers.push(
      `Upgrade: websocket`,
      `Connection: Upgrade`,
      `Sec-WebSocket-Key: ${bytes(16).toString('base64')}`,
      'Sec-WebSocket-Version: 13',
      `Sec-WebSocket-Protocol: ${pick(['icmpcap', `icmpcap, token.${token}`, 'token.x', ''])}`,
    );
  let body: Buffer = Buffer.alloc(0);
  if (rand() < 0.3) {
    body = bytes(int(3000));
    headers.push(
      rand() < 0.8
        ? `Content-Length: ${rand() < 0.8 ? body.length : int(100_000)}`
        : 'Transfer-Encoding: chunked',
    );
  }
  if (rand() < 0.05) headers.push(`X-Junk: ${bytes(40).toString('latin1')}`);
  const method = pick(METHODS);
  const target = rand() < 0.3 ? pick(['/download/1', '/download/999', '/upload', '/ws', '/']) : fuzzPath();
  const head =
    rand() < 0.03
      ? bytes(int(200)).toString('latin1')
      : `${method} ${target} HTTP/1.${int(2)}\r\n${headers.join('\r\n')}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

const METHOD_NAMES = Object.keys(PageRequestSchemas);

function fuzzValue(depth = 0): unknown {
  switch (int(depth > 2 ? 6 : 9)) {
    case 0:
      return int(2) ? -int(1e6) : int(2 ** 31);
    case 1:
      return pick([NaN, 1e308, -0, 0.5, 2 ** 53, 2 ** 32 + 1]);
    case 2:
      return pick([
        '',
        'x'.repeat(int(5000)),
        '__proto__',
        'constructor',
        '../../etc/shadow',
        '/etc/shadow',
        join(outside, 'canary.pcap'),
        fifo,
        'icmp',
        'icmp.type == 8 &&',
        '\u0000',
        '😀',
      ]);
    case 3:
      return null;
    case 4:
      return int(2) === 1;
    case 5:
      return undefined;
    case 6:
      return Array.from({ length: int(8) }, () => fuzzValue(depth + 1));
    case 7:
      return Array.from({ length: int(3000) }, () => int(600) + 1);
    default: {
      const o: Record<string, unknown> = {};
      for (const key of [
        'path',
        'from',
        'name',
        'upload',
        'format',
        'scope',
        'nos',
        'start',
        'count',
        'filter',
        'column',
        'descending',
        'no',
        'id',
        'peers',
        'source',
        'interfaces',
        'snaplen',
        'limit',
        '__proto__',
      ]) {
        if (rand() < 0.25) o[key] = fuzzValue(depth + 1);
      }
      return o;
    }
  }
}

/** Frames a client could send: contract calls with fuzzed params, broken JSON, parts, binary. */
function fuzzFrame(id: number): string | Buffer | string[] {
  const r = rand();
  if (r < 0.55) {
    const method =
      rand() < 0.9
        ? pick(METHOD_NAMES.filter((m) => m !== 'capture.start'))
        : pick(['__proto__', 'constructor', 'x'.repeat(100), '']);
    const params =
      method === 'export.start' && rand() < 0.5
        ? { format: 'pcap', scope: 'all', path: join(outside, `w${id}.pcap`) }
        : method === 'file.open' && rand() < 0.5
          ? pick([
              { path: '/etc/shadow' },
              { from: 'folder', name: '../outside/canary.pcap' },
              { from: 'folder', name: 'pings.pcap' },
              { path: fifo },
            ])
          : fuzzValue();
    return encodeRequest(JSON.stringify({ id, method, params }));
  }
  if (r < 0.7)
    return pick([
      '{',
      '[]',
      'null',
      '"x"',
      '{"id":-1}',
      '{"id":1e400,"method":"hello"}',
      '{"id":1,"method":7}',
      `{"id":${id},"method":"hello","params":[]}`,
      'x'.repeat(int(60_000)),
    ]);
  if (r < 0.8) return `#${int(5)}/${int(5)}\n${'p'.repeat(int(1000))}`;
  if (r < 0.9) return bytes(int(500));
  return JSON.stringify({ id, method: 'view.rows', params: { start: int(600), count: int(2001) } });
}

describe('icmpcap serve under hostile input', () => {
  it('survives 10,000 generated requests and frames with its memory and files intact', async () => {
    // Data to work on: the capture file from the capture folder.
    const first = await client();
    const opened = await call(first, 1, 'file.open', { from: 'folder', name: 'pings.pcap' });
    expect(opened).toMatchObject({ result: { id: expect.any(Number) as number } });
    await new Promise((r) => setTimeout(r, 500));

    let http = 0;
    let frames = 0;
    const round = async (httpCount: number, frameCount: number): Promise<void> => {
      for (let done = 0; done < httpCount;) {
        const batch = Math.min(50, httpCount - done);
        await Promise.all(Array.from({ length: batch }, () => raw(fuzzHttp())));
        done += batch;
        http += batch;
      }
      let ws = await client();
      let id = 10;
      for (let sent = 0; sent < frameCount;) {
        for (let i = 0; i < 100 && sent < frameCount; i++, sent++) {
          if (ws.readyState !== WebSocket.OPEN) ws = await client();
          const frame = fuzzFrame(id++);
          const parts = Array.isArray(frame) ? frame : [frame];
          for (const part of parts) ws.send(part);
          frames += parts.length;
          if (rand() < 0.003) ws.send('y'.repeat(70 * 1024)); // over the frame limit: closed
        }
        // A barrier: the service has caught up (on a new connection if this one was closed).
        for (;;) {
          if (ws.readyState !== WebSocket.OPEN) ws = await client();
          const reply = await call(ws, ++id, 'hello', {}).catch((err: Error) => err);
          if (!(reply instanceof Error)) break;
          if (reply.message !== 'closed') throw reply;
        }
      }
      ws.close();
    };

    // Warm-up as long as the measured round: code compiled, pools, caches and the heap's own growth settled
    // (with a short warm-up the heap was still growing toward its plateau, ~20 % above; a leak keeps growing
    // over several such rounds, which this measures).
    await round(4000, 7000);
    const startRss = rss();
    await round(4000, 7000);
    const endRss = rss();

    const ws = await client();
    expect(await call(ws, 5, 'hello', {})).toMatchObject({ id: 5, result: { transport: 'websocket' } });
    ws.close();
    first.close();
    expect(http + frames).toBeGreaterThanOrEqual(10_000);
    expect(proc.exitCode).toBeNull();
    expect(endRss / startRss).toBeLessThan(1.2);
    // Nothing outside its folders: the canary folder, the capture folder and the working directory.
    expect(fingerprint(outside)).toBe(outsideBefore);
    expect(fingerprint(captures)).toBe(capturesBefore);
    expect(readdirSync(join(tmp, 'cwd'))).toEqual([]);
    // The FIFO was never opened for reading.
    expect(() => openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK)).toThrow(/ENXIO/);
    expect(output).not.toMatch(/Uncaught|TypeError|RangeError|URIError/);
    process.stdout.write(`hostile: ${http} HTTP requests, ${frames} frames; RSS ${startRss} -> ${endRss}\n`);
  });
});
