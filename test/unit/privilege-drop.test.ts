/**
 * Started as root, `icmpcap serve` drops root like `tcpdump -Z`: the serving process has a non-zero uid
 * and no capability, and capture keeps working through the capture helper: real pings from a namespace
 * are seen, and a capture stopped and started again from the UI (the contract over the WebSocket) still
 * sees them. An account with no usable home keeps its files in the same folder every run (so the next run
 * finds the spool of one that crashed), one folder per account.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  rmdirSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCOUNT_HOMES, LEGACY_HOME, lookupGroup } from '../../electron/core/privilege.js';
import { spoolDirs } from '../../electron/core/spool-recovery.js';
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
/**
 * The accounts this file runs icmpcap as, none with a usable home: nobody (serve), daemon (its home, /usr/sbin,
 * is root's), bin and sys (whose folders there this file makes a link and another account's), games (whose
 * folder there this file leaves to a uid no account has, as an earlier account of that name would).
 */
const ACCOUNTS = ['nobody', 'daemon', 'bin', 'sys', 'games'];
/** The folders of that layout that were there before this file ran: the others are removed after. */
const before = new Set<string>();
/** Every folder an account was told its files are kept in, by every run of this file. */
const homesSeen = new Set<string>();

/** What this file made in that layout: removed after. */
const planted: string[] = [];
/** A capture file with no packets: `capture -r` drops root as serve does, and is over in a second. */
let empty = '';

/** The folder a run's notes say the account's files are kept in. */
function homeIn(notes: string): string | undefined {
  const home = /keeping its files in (\S+)$/m.exec(notes)?.[1];
  if (home) homesSeen.add(home);
  return home;
}

beforeAll(async () => {
  if (!isRoot) return;
  for (const dir of [
    dirname(ACCOUNT_HOMES),
    ACCOUNT_HOMES,
    ...ACCOUNTS.map((name) => join(ACCOUNT_HOMES, name)),
  ])
    if (existsSync(dir)) before.add(dir);
  net = createNetnsPair('zdrop');
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-drop-'));
  empty = join(tmp, 'empty.pcap');
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(65535, 16);
  header.writeUInt32LE(1, 20);
  writeFileSync(empty, header);
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
  homeIn(output);
  for (const path of planted) rmSync(path, { recursive: true, force: true }); // a link itself, not its target
  // The folders the accounts' files were kept in, when made for this file: a private temporary one (made when
  // the stable one cannot be), or the account's folder and the folders above it that were not there before.
  // A folder that was there (such as /var/cache/icmpcap, another account's) stays as it was.
  for (const home of homesSeen) {
    const temporary =
      dirname(home) === resolve(tmpdir()) &&
      ACCOUNTS.some((name) => basename(home).startsWith(`icmpcap-${name}-`));
    const made = dirname(home) === ACCOUNT_HOMES && !before.has(home);
    if (temporary || made) rmSync(home, { recursive: true, force: true });
  }
  for (const dir of [ACCOUNT_HOMES, dirname(ACCOUNT_HOMES)]) {
    try {
      if (!before.has(dir)) rmdirSync(dir); // only when empty: another run's folders stay
    } catch {
      // not there, or not empty
    }
  }
});

