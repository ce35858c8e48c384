/**
 * A browser client never names a path on the service's machine: exports are token-checked downloads,
 * files are opened by upload or from the capture folder, and every attempt to name a path is refused
 * before anything is read or written.
 */
import { execFileSync } from 'node:child_process';
import {
  constants,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Job } from '../../common/contract.js';
import { encodeRequest } from '../../common/wire.js';
import { link, pcapFile } from '../files/testing/file-builder.js';
import { ipv4Icmp } from '../files/testing/packets.js';
import { type RunningServer, startServer } from '../server.js';
import { CaptureService } from '../service.js';

let server: RunningServer;
let service: CaptureService;
let ws: WebSocket;
let tmp: string;
let outside: string;
let fifo: string;
let pcap: Uint8Array;
let nextId = 1;
const jobs: Job[] = [];

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-pagefiles-'));
  const statics = join(tmp, 'static');
  const captures = join(tmp, 'captures');
  outside = join(tmp, 'outside');
  for (const d of [statics, captures, outside]) mkdirSync(d);
  writeFileSync(join(statics, 'index.html'), '<!doctype html><title>icmpcap</title>');
  const packets = Array.from({ length: 200 }, (_, i) => ({
    tsNs: 1_700_000_000_000_000_000n + BigInt(i) * 1_000_000n,
    frame: link.ethernet(ipv4Icmp({ seq: i + 1 })),
  }));
  pcap = pcapFile(1, packets);
  writeFileSync(join(captures, 'pings.pcap'), pcap);
  fifo = join(outside, 'secret.pcap');
  execFileSync('mkfifo', [fifo]);
  symlinkSync(fifo, join(captures, 'escape.pcap'));
  service = new CaptureService({
    native: new Error('no addon in this test'),
    version: '1.2.3',
    spoolDir: join(tmp, 'spool'),
  });
  server = await startServer({
    service,
    staticDir: statics,
    files: { workDir: join(tmp, 'work'), captureFolder: captures },
  });
  ws = await new Promise<WebSocket>((resolve, reject) => {
    const c = new WebSocket(`ws://127.0.0.1:${server.port}/ws`, ['icmpcap', `token.${server.token}`]);
    c.once('open', () => resolve(c));
    c.once('error', reject);
  });
  ws.on('message', (raw) => {
    const msg = JSON.parse((raw as Buffer).toString()) as { event?: string; data?: unknown };
    if (msg.event === 'job') jobs.push(msg.data as Job);
  });
});

afterAll(async () => {
  ws.close();
  service.close();
  await server.close();
});

function request(
  method: string,
  params: unknown,
): Promise<{ result?: unknown; error?: { code: string; message: string } }> {
  const id = nextId++;
  return new Promise((resolve) => {
    const onMessage = (raw: WebSocket.RawData) => {
      const msg = JSON.parse((raw as Buffer).toString()) as { id?: number };
      if (msg.id !== id) return;
      ws.off('message', onMessage);
      resolve(msg as never);
    };
    ws.on('message', onMessage);
    for (const frame of encodeRequest(JSON.stringify({ id, method, params }))) ws.send(frame);
  });
}

async function finished(id: number): Promise<Job> {
  for (let i = 0; i < 200; i++) {
    const job = jobs.find((j) => j.id === id && j.state !== 'running');
    if (job) return job;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`job ${id} did not finish`);
}

/** True when something holds the FIFO open for reading (the service read through the link). */
function fifoHasReader(): boolean {
  try {
    openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    return true;
  } catch {
    return false;
  }
}

