/**
 * Remote agents for end-to-end tests: `icmpcap serve` processes in network namespaces of their own,
 * joined by a bridge in a hub namespace where the viewing service and chromium run. Each agent has its
 * own config folder (its self-signed certificate) and a token file, so it can be restarted with the
 * same token, or with a new certificate.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Star {
  hub: string;
  /** Leaf namespaces, their interface and address (198.51.100.0/24). */
  leaves: { ns: string; ifname: string; v4: string }[];
  hubV4: string;
  exec(ns: string, cmd: string[], opts?: { timeoutMs?: number }): string;
  destroy(): void;
}

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A hub namespace with a bridge, and `count` leaves on it. IPv6 is off: no ND or MLD in the counts. */
export function createStar(tag: string, leafV4: string[]): Star {
  const suffix = `${tag}${process.pid % 100000}`;
  const hub = `icmpcap-hub-${suffix}`;
  const leaves = leafV4.map((v4, i) => ({ ns: `icmpcap-l${i}-${suffix}`, ifname: `icl${i}`, v4 }));
  const star: Star = {
    hub,
    leaves,
    hubV4: '198.51.100.254',
    exec(ns, cmd, opts) {
      return execFileSync('ip', ['netns', 'exec', ns, ...cmd], {
        encoding: 'utf8',
        timeout: opts?.timeoutMs ?? 30_000,
      });
    },
    destroy() {
      for (const ns of [hub, ...leaves.map((l) => l.ns)])
        spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    },
  };
  star.destroy();
  try {
    for (const ns of [hub, ...leaves.map((l) => l.ns)]) {
      ip(['netns', 'add', ns]);
      for (const scope of ['all', 'default'])
        star.exec(ns, ['sh', '-c', `echo 1 > /proc/sys/net/ipv6/conf/${scope}/disable_ipv6`]);
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    ip(['-n', hub, 'link', 'add', 'br0', 'type', 'bridge']);
    ip(['-n', hub, 'addr', 'add', `${star.hubV4}/24`, 'dev', 'br0']);
    ip(['-n', hub, 'link', 'set', 'br0', 'up']);
    leaves.forEach((leaf, i) => {
      ip([
        'link',
        'add',
        leaf.ifname,
        'netns',
        leaf.ns,
        'type',
        'veth',
        'peer',
        'name',
        `ich${i}`,
        'netns',
        hub,
      ]);
      ip(['-n', hub, 'link', 'set', `ich${i}`, 'master', 'br0', 'up']);
      ip(['-n', leaf.ns, 'addr', 'add', `${leaf.v4}/24`, 'dev', leaf.ifname]);
      ip(['-n', leaf.ns, 'link', 'set', leaf.ifname, 'up']);
    });
  } catch (err) {
    star.destroy();
    throw err;
  }
  return star;
}

export interface Agent {
  proc: ChildProcess;
  /** The address it printed, without the token. */
  url: string;
  token: string;
  /** The certificate fingerprint it printed (HTTPS), or null. */
  fingerprint: string | null;
  output(): string;
  stop(): Promise<void>;
}

/** A private folder the dropped account (icmpcap) can write: its config (certificate) or cache. */
export function accountDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  execFileSync('chown', ['icmpcap:icmpcap', dir]);
  return dir;
}

/** A token file, kept for restarts. */
export function tokenFile(dir: string, token: string): string {
  const file = join(dir, 'token');
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
}

/** Starts `icmpcap serve` in `ns` and waits until it captures. */
export async function startAgent(
  ns: string,
  args: string[],
  env: { XDG_CONFIG_HOME: string; XDG_CACHE_HOME: string },
  token: string,
): Promise<Agent> {
  const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, 'bin/icmpcap.mjs', 'serve', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`icmpcap serve did not start:\n${out}`)), 20_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /serving on (https?:\/\/\S+?)#token=/.exec(out);
      if (m && /capturing with|not capturing/.test(out)) {
        clearTimeout(timer);
        if (/not capturing/.test(out)) reject(new Error(`icmpcap serve is not capturing:\n${out}`));
        else resolve(m[1]!);
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code) => reject(new Error(`icmpcap serve exited with ${code}:\n${out}`)));
  });
  return {
    proc,
    url,
    token,
    fingerprint: /fingerprint before you trust it: (\S+)/.exec(out)?.[1] ?? null,
    output: () => out,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGINT');
        await exited;
      }
    },
  };
}
