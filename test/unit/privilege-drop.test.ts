/**
 * Started as root, `icmpcap serve` drops root like `tcpdump -Z`: the serving process has a non-zero uid
 * and no capability, and capture keeps working through the capture helper: real pings from a namespace
 * are seen, and a capture stopped and started again from the UI (the contract over the WebSocket) still
 * sees them.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lookupGroup } from '../../electron/core/privilege.js';
import { type NetnsPair, createNetnsPair } from '../support/netns.js';

const ROOT = resolve(import.meta.dirname, '../..');
const isRoot = process.getuid?.() === 0;
let net: NetnsPair;
let proc: ChildProcess;
let output = '';
let url = '';
let clientScript = '';
/** This file's temporary folder (the page stand-in): removed after. */
let tmp = '';

beforeAll(async () => {
  if (!isRoot) return;
  net = createNetnsPair('zdrop');
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-drop-'));
  // A page stand-in inside the namespace: runs contract calls in order and prints the replies.
  clientScript = join(tmp, 'client.mjs');
  writeFileSync(
    clientScript,
    `import WebSocket from ${JSON.stringify(join(ROOT, 'node_modules/ws/wrapper.mjs'))};
const [url, ...steps] = process.argv.slice(2);
const u = new URL(url);
const token = new URLSearchParams(u.hash.slice(1)).get('token');
const ws = new WebSocket('ws://' + u.host + '/ws', ['icmpcap', 'token.' + token]);
let id = 0;
const call = (method, params) => new Promise((ok) => {
  const me = ++id;
  const on = (raw) => { const m = JSON.parse(raw.toString()); if (m.id === me) { ws.off('message', on); ok(m); } };
  ws.on('message', on);
  ws.send(JSON.stringify({ id: me, method, params }));
});
ws.on('open', async () => {
  const out = [];
  for (const step of steps) {
    const [method, params] = JSON.parse(step);
    out.push(await call(method, params));
  }
  console.log(JSON.stringify(out));
  ws.close();
});
`,
  );
  const env = { ...process.env };
  delete env.SUDO_USER;
  proc = spawn(
    'ip',
    [
      'netns',
      'exec',
      net.a,
      process.execPath,
      join(ROOT, 'bin/icmpcap.mjs'),
      'serve',
      '-Z',
      'nobody',
      '--source',
      'afpacket',
      '-i',
      net.ifA,
    ],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  url = await new Promise<string>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`serve did not start:\n${output}`)), 30_000);
    const onData = (d: Buffer): void => {
      output += d.toString();
      const m = /serving on (http:\/\/\S+)/.exec(output);
      if (m && /capturing with|not capturing/.test(output)) {
        clearTimeout(timer);
        ok(m[1]!);
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.on('exit', (code) => fail(new Error(`serve exited with ${code}:\n${output}`)));
  });
});

afterAll(async () => {
  if (!isRoot) return;
  if (proc?.exitCode === null) {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
  }
  net?.destroy();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  // nobody has no usable home, and /var/cache/icmpcap may be another account's already: serve then keeps its
  // files in a new temporary folder, which it leaves behind (its spool). Made for this run: removed too.
  const home = /keeping its files in (\S+)$/m.exec(output)?.[1];
  if (home && dirname(home) === resolve(tmpdir()) && basename(home).startsWith('icmpcap-nobody-'))
    rmSync(home, { recursive: true, force: true });
});

function page(...steps: [string, unknown][]): Record<string, unknown>[] {
  const out = execFileSync(
    'ip',
    ['netns', 'exec', net.a, process.execPath, clientScript, url, ...steps.map((s) => JSON.stringify(s))],
    { encoding: 'utf8', timeout: 20_000 },
  );
  return JSON.parse(out) as Record<string, unknown>[];
}

function ping(count: number): void {
  net.exec(net.b, ['ping', '-c', String(count), '-i', '0.2', '-W', '1', net.v4.a], { timeoutMs: 15_000 });
}

async function echoes(atLeast: number): Promise<number> {
  let seen = 0;
  for (let i = 0; i < 40 && seen < atLeast; i++) {
    await new Promise((r) => setTimeout(r, 250));
    const [filtered] = page(['view.setFilter', { filter: 'icmp.type == 8 || icmp.type == 0' }]);
    seen = (filtered as { result: { view: number } }).result.view;
  }
  return seen;
}

describe.skipIf(!isRoot)('started as root', () => {
  it('serves as an unprivileged user with no capability', () => {
    expect(output).toMatch(/capturing with afpacket/);
    const status = readFileSync(`/proc/${proc.pid}/status`, 'utf8');
    const uids = /^Uid:\s+(.*)$/m.exec(status)![1]!.split(/\s+/).map(Number);
    expect(uids.every((u) => u === 65534)).toBe(true);
    expect(/^CapEff:\s+(\S+)$/m.exec(status)![1]).toBe('0000000000000000');
    expect(/^CapPrm:\s+(\S+)$/m.exec(status)![1]).toBe('0000000000000000');
    // It kept the capture group, which is what lets it run the helper.
    const gid = lookupGroup('icmpcap')!;
    expect(/^Groups:\s+(.*)$/m.exec(status)![1]!.split(/\s+/).map(Number)).toContain(gid);
    // The helper it runs: root:icmpcap, mode 0750, with cap_net_raw, never world-executable.
    const helper = join(ROOT, 'native/build/Release/icmpcap-helper');
    const st = statSync(helper);
    expect([st.uid, st.gid, st.mode & 0o777]).toEqual([0, gid, 0o750]);
    expect(execFileSync('getcap', [helper], { encoding: 'utf8' })).toContain('cap_net_raw');
  });

  it('sees real pings, and again after stop and start from the page', async () => {
    ping(3);
    expect(await echoes(6)).toBeGreaterThanOrEqual(6);
    const [stopped, cleared, started] = page(
      ['capture.stop', {}],
      ['capture.clear', {}],
      ['capture.start', { source: 'afpacket', interfaces: [net.ifA] }],
    );
    expect(stopped).toMatchObject({ result: { state: 'stopped' } });
    expect(cleared).toMatchObject({ result: { total: 0 } });
    expect(started).toMatchObject({ result: { state: 'running', source: 'afpacket' } });
    ping(3);
    expect(await echoes(6)).toBeGreaterThanOrEqual(6);
  });
});