/** Runs `capture -Z name -r` (as root, as a user would with sudo): its notes, and the folder they name. */
function runAs(name: string): { notes: string; home: string } {
  const env = { ...process.env };
  delete env.SUDO_USER;
  delete env.XDG_CACHE_HOME;
  delete env.XDG_CONFIG_HOME;
  const run = spawnSync(
    process.execPath,
    [join(ROOT, 'bin/icmpcap.mjs'), 'capture', '-Z', name, '-r', empty],
    {
      env,
      encoding: 'utf8',
      timeout: 30_000,
    },
  );
  expect(run.status, run.stderr).toBe(0);
  const home = homeIn(run.stderr);
  expect(home, run.stderr).toBeDefined();
  return { notes: run.stderr, home: home! };
}

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

  it('keeps the files of an account with no usable home in the same folder every run, one per account', () => {
    const homeOf = (name: string): string => runAs(name).home;
    const nobody = homeIn(output)!;
    expect(nobody, output).toBeDefined();
    // Run again, the same account: the same folder (where the spool of a run that crashed is found).
    expect(homeOf('nobody')).toBe(nobody);
    const daemon = homeOf('daemon');
    expect(homeOf('daemon')).toBe(daemon);
    // Another account: another folder.
    expect(daemon).not.toBe(nobody);
    // `icmpcap spool` (as root) looks for leftover spools in both.
    for (const home of [nobody, daemon])
      expect(spoolDirs()).toContain(join(home, 'cache', 'icmpcap', 'spool'));
    for (const [name, home] of [
      ['nobody', nobody],
      ['daemon', daemon],
    ] as const) {
      const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
      const st = lstatSync(home);
      expect(st.isDirectory(), `${home} is a folder, not a link`).toBe(true);
      expect([st.uid, st.mode & 0o777], home).toEqual([uid, 0o700]);
      expect(dirname(home), `${home} is not a temporary folder`).not.toBe(resolve(tmpdir()));
      // The account's own folder under a parent only root may change (/var/cache/icmpcap stays the home of
      // the account that owns it already).
      if (home !== LEGACY_HOME) {
        expect(home).toBe(join(ACCOUNT_HOMES, name));
        for (let dir = dirname(home); dir !== '/'; dir = dirname(dir)) {
          const parent = lstatSync(dir);
          expect([parent.isDirectory(), parent.uid, parent.mode & 0o022], dir).toEqual([true, 0, 0]);
        }
      }
    }
    // The account that owns /var/cache/icmpcap (made by earlier versions for the first account that ran) keeps
    // it: the spools it left there are still found.
    const legacy = lstatSync(LEGACY_HOME, { throwIfNoEntry: false });
    const owner =
      legacy?.isDirectory() && legacy.uid !== 0
        ? spawnSync('getent', ['passwd', String(legacy.uid)], { encoding: 'utf8' }).stdout.split(':')
        : [];
    if (owner.length >= 6 && owner[5] !== LEGACY_HOME) {
      let ownHome = false;
      try {
        ownHome = statSync(owner[5]!).uid === legacy!.uid;
      } catch {
        // no such folder: no usable home
      }
      if (!ownHome) expect(homeOf(owner[0]!)).toBe(LEGACY_HOME);
    }
  });

  it('takes over the folder an earlier account of the same name left (a uid no account has), its spools too', (ctx) => {
    const folder = join(ACCOUNT_HOMES, 'games');
    if (before.has(folder)) ctx.skip(); // a real folder of this machine: not ours to change
    // As `userdel games; useradd games` (a package purged and installed again) leaves it: a uid no one has.
    let stale = 4242;
    while (spawnSync('getent', ['passwd', String(stale)]).status === 0) stale++;
    const spool = join(folder, 'cache', 'icmpcap', 'spool');
    mkdirSync(ACCOUNT_HOMES, { recursive: true, mode: 0o755 });
    mkdirSync(spool, { recursive: true, mode: 0o700 });
    writeFileSync(join(spool, 'left.pcapng'), 'left');
    for (const path of [
      folder,
      join(folder, 'cache'),
      join(folder, 'cache', 'icmpcap'),
      spool,
      join(spool, 'left.pcapng'),
    ])
      chownSync(path, stale, stale);
    const { notes, home } = runAs('games');
    // Its folder from run to run, not a new temporary one, with what the earlier account left in it, now its own.
    expect(home, notes).toBe(folder);
    expect(notes).not.toContain('no folder of its own');
    const uid = Number(execFileSync('id', ['-u', 'games'], { encoding: 'utf8' }).trim());
    for (const path of [folder, spool, join(spool, 'left.pcapng')])
      expect(lstatSync(path).uid, path).toBe(uid);
    expect(readFileSync(join(spool, 'left.pcapng'), 'utf8')).toBe('left');
  });

  it('refuses a folder there that is a link or another account’s, says why, and keeps the files apart', (ctx) => {
    const link = join(ACCOUNT_HOMES, 'bin');
    const foreign = join(ACCOUNT_HOMES, 'sys');
    if (before.has(link) || before.has(foreign)) ctx.skip(); // real folders of this machine: not ours to replace
    mkdirSync(ACCOUNT_HOMES, { recursive: true, mode: 0o755 });
    // A link to a folder root owns, and a folder of another account (daemon's, uid 1).
    const bait = mkdtempSync(join(tmp, 'bait-'));
    planted.push(link, foreign);
    symlinkSync(bait, link);
    mkdirSync(foreign, { mode: 0o700 });
    chownSync(foreign, 1, 1);
    for (const [name, why] of [
      ['bin', `${link} is a link`],
      ['sys', `${foreign} belongs to uid 1, another account`],
    ] as const) {
      const { notes, home } = runAs(name);
      expect(notes).toContain(`${name} has no usable home, and no folder of its own`);
      expect(notes).toContain(why);
      // A private folder of its own for this run, the account's.
      expect(dirname(home), notes).toBe(resolve(tmpdir()));
      expect(basename(home)).toMatch(new RegExp(`^icmpcap-${name}-`));
      const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
      expect([lstatSync(home).uid, lstatSync(home).mode & 0o777]).toEqual([uid, 0o700]);
    }
    // Neither was handed over: the link's target is still root's, the folder still the other account's.
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect([statSync(bait).uid, statSync(bait).mode & 0o777]).toEqual([0, 0o700]);
    expect([lstatSync(foreign).uid, lstatSync(foreign).mode & 0o777]).toEqual([1, 0o700]);
  });
});
