/**
 * `kill -9` of `icmpcap serve` and of `icmpcap capture` in the middle of a ping flood on loopback: the spool
 * they leave is listed by `icmpcap spool`, `spool recover latest -w` writes it out, and it holds every packet
 * captured more than a second before the kill (tshark capturing beside it says which packets those are).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from './paths.js';
import { stableHomes } from './privilege.js';

const ID = 40000 + (process.pid % 20000);
const isRoot = process.getuid?.() === 0;
const built = existsSync(join(projectRoot(), 'dist', 'electron', 'core', 'cli.js'));

function icmpcap(args: string[], cache: string): string {
  return execFileSync(process.execPath, [join(projectRoot(), 'bin', 'icmpcap.mjs'), ...args], {
    env: { ...process.env, XDG_CACHE_HOME: cache },
    encoding: 'utf8',
  });
}

async function until(probe: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `type/seq` of our echoes in a file, with their capture times. */
function echoes(file: string, id: number): { key: string; t: number }[] {
  const out = execFileSync(
    'tshark',
    [
      '-r',
      file,
      '-n',
      '-Y',
      `icmp.ident == ${id}`,
      '-T',
      'fields',
      '-E',
      'separator=|',
      '-e',
      'frame.time_epoch',
      '-e',
      'icmp.type',
      '-e',
      'icmp.seq',
    ],
    { encoding: 'utf8' },
  );
  return out
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [t, type, seq] = line.split('|');
      return { key: `${type}/${seq}`, t: Number(t) };
    });
}

describe.skipIf(!isRoot || !built)('spool recovery after kill -9 (needs `npm run build:ts`)', () => {
  let tmp: string;
  const children: ChildProcess[] = [];
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'icmpcap-kill-'));
  });
  afterAll(() => {
    for (const c of children) c.kill('SIGKILL');
    rmSync(tmp, { recursive: true, force: true });
  });

  it.each([
    ['serve', ['serve', '-i', 'lo', '--source', 'afpacket']],
    ['capture', ['capture', '-i', 'lo', '--source', 'afpacket']],
  ])(
    'icmpcap %s: the recovered spool holds every packet older than a second',
    async (name, args) => {
      const id = ID + (name === 'serve' ? 0 : 1);
      const cache = join(tmp, name);
      // Started as root, icmpcap runs as another account: its spool is in that account's cache, or in its folder
      // for accounts with no usable home (made by the run: listed when looked for).
      const spoolDirs = (): string[] => [
        join(cache, 'icmpcap', 'spool'),
        ...stableHomes().map((home) => join(home, 'cache', 'icmpcap', 'spool')),
      ];
      const reference = join(tmp, `${name}-reference.pcapng`);
      const tshark = spawn('tshark', ['-i', 'lo', '-f', 'icmp', '-w', reference], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      children.push(tshark);
      let tsharkErr = '';
      tshark.stderr.on('data', (d: Buffer) => (tsharkErr += d.toString()));
      await until(() => /Capturing on/.test(tsharkErr), 'tshark to capture');
      const app = spawn(process.execPath, [join(projectRoot(), 'bin', 'icmpcap.mjs'), ...args], {
        env: { ...process.env, XDG_CACHE_HOME: cache },
        stdio: 'ignore',
      });
      children.push(app);
      const spooling = () =>
        spoolDirs().some((d) => existsSync(d) && readdirSync(d).some((f) => f.includes(`-${app.pid}-`)));
      await until(spooling, `icmpcap ${name} to spool`);
      await new Promise((r) => setTimeout(r, 500));
      // A flood that goes on past the kill: 1000 echoes a second for up to 5 s.
      const flood = spawn('ping', ['-n', '-q', '-i', '0.001', '-w', '5', '-e', String(id), '127.0.0.1'], {
        stdio: 'ignore',
      });
      children.push(flood);
      await new Promise((r) => setTimeout(r, 2500));
      const killedAt = Date.now() / 1000;
      app.kill('SIGKILL');
      await new Promise((r) => app.once('exit', r));
      await new Promise((r) => flood.once('exit', r));
      tshark.kill('SIGINT');
      await new Promise((r) => tshark.once('exit', r));

      const list = icmpcap(['spool', 'list'], cache);
      const [header, line] = list.split('\n');
      expect(header).toMatch(/^ID\s+STARTED\s+PACKETS\s+SIZE/);
      expect(line).toMatch(new RegExp(`^\\d{8}-\\d{6}-${app.pid}\\s`));
      const recovered = join(tmp, `${name}-recovered.pcapng`);
      expect(icmpcap(['spool', 'recover', 'latest', '-w', recovered], cache)).toMatch(
        /packets of spool .* written to/,
      );

      const older = echoes(reference, id).filter((e) => e.t < killedAt - 1);
      expect(older.length).toBeGreaterThan(500);
      const have = new Set(echoes(recovered, id).map((e) => e.key));
      const missing = older.filter((e) => !have.has(e.key));
      expect(missing).toEqual([]);

      expect(icmpcap(['spool', 'clean'], cache)).toMatch(/removed/);
      expect(icmpcap(['spool', 'list'], cache)).toMatch(/no spools left behind/);
    },
    60_000,
  );
});
