/**
 * Remote agents: certificate pinning on first use, the relay's input checks, and real agents (the
 * browser-mode server over HTTPS and plain loopback http) lost and found again.
 */
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createTlsServer } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostInfo } from '../../common/contract.js';
import { type RunningServer, startServer } from '../server.js';
import { CaptureService } from '../service.js';
import { selfSignedTls } from '../web/tls.js';
import { RemoteHosts, agentUrl } from './hosts.js';
import { PinStore } from './pins.js';
import { readTokenFile } from './cli.js';

const A = 'AA:' + '11:'.repeat(30) + '11';
const B = 'BB:' + '22:'.repeat(30) + '22';
const TOKEN = 'remote-test-token-0123456789abcdef';

let dir: string;
let staticDir: string;
const services: CaptureService[] = [];
const servers: RunningServer[] = [];
const hostSets: RemoteHosts[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'icmpcap-remote-'));
  staticDir = mkdtempSync(join(tmpdir(), 'icmpcap-static-'));
  writeFileSync(join(staticDir, 'index.html'), '<!doctype html><title>icmpcap</title>');
});

afterAll(async () => {
  for (const h of hostSets) h.close();
  for (const s of servers) await s.close();
  for (const s of services) s.close();
});

async function agent(opts: { port?: number; tls?: { cert: string; key: string }; version?: string } = {}) {
  const service = new CaptureService({
    native: new Error('no addon in this test'),
    version: opts.version ?? '9.9.9',
  });
  services.push(service);
  const server = await startServer({
    service,
    staticDir,
    token: TOKEN,
    ...(opts.port ? { port: opts.port } : {}),
    ...(opts.tls ? { tls: opts.tls } : {}),
    files: { workDir: join(dir, 'work') },
  });
  servers.push(server);
  return server;
}

function hosts(name: string): RemoteHosts {
  const h = new RemoteHosts({
    pins: new PinStore(join(dir, name, 'known-hosts.json')),
    timing: { backoffMs: [100, 200], heartbeatMs: 300, connectTimeoutMs: 2000 },
  });
  hostSets.push(h);
  return h;
}

/** Matches an error message containing `part` (a string or a pattern). */
function refusal(part: string | RegExp): string {
  return (typeof part === 'string' ? expect.stringContaining(part) : expect.stringMatching(part)) as string;
}

/** Polls until the host is in `state` (and passes `also`), then gives its info. */
async function until(h: RemoteHosts, id: string, state: HostInfo['state'], also = (_: HostInfo) => true) {
  for (let i = 0; i < 200; i++) {
    const info = h.list().find((x) => x.id === id);
    if (info?.state === state && also(info)) return info;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`host ${id} never became ${state}: ${JSON.stringify(h.list())}`);
}

describe('certificate pins', () => {
  it('pins on first use, keeps it private, matches it later, and refuses a change showing both fingerprints', () => {
    const file = join(dir, 'pins', 'known-hosts.json');
    const pins = new PinStore(file);
    expect(pins.check('192.0.2.7:8443', A)).toEqual({ outcome: 'pinned-now', fingerprint: A });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(new PinStore(file).check('192.0.2.7:8443', A.toLowerCase()).outcome).toBe('match');
    const changed = pins.check('192.0.2.7:8443', B);
    expect(changed.outcome).toBe('changed');
    if (changed.outcome !== 'changed') return;
    expect(changed.message).toContain(`pinned SHA-256 ${A}`);
    expect(changed.message).toContain(`now ${B}`);
    expect(changed.message).toContain('Trust new certificate');
    expect(changed.message).toContain(file);
    // Another port of the same address is another host.
    expect(pins.check('192.0.2.7:9443', B).outcome).toBe('pinned-now');
    pins.trust('192.0.2.7:8443', B);
    expect(pins.check('192.0.2.7:8443', B).outcome).toBe('match');
  });

  it('refuses to work from a damaged pin file rather than forgetting every pin', () => {
    const file = join(dir, 'damaged.json');
    writeFileSync(file, '{ not json');
    expect(() => new PinStore(file).check('x:1', A)).toThrow(/fix or remove it/);
    expect(readFileSync(file, 'utf8')).toBe('{ not json');
  });
});

