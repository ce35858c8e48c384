/**
 * `icmpcap capture` names the local processes behind ICMP, as a user runs it: started as root it drops to
 * an unprivileged account, so a process of that account is named (pid, command, uid) while root's `ping`
 * keeps only its uid (its /proc/PID/fd is closed to the service: nothing is guessed). `-T fields -e
 * icmpcap.proc.*`, `-Y` on those fields and `-z icmpcap,procs` all show it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lookupAccount, SYSTEM_ACCOUNT } from '../../electron/core/privilege.js';
import { spawnIcmpcap } from '../support/cli.js';

const PYTHON = '/usr/bin/python3';
const usable =
  process.getuid?.() === 0 &&
  spawnSync('setpriv', ['--version']).status === 0 &&
  spawnSync(PYTHON, ['-c', 'pass']).status === 0 &&
  spawnSync('ip', ['netns', 'list']).status === 0;

/** Sends three echo requests through an unprivileged ICMP socket, then prints its pid. */
const PING_SOCKET = `
import os, socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
for seq in range(3):
    s.sendto(bytes([8, 0, 0, 0, 0, 0, 0, seq]) + b'icmpcap!', ('127.0.0.1', 0))
    time.sleep(0.3)
time.sleep(0.5)
print(os.getpid())
`;

describe.skipIf(!usable)('capture names local processes (-e icmpcap.proc.*, -z icmpcap,procs)', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'icmpcap-cli-procs-'));
  chmodSync(tmp, 0o755);
  const ns = `icprocs-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
  afterAll(() => {
    spawnSync('ip', ['netns', 'del', ns]);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('names the unprivileged sender and gives root ping its uid alone', async () => {
    execFileSync('ip', ['netns', 'add', ns]);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv4.ping_group_range=0 2147483647']);
    const fields = [
      'frame.number',
      'icmpcap.dir',
      'icmpcap.proc.pid',
      'icmpcap.proc.name',
      'icmpcap.proc.uid',
    ];
    const run = spawnIcmpcap(
      [
        'capture',
        '-i',
        'lo',
        '-T',
        'fields',
        ...fields.flatMap((f) => ['-e', f]),
        '-Y',
        'icmpcap.proc.uid >= 0',
        '-z',
        'icmpcap,procs',
      ],
      tmp,
      { netns: ns },
    );
    await run.started;
    // The account the capture runs as exists now (icmpcap creates it when it drops root).
    const account = lookupAccount(process.env.SUDO_USER ?? SYSTEM_ACCOUNT)!;
    execFileSync('ip', ['netns', 'exec', ns, 'ping', '-n', '-q', '-c', '3', '-i', '0.3', '127.0.0.1']);
    const pid = Number(
      execFileSync(
        'ip',
        [
          'netns',
          'exec',
          ns,
          'setpriv',
          `--reuid=${account.uid}`,
          `--regid=${account.gid}`,
          '--clear-groups',
        ].concat([PYTHON, '-c', PING_SOCKET]),
        { encoding: 'utf8' },
      ).trim(),
    );
    await new Promise((r) => setTimeout(r, 500));
    run.child.kill('SIGINT');
    expect(await run.exited, run.stderr()).toBe(0);
    const lines = run
      .stdout()
      .split('\n')
      .filter((l) => /^\d+\t/.test(l))
      .map((l) => l.split('\t'));
    const mine = lines.filter(([, , p]) => p === String(pid));
    // Three requests sent and three replies matched to them, at least.
    expect(mine.length).toBeGreaterThanOrEqual(6);
    for (const [, , , name, uid] of mine) {
      expect(name).toBe('python3');
      expect(uid).toBe(String(account.uid));
    }
    const root = lines.filter(([, , , , uid]) => uid === '0');
    expect(root.length).toBeGreaterThanOrEqual(6);
    for (const [, , p, name] of root) expect([p, name]).toEqual(['', '']);
    // -Y kept only attributed records: every printed line is one of the two.
    expect(mine.length + root.length).toBe(lines.length);
    const table = run.stdout().slice(run.stdout().indexOf('icmpcap processes:'));
    expect(table).toMatch(
      new RegExp(`^\\s*${pid}\\s+python3\\s+${account.uid}\\s+\\d+\\s+\\d+\\s+3\\s+3\\s+0\\s+1\\s`, 'm'),
    );
    expect(table).toMatch(/^\s*-\s+-\s+0\s+\d+\s+\d+\s+3\s+3\s+0\s+1\s/m);
  }, 60_000);
});