describe('browser clients and files', () => {
  it('refuses export.start to a path, and writes nothing', async () => {
    const reply = await request('export.start', {
      format: 'pcap',
      scope: 'all',
      path: join(outside, 'x.pcap'),
    });
    expect(reply.error?.code).toBe('bad-request');
    expect(reply.error?.message).toContain('cannot name a path');
    expect(readdirSync(outside)).toEqual(['secret.pcap']);
  });

  it('refuses file.open of /etc/shadow, a path out of the capture folder and a link out of it', async () => {
    expect((await request('file.open', { path: '/etc/shadow' })).error).toMatchObject({
      code: 'bad-request',
    });
    expect((await request('file.open', { from: 'folder', name: '../../etc/shadow' })).error).toMatchObject({
      code: 'bad-request',
    });
    expect((await request('file.open', { from: 'folder', name: 'escape.pcap' })).error).toMatchObject({
      code: 'not-found',
      message: 'there is no capture file named escape.pcap in the capture folder',
    });
    expect((await request('file.open', { from: 'dialog' })).error).toMatchObject({ code: 'bad-request' });
    expect(fifoHasReader()).toBe(false);
    expect(jobs).toEqual([]);
  });

  it('lists the capture folder without what leads out of it', async () => {
    const reply = await request('files.list', {});
    expect(reply.result).toMatchObject({
      mode: 'browser',
      folder: [{ name: 'pings.pcap', bytes: pcap.byteLength }],
      recent: [],
    });
  });

  it('opens a file from the capture folder and shows its name, not the path', async () => {
    const reply = await request('file.open', { from: 'folder', name: 'pings.pcap' });
    const job = await finished((reply.result as { id: number }).id);
    expect(job).toMatchObject({ state: 'done', path: 'pings.pcap' });
    expect(job.message).not.toContain(tmp);
  });

  it('offers an export of selected rows as a download that needs the token', async () => {
    const nos = Array.from({ length: 150 }, (_, i) => i + 1);
    const reply = await request('export.start', { format: 'pcap', scope: 'selected', nos });
    const id = (reply.result as { id: number }).id;
    const job = await finished(id);
    expect(job.state).toBe('done');
    expect(job.path).toMatch(/^icmpcap-.*\.pcap$/);
    const url = `http://127.0.0.1:${server.port}/download/${id}`;
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(`${url}?token=${server.token}`)).status).toBe(401);
    const res = await fetch(url, { headers: { Authorization: `Bearer ${server.token}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toContain(job.path);
    const bytes = new Uint8Array(await res.arrayBuffer());
    // A pcap of exactly the 150 selected packets: header + 150 x (record header + IP packet).
    expect(bytes.byteLength).toBe(24 + 150 * (16 + 84));
  });

  it("lists its jobs in hello as the page knows them: the download's and the opened file's names, no path here", async () => {
    const hello = (await request('hello', {})).result as { jobs: Job[] };
    const ended = jobs.filter((job) => job.state !== 'running');
    expect(ended.length).toBeGreaterThan(1);
    // What each job's last event told the page, word for word: a page that missed it learns the same.
    for (const job of ended) expect(hello.jobs.find((j) => j.id === job.id)).toEqual(job);
    expect(JSON.stringify(hello.jobs)).not.toContain(tmp);
    expect(hello.jobs.map((job) => job.path)).toEqual(expect.arrayContaining(['pings.pcap']));
  });

  it('opens an uploaded file, and refuses uploads without the token', async () => {
    const url = `http://127.0.0.1:${server.port}/upload`;
    expect((await fetch(url, { method: 'POST', body: new Blob([Buffer.from(pcap)]) })).status).toBe(401);
    const res = await fetch(url, {
      method: 'POST',
      body: new Blob([Buffer.from(pcap)]),
      headers: {
        Authorization: `Bearer ${server.token}`,
        'X-File-Name': encodeURIComponent('from my laptop.pcap'),
      },
    });
    expect(res.status).toBe(200);
    const { upload, name } = (await res.json()) as { upload: string; name: string };
    expect(name).toBe('from my laptop.pcap');
    const reply = await request('file.open', { from: 'upload', upload });
    const job = await finished((reply.result as { id: number }).id);
    expect(job).toMatchObject({ state: 'done', path: 'from my laptop.pcap' });
    expect((await request('file.open', { from: 'upload', upload: 'x'.repeat(24) })).error).toMatchObject({
      code: 'not-found',
      message: 'that upload is gone: upload the file again',
    });
  });
});