describe('agent addresses', () => {
  it('takes https anywhere and http only on loopback unless allowed', () => {
    expect(agentUrl('https://192.0.2.7:8443/', false).host).toBe('192.0.2.7:8443');
    expect(agentUrl('http://127.0.0.1:7000', false).port).toBe('7000');
    expect(agentUrl('http://[::1]:7000/', false).port).toBe('7000');
    expect(() => agentUrl('http://192.0.2.7:7000/', false)).toThrow(
      /unencrypted.*https:\/\/192\.0\.2\.7:7000/,
    );
    expect(agentUrl('http://192.0.2.7:7000/', true).protocol).toBe('http:');
    expect(() => agentUrl('ftp://192.0.2.7/', false)).toThrow(/https:\/\//);
    expect(() => agentUrl('https://u:p@192.0.2.7/', false)).toThrow(/token in its own field/);
    expect(() => agentUrl('https://192.0.2.7/ws', false)).toThrow(/without a path/);
    expect(() => agentUrl('not a url', false)).toThrow(/not an address/);
  });
});

describe('serve --token-file', () => {
  it('takes one token line and refuses anything else, saying what a token looks like', () => {
    const good = join(dir, 'token-good');
    writeFileSync(good, `${TOKEN}\n`);
    expect(readTokenFile(good)).toBe(TOKEN);
    const bad = join(dir, 'token-bad');
    writeFileSync(bad, 'two words here, too short');
    expect(() => readTokenFile(bad)).toThrow(/one token of 16 to 256 letters/);
    expect(() => readTokenFile(join(dir, 'missing'))).toThrow(/cannot read/);
  });
});

describe('the relay checks every input', () => {
  it('refuses bad parameters, unknown hosts and methods, and file requests, before any network', async () => {
    const h = hosts('inputs');
    await expect(h.handle('hosts.add', { url: 'https://192.0.2.7/', token: 'short' })).rejects.toMatchObject({
      code: 'bad-request',
      message: refusal('(token)'),
    });
    await expect(
      h.handle('hosts.add', { url: 'https://192.0.2.7/', token: TOKEN, extra: 1 }),
    ).rejects.toMatchObject({ code: 'bad-request' });
    await expect(h.handle('hosts.add', { url: 'http://192.0.2.7:1/', token: TOKEN })).rejects.toMatchObject({
      code: 'bad-request',
      message: refusal('unencrypted'),
    });
    await expect(
      h.handle('hosts.add', { url: 'https://192.0.2.7/', token: TOKEN, name: '<b>' }),
    ).rejects.toMatchObject({
      code: 'bad-request',
    });
    await expect(h.handle('hosts.remove', { host: 'h99' })).rejects.toMatchObject({ code: 'not-found' });
    await expect(h.handle('hosts.remove', { host: '../x' })).rejects.toMatchObject({ code: 'bad-request' });
    await expect(h.handle('hosts.request', { host: 'h1', method: 'hello' })).rejects.toMatchObject({
      code: 'not-found',
    });
    await expect(h.handle('hosts.nope', {})).rejects.toMatchObject({ code: 'unknown-method' });
    await expect(h.handle('hosts.trust', { host: 'h1', fingerprint: 'xx' })).rejects.toMatchObject({
      code: 'bad-request',
    });
    expect(h.list()).toEqual([]);
  });

  it('relays the contract to a loopback agent, never shows the token, and refuses relayed files and bad params', async () => {
    const server = await agent({ version: '7.7.7' });
    const h = hosts('relay');
    const seen: string[] = [];
    h.on((event, data) => seen.push(JSON.stringify({ event, data })));
    const added = (await h.handle('hosts.add', {
      url: `http://127.0.0.1:${server.port}/`,
      token: TOKEN,
      name: 'lab',
    })) as HostInfo;
    const info = await until(h, added.id, 'connected');
    expect(info).toMatchObject({
      name: 'lab',
      url: `http://127.0.0.1:${server.port}/`,
      version: '7.7.7',
      generation: 1,
    });
    const hello = (await h.handle('hosts.request', { host: added.id, method: 'hello' })) as {
      version: string;
    };
    expect(hello.version).toBe('7.7.7');
    await expect(
      h.handle('hosts.request', { host: added.id, method: 'view.rows', params: { start: -1, count: 1 } }),
    ).rejects.toMatchObject({ code: 'bad-request', message: refusal('view.rows (start)') });
    await expect(
      h.handle('hosts.request', {
        host: added.id,
        method: 'export.start',
        params: { format: 'pcapng', scope: 'all' },
      }),
    ).rejects.toMatchObject({
      code: 'bad-request',
      message: refusal('files stay on that host'),
    });
    await expect(h.handle('hosts.request', { host: added.id, method: 'hosts.list' })).rejects.toMatchObject({
      code: 'unknown-method',
    });
    // The remote's own errors come back as its contract errors, named by host.
    await expect(
      h.handle('hosts.request', {
        host: added.id,
        method: 'view.setFilter',
        params: { filter: 'icmp.type ==' },
      }),
    ).rejects.toMatchObject({ code: 'filter-syntax', message: refusal(/^lab: /) });
    await expect(
      h.handle('hosts.add', { url: `http://127.0.0.1:${server.port}`, token: TOKEN }),
    ).rejects.toMatchObject({ message: refusal('already added') });
    expect(JSON.stringify(h.list())).not.toContain(TOKEN);
    expect(seen.join('\n')).not.toContain(TOKEN);
    expect(seen.some((s) => s.startsWith('{"event":"hosts"') && s.includes('"state":"connected"'))).toBe(
      true,
    );
    await h.handle('hosts.remove', { host: added.id });
    expect(h.list()).toEqual([]);
  });
});

describe('real agents', () => {
  it('a stopped agent is unreachable since it went, retried, and back when restarted on its port', async () => {
    const first = await agent();
    const port = first.port;
    const h = hosts('lost');
    const { id } = (await h.handle('hosts.add', {
      url: `http://127.0.0.1:${port}/`,
      token: TOKEN,
    })) as HostInfo;
    await until(h, id, 'connected');
    const before = Date.now();
    await first.close();
    const gone = await until(h, id, 'unreachable');
    expect(gone.unreachableSinceMs).toBeGreaterThanOrEqual(before);
    await expect(h.handle('hosts.request', { host: id, method: 'hello' })).rejects.toMatchObject({
      code: 'host-unreachable',
      message: refusal('unreachable since'),
    });
    // Still unreachable after further attempts: the time it went stays.
    const later = await until(h, id, 'unreachable', (i) => i.retryAtMs !== gone.retryAtMs);
    expect(later.unreachableSinceMs).toBe(gone.unreachableSinceMs);
    await agent({ port, version: '8.8.8' });
    const back = await until(h, id, 'connected');
    expect(back).toMatchObject({ version: '8.8.8', generation: 2, unreachableSinceMs: null });
  });

  it('HTTPS: pins the certificate on first use; a changed one is refused with both fingerprints and never gets the token', async () => {
    const tlsA = await selfSignedTls('127.0.0.1', join(dir, 'tls-a'));
    const tlsB = await selfSignedTls('127.0.0.1', join(dir, 'tls-b'));
    expect(tlsA.fingerprint).not.toBe(tlsB.fingerprint);
    const first = await agent({ tls: tlsA });
    const port = first.port;
    const h = hosts('tls');
    const { id } = (await h.handle('hosts.add', {
      url: `https://127.0.0.1:${port}/`,
      token: TOKEN,
    })) as HostInfo;
    const info = await until(h, id, 'connected');
    expect(info.fingerprint).toBe(tlsA.fingerprint);
    expect(new PinStore(join(dir, 'tls', 'known-hosts.json')).pinned(`127.0.0.1:${port}`)).toBe(
      tlsA.fingerprint,
    );
    await first.close();

    // Someone else answers on that port with another certificate: it records whatever it is sent.
    let received = '';
    const impostor = createTlsServer({ cert: tlsB.cert, key: tlsB.key }, (socket) => {
      socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
      socket.on('error', () => undefined);
    });
    await new Promise<void>((r) => impostor.listen(port, '127.0.0.1', r));
    try {
      const refused = await until(h, id, 'refused');
      expect(refused.message).toContain(`pinned SHA-256 ${tlsA.fingerprint}`);
      expect(refused.message).toContain(`now ${tlsB.fingerprint}`);
      expect(refused.presentedFingerprint).toBe(tlsB.fingerprint);
      expect(refused.fingerprint).toBe(tlsA.fingerprint);
      expect(received).toBe('');
      await expect(
        h.handle('hosts.trust', { host: id, fingerprint: tlsA.fingerprint }),
      ).rejects.toMatchObject({
        code: 'bad-request',
      });
    } finally {
      await new Promise((r) => impostor.close(r));
    }

    // The host really made a new certificate: the user accepts it, and it connects.
    await agent({ port, tls: tlsB });
    await h.handle('hosts.trust', { host: id, fingerprint: tlsB.fingerprint });
    const back = await until(h, id, 'connected');
    expect(back.fingerprint).toBe(tlsB.fingerprint);
    expect(back.presentedFingerprint).toBeUndefined();
  });
});
