/** Beyond loopback, browser mode serves HTTPS only: a self-signed certificate made once, or the user's. */
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type RunningServer, startServer } from '../server.js';
import { CaptureService } from '../service.js';
import { serveSecurity } from './serve-setup.js';

const tmp = mkdtempSync(join(tmpdir(), 'icmpcap-tls-'));
const saved = process.env.XDG_CONFIG_HOME;
process.env.XDG_CONFIG_HOME = join(tmp, 'config');
const service = new CaptureService({ native: new Error('no addon in this test'), version: '1.2.3' });
let server: RunningServer | null = null;

afterAll(async () => {
  process.env.XDG_CONFIG_HOME = saved;
  service.close();
  await server?.close();
});

function get(port: string | number, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path: '/', ca, servername: 'localhost' }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('HTTPS beyond loopback', () => {
  it('makes a self-signed certificate once, keeps its key private and reuses it', async () => {
    const first = await serveSecurity({ listen: '0.0.0.0' });
    expect(first.tls?.created).toBe(true);
    expect(first.notes.join('\n')).toContain(first.tls!.fingerprint);
    expect(statSync(join(tmp, 'config', 'icmpcap', 'tls', 'key.pem')).mode & 0o777).toBe(0o600);
    const x509 = new X509Certificate(first.tls!.cert);
    expect(x509.checkIP('127.0.0.1')).toBe('127.0.0.1');
    const second = await serveSecurity({ listen: '0.0.0.0' });
    expect(second.tls).toMatchObject({ created: false, fingerprint: first.tls!.fingerprint });
  });

  it('serves HTTPS and wss with the token, and nothing in plain HTTP', async () => {
    const { tls } = await serveSecurity({ listen: '0.0.0.0' });
    const statics = join(tmp, 'static');
    mkdirSync(statics, { recursive: true });
    writeFileSync(join(statics, 'index.html'), '<!doctype html><title>icmpcap</title>');
    server = await startServer({ service, staticDir: statics, host: '0.0.0.0', tls: tls! });
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/#token=/);
    expect(await get(server.port, tls!.cert)).toBe(200);
    await expect(fetch(`http://127.0.0.1:${server.port}/`)).rejects.toThrow();
    const ws = new WebSocket(`wss://127.0.0.1:${server.port}/ws`, ['icmpcap', `token.${server.token}`], {
      ca: tls!.cert,
    });
    const hello = await new Promise<Record<string, unknown>>((resolve, reject) => {
      ws.once('open', () => ws.send(JSON.stringify({ id: 1, method: 'hello' })));
      ws.on('message', (raw) => resolve(JSON.parse((raw as Buffer).toString()) as Record<string, unknown>));
      ws.once('error', reject);
    });
    expect(hello).toMatchObject({ id: 1, result: { version: '1.2.3' } });
    ws.close();
  });

  it('takes the user certificate, and says when one half is missing', async () => {
    const { tls } = await serveSecurity({ listen: '0.0.0.0' });
    writeFileSync(join(tmp, 'c.pem'), tls!.cert);
    writeFileSync(join(tmp, 'k.pem'), tls!.key);
    const given = await serveSecurity({
      listen: '10.0.0.1',
      'tls-cert': join(tmp, 'c.pem'),
      'tls-key': join(tmp, 'k.pem'),
    });
    expect(given.tls?.fingerprint).toBe(tls!.fingerprint);
    await expect(serveSecurity({ 'tls-cert': join(tmp, 'c.pem') })).rejects.toThrow(
      '--tls-cert and --tls-key go together',
    );
    await expect(
      serveSecurity({ 'tls-cert': join(tmp, 'k.pem'), 'tls-key': join(tmp, 'k.pem') }),
    ).rejects.toThrow('is not a PEM certificate');
    expect((await serveSecurity({})).tls).toBeUndefined();
  });
});
