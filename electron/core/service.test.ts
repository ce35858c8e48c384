/**
 * The capture service with real packets: AF_PACKET on loopback (each packet is seen leaving and arriving),
 * pings with an identifier of our own so other traffic cannot interfere, details read back from the spool,
 * exports read by tshark, a file opened again, and the spool surviving `kill -9`.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Aggregates, Job, Row } from '../common/contract.js';
import { readCaptureFileAll } from './files/index.js';
import { loadNative } from './native.js';
import { CaptureService } from './service.js';
import { stableHomes } from './privilege.js';

const ID = 30000 + (process.pid % 20000);
const N = 4;
let tmp: string;
let service: CaptureService;

function ping(id: number, count: number, target = '127.0.0.1'): void {
  execFileSync('ping', ['-c', String(count), '-i', '0.05', '-W', '2', '-e', String(id), target], {
    stdio: 'ignore',
  });
}

async function until<T>(probe: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function waitJob(svc: CaptureService, id: number): Promise<Job> {
  return new Promise((resolve) => {
    const off = svc.on((event, data) => {
      if (event === 'job' && (data as Job).id === id && (data as Job).state !== 'running') {
        off();
        resolve(data as Job);
      }
    });
  });
}

function ours(rows: Row[]): Row[] {
  return rows.filter((r) => r.id === ID);
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-service-'));
  service = new CaptureService({ native: loadNative(), version: 'test', spoolDir: join(tmp, 'spool') });
});

afterAll(() => {
  service.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('capture service with real packets on loopback', () => {
  let rows: Row[] = [];

  it('captures every echo request and reply with RTTs on the replies', async () => {
    const state = await service.handle('capture.start', { source: 'afpacket', interfaces: ['lo'] }, 'ipc');
    expect(state).toMatchObject({ state: 'running', source: 'afpacket', interfaces: ['lo'] });
    ping(ID, N);
    rows = await until(
      () => {
        const got = ours(service.rows(0, 2000).rows);
        return got.length >= 4 * N ? got : undefined;
      },
      `${4 * N} loopback records`,
    );
    service.stop();
    expect(rows).toHaveLength(4 * N);
    const requests = rows.filter((r) => r.type === 8);
    const replies = rows.filter((r) => r.type === 0);
    expect(requests.map((r) => r.seq)).toEqual([1, 1, 2, 2, 3, 3, 4, 4]);
    expect(replies.map((r) => r.seq)).toEqual([1, 1, 2, 2, 3, 3, 4, 4]);
    for (const r of rows)
      expect(r).toMatchObject({ iface: 'lo', src: '127.0.0.1', dst: '127.0.0.1', family: 4 });
    expect(rows.map((r) => r.dir).sort()).toEqual([
      ...Array<string>(2 * N).fill('in'),
      ...Array<string>(2 * N).fill('out'),
    ]);
    for (const r of replies) {
      expect(r.rttMs).not.toBeNull();
      expect(r.rttMs!).toBeGreaterThanOrEqual(0);
      expect(r.rttMs!).toBeLessThan(1000);
    }
  });

  it('filters, sorts and reports echo statistics for what it captured', async () => {
    const filtered = (await service.handle(
      'view.setFilter',
      { filter: `icmp.id == ${ID} && icmp.type == echo-reply && dir == in` },
      'ipc',
    )) as { view: number; filter: string };
    expect(filtered.view).toBe(N);
    expect(service.counts()).toMatchObject({
      view: N,
      filter: `icmp.id == ${ID} && icmp.type == echo-reply && dir == in`,
    });
    await service.handle('view.setSort', { column: 'seq', descending: true }, 'ipc');
    expect(service.rows(0, 10).rows.map((r) => r.seq)).toEqual([4, 3, 2, 1]);
    await expect(
      service.handle('view.setFilter', { filter: 'icmp.seq == == 3' }, 'ipc'),
    ).rejects.toMatchObject({
      code: 'filter-syntax',
      position: 12,
    });
    expect(service.counts().view).toBe(N); // a bad filter leaves the view as it was
    await expect(
      service.handle('filter.check', { filter: 'ip.src == 300.1.1.1' }, 'ipc'),
    ).rejects.toMatchObject({
      code: 'filter-syntax',
    });
    await service.handle('view.setSort', { column: null }, 'ipc');
    await service.handle('view.setFilter', { filter: '' }, 'ipc');
    expect(service.counts().view).toBe(service.store.length);

    const stats = (await service.handle('stats.get', {}, 'ipc')) as Aggregates;
    expect(stats.total).toBe(service.store.length);
    // Each loopback packet is seen leaving and arriving: one request each, none lost (as ping says).
    const peer = stats.peers.find((p) => p.peer === '127.0.0.1' && p.requests >= N);
    expect(peer).toBeDefined();
    expect(peer!.lost).toBe(0);
    expect(peer!.rttMinMs).not.toBeNull();
    expect(peer!.rttMaxMs!).toBeLessThan(1000);
  });

  it('gives the details of a record from the spool: the bytes that were on the wire', async () => {
    const req = rows.find((r) => r.type === 8 && r.seq === 2)!;
    const d = (await service.handle('record.details', { no: req.no }, 'ipc')) as {
      bytesHex: string;
      row: Row;
      capLen: number;
      origLen: number;
      hook: string;
    };
    const bytes = Buffer.from(d.bytesHex, 'hex');
    expect(d.row).toEqual(req);
    expect(bytes[0]! >> 4).toBe(4);
    expect(bytes[9]).toBe(1);
    const ihl = (bytes[0]! & 15) * 4;
    expect(bytes[ihl]).toBe(8);
    expect(bytes.readUInt16BE(ihl + 4)).toBe(ID);
    expect(bytes.readUInt16BE(ihl + 6)).toBe(2);
    expect(d.origLen).toBe(84);
    expect(d.capLen).toBe(84);
    expect(d.hook).toBe('none');
    await expect(service.handle('record.details', { no: 10_000_000 }, 'ipc')).rejects.toMatchObject({
      code: 'not-found',
    });
  });

  it('exports the selection to pcapng that tshark reads with the same fields', async () => {
    const path = join(tmp, 'selected.pcapng');
    const nos = rows.map((r) => r.no);
    const { id } = (await service.handle(
      'export.start',
      { format: 'pcapng', scope: 'selected', nos, path },
      'ipc',
    )) as {
      id: number;
    };
    const job = await waitJob(service, id);
    expect(job).toMatchObject({ state: 'done', done: nos.length, total: nos.length });
    const out = execFileSync(
      'tshark',
      ['-r', path, '-T', 'fields', '-e', 'icmp.type', '-e', 'icmp.ident', '-e', 'icmp.seq'],
      {
        encoding: 'utf8',
      },
    );
    const fromTshark = out.trim().split('\n');
    expect(fromTshark).toEqual(rows.map((r) => `${r.type}\t${ID}\t${r.seq}`));
  });

  it('opens an exported file again with the same records', async () => {
    const path = join(tmp, 'all.pcapng');
    const { id } = (await service.handle(
      'export.start',
      { format: 'pcapng', scope: 'selected', nos: rows.map((r) => r.no), path },
      'ipc',
    )) as {
      id: number;
    };
    await waitJob(service, id);
    const open = (await service.handle('file.open', { path }, 'ipc')) as { id: number };
    const job = await waitJob(service, open.id);
    expect(job.state).toBe('done');
    expect(job.message).toContain(`${4 * N} ICMP records`);
    const reopened = service.rows(0, 100).rows;
    expect(reopened.map(({ no: _no, rttMs: _rtt, ...rest }) => rest)).toEqual(
      rows.map(({ no: _no, rttMs: _rtt, ...rest }) => rest),
    );
  });

  it('refuses bad requests without changing anything', async () => {
    // The rate is records per second over the last second of ticks: it moves with the clock until a second
    // has passed since the last record came, whatever the requests do. Compare once it has settled.
    for (let k = 0; k < 50 && service.counts().rate !== 0; k++) await new Promise((r) => setTimeout(r, 100));
    const before = service.counts();
    await expect(
      service.handle('export.start', { format: 'xls', scope: 'all', path: '/tmp/x' }, 'ipc'),
    ).rejects.toMatchObject({
      code: 'bad-request',
    });
    await expect(
      service.handle('export.start', { format: 'csv', scope: 'selected', path: '/tmp/x' }, 'ipc'),
    ).rejects.toMatchObject({
      code: 'bad-request',
    });
    await expect(service.handle('file.open', { path: 'relative.pcap' }, 'ipc')).rejects.toMatchObject({
      code: 'bad-request',
    });
    await expect(service.handle('job.cancel', { id: 999 }, 'ipc')).rejects.toMatchObject({
      code: 'not-found',
    });
    expect(service.counts()).toEqual(before);
  });

  it('reports a damaged file with its byte offset and keeps what came before', async () => {
    const open = (await service.handle('file.open', { path: '/etc/hostname' }, 'ipc')) as { id: number };
    const job = await waitJob(service, open.id);
    expect(job.state).toBe('error');
    expect(job.message).toMatch(/byte 0/);
  });
});

describe('interfaces coming and going', () => {
  it('ends a capture whose interface is deleted, saying why, and tells the UI', async () => {
    const name = `icd${process.pid % 100000}`;
    execFileSync('ip', ['link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`]);
    execFileSync('ip', ['link', 'set', name, 'up']);
    const svc = new CaptureService({
      native: loadNative(),
      version: 'test',
      spoolDir: join(tmp, 'spool-gone'),
    });
    const interfaceEvents: string[][] = [];
    svc.on((event, data) => {
      if (event === 'interfaces') interfaceEvents.push((data as { name: string }[]).map((i) => i.name));
    });
    svc.watchInterfaces();
    try {
      svc.start({ source: 'afpacket', interfaces: [name], snaplen: 256 });
      execFileSync('ip', ['link', 'del', name]);
      const state = await until(
        () => (svc.captureState.state === 'stopped' ? svc.captureState : undefined),
        'the capture to end',
      );
      expect(state.message).toMatch(new RegExp(name));
      await until(
        () => (interfaceEvents.some((names) => !names.includes(name)) ? true : undefined),
        'an interfaces event',
      );
    } finally {
      svc.close();
      spawnSync('ip', ['link', 'del', name], { stdio: 'ignore' });
    }
  });
});

describe('crash safety', () => {
  it('keeps every record captured more than a second before kill -9 in the spool', async () => {
    const cache = join(tmp, 'crash-cache');
    // Started as root, serve runs unprivileged: its cache folder must be one it may write.
    chmodSync(tmp, 0o755);
    mkdirSync(cache, { mode: 0o777 });
    chmodSync(cache, 0o777);
    const child = spawn(process.execPath, ['bin/icmpcap.mjs', 'serve', '-i', 'lo', '--source', 'afpacket'], {
      env: { ...process.env, XDG_CACHE_HOME: cache },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await until(() => (/capturing with/.test(out) ? true : undefined), 'the service to capture', 20_000);
    const id = ID + 1;
    ping(id, N);
    await new Promise((r) => setTimeout(r, 1200));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    // The spool is a sequence of segment files (capture-<time>-<pid>-0000.pcapng, ...): every one opens.
    // Started as root, icmpcap runs as another account: its spool is in that account's cache.
    const dir = [
      join(cache, 'icmpcap', 'spool'),
      ...stableHomes().map((home) => join(home, 'cache', 'icmpcap', 'spool')),
    ].find((d) => existsSync(d) && readdirSync(d).some((f) => f.includes(`-${child.pid}-`)))!;
    const spools = readdirSync(dir)
      .filter((f) => f.endsWith('.pcapng') && f.includes(`-${child.pid}-`))
      .sort();
    expect(spools.length).toBeGreaterThanOrEqual(1);
    expect(spools[0]).toMatch(/^capture-.*-0000\.pcapng$/);
    const mine = [];
    for (const file of spools) {
      const { records } = await readCaptureFileAll(join(dir, file));
      mine.push(...records.filter((r) => r.id === id));
    }
    expect(mine).toHaveLength(4 * N);
    for (const file of spools) rmSync(join(dir, file), { force: true });
  });
});
