/**
 * `icmpcap capture -w` writes as it captures, as tcpdump and dumpcap do: real pings between two network
 * namespaces, files and pipes read by tshark while and after icmpcap runs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runIcmpcap, spawnIcmpcap } from '../support/cli.js';
import { type NetnsPair, createNetnsPair } from '../support/netns.js';

const tmp = mkdtempSync(join(tmpdir(), 'icmpcap-cli-write-'));
// Started as root, icmpcap runs as another account once its first file is open (as tcpdump -Z): the files
// after a -b switch are made by that account.
chmodSync(tmp, 0o755);
const sharedDir = (name: string): string => {
  const dir = join(tmp, name);
  mkdirSync(dir, { mode: 0o777 });
  chmodSync(dir, 0o777);
  return dir;
};
const canRun =
  process.getuid?.() === 0 &&
  spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0 &&
  spawnSync('ip', ['netns', 'list'], { stdio: 'ignore' }).status === 0;

/** `icmp.type icmp.seq` of every packet in a capture file, as tshark reads it. */
function tsharkPackets(file: string): string[] {
  const out = execFileSync('tshark', ['-r', file, '-T', 'fields', '-e', 'icmp.type', '-e', 'icmp.seq'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return out.split('\n').filter(Boolean);
}

async function waitFor(what: string, test: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!test()) {
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const ECHO = 'icmp.type == echo-request || icmp.type == echo-reply';

/** Three echo exchanges: request in, reply out, as seen on the capturing side. */
const THREE_PINGS = ['8\t1', '0\t1', '8\t2', '0\t2', '8\t3', '0\t3'];

describe.skipIf(!canRun)('icmpcap capture -w', () => {
  let pair: NetnsPair;
  beforeAll(() => {
    pair = createNetnsPair(`w${Math.random().toString(36).slice(2, 5)}`);
  });
  const started: ReturnType<typeof spawnIcmpcap>[] = [];
  afterAll(() => {
    for (const run of started) if (run.child.exitCode === null) run.child.kill('SIGKILL');
    pair?.destroy();
    rmSync(tmp, { recursive: true, force: true });
  });

  const ping = (count: number): void => {
    pair.exec(pair.b, ['ping', '-c', String(count), '-i', '0.05', '-W', '1', pair.v4.a]);
  };
  // Only the pings: a new link also sends IPv6 router solicitations, seconds apart.
  const capture = (args: string[], opts: { pipeTo?: string } = {}) => {
    const run = spawnIcmpcap(['capture', '-i', pair.ifA, '-Y', ECHO, ...args], tmp, {
      netns: pair.a,
      ...opts,
    });
    started.push(run);
    return run;
  };

  it('fails at once with exit 1 when the folder of -w does not exist', async () => {
    const run = await runIcmpcap(
      ['capture', '-i', 'lo', '-a', '3', '-w', '/nonexistent-icmpcap/x.pcapng'],
      tmp,
    );
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toMatch(/the folder \/nonexistent-icmpcap does not exist/);
    // Nothing was captured first: the file is checked before the capture starts.
    expect(run.stderr).not.toMatch(/packets/);
  });

  it('names the missing folder a link leads to, not the link’s own folder, when -w is a link', async () => {
    // The link's folder is there; the folder of the file it leads to is not: that one is named, and the
    // message says the file is reached through a link (its own folder would send the user to the wrong place).
    const dir = mkdtempSync(join(tmp, 'link-nofolder-'));
    const cases: [string, string, string, string][] = [
      // why, the link, its target as written, where it leads
      ['an absolute link', 'abs.pcapng', join(dir, 'gone', 'abs.pcapng'), join(dir, 'gone', 'abs.pcapng')],
      ['a relative link', 'rel.pcapng', 'gone/deeper/rel.pcapng', `${dir}/gone/deeper/rel.pcapng`],
      ['a link to a link', 'chain.pcapng', join(dir, 'abs.pcapng'), join(dir, 'gone', 'abs.pcapng')],
    ];
    for (const [, link, target] of cases) symlinkSync(target, join(dir, link));
    const runs = await Promise.all(
      cases.map(([, link]) => runIcmpcap(['capture', '-i', 'lo', '-a', '3', '-w', join(dir, link)], tmp)),
    );
    for (const [i, [why, link, , leadsTo]] of cases.entries()) {
      const run = runs[i]!;
      expect(run.code, `${why}: ${run.stderr}`).toBe(1);
      expect(run.stderr, why).toContain(
        `cannot write ${join(dir, link)}: it is a link to ${leadsTo}, and the folder ${dirname(leadsTo)} does not exist`,
      );
      expect(run.stderr, why).not.toContain(`the folder ${dir} does not exist`);
      expect(run.stderr, why).not.toMatch(/packets/);
    }
    // Nothing made: the links stay, no folder appeared.
    expect(readdirSync(dir).sort()).toEqual(['abs.pcapng', 'chain.pcapng', 'rel.pcapng']);
  });

  it('names where a link leads when the file cannot be made there', async () => {
    // A file stands where the link's way needs a folder: that one is named, not the link's own folder.
    const dir = mkdtempSync(join(tmp, 'link-notdir-'));
    writeFileSync(join(dir, 'afile'), '');
    symlinkSync(join(dir, 'afile', 'x.pcapng'), join(dir, 'nd.pcapng'));
    const run = await runIcmpcap(['capture', '-i', 'lo', '-a', '3', '-w', join(dir, 'nd.pcapng')], tmp);
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toContain(
      `cannot write ${join(dir, 'nd.pcapng')}: it is a link to ${join(dir, 'afile', 'x.pcapng')}, and ` +
        `${join(dir, 'afile')} is not a folder`,
    );
    expect(run.stderr).not.toContain(`${dir} is not a folder`);
    expect(readdirSync(dir).sort()).toEqual(['afile', 'nd.pcapng']);
  });

  it('has the packets in the file while capturing, and a whole file after SIGINT, SIGTERM or SIGHUP', async () => {
    const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
    const runs = signals.map((signal) => {
      const file = join(tmp, `signal-${signal}.pcapng`);
      return { signal, file, run: capture(['-w', file]) };
    });
    await Promise.all(runs.map((r) => r.run.started));
    ping(3);
    const first = runs[0]!;
    // On disk while the capture goes on, as dumpcap writes it.
    await waitFor('the packets in the file', () => {
      try {
        return tsharkPackets(first.file).length === 6;
      } catch {
        return false;
      }
    });
    expect(first.run.child.exitCode).toBeNull();
    for (const r of runs) r.run.child.kill(r.signal);
    for (const r of runs) {
      expect(await r.run.exited, `${r.signal}: ${r.run.stderr()}`).toBe(0);
      expect(tsharkPackets(r.file), r.signal).toEqual(THREE_PINGS);
    }
  });

  it('writes pcapng and pcap to standard output for `tshark -r -`', async () => {
    const tshark = 'tshark -r - -T fields -e icmp.type -e icmp.seq 2>/dev/null';
    const pcapng = capture(['-c', '6', '-w', '-'], { pipeTo: tshark });
    const pcap = capture(['-c', '6', '-F', 'pcap', '-w', '-'], { pipeTo: tshark });
    await Promise.all([pcapng.started, pcap.started]);
    ping(3);
    expect(await pcapng.exited, pcapng.stderr()).toBe(0);
    expect(await pcap.exited, pcap.stderr()).toBe(0);
    expect(pcapng.stdout().trim().split('\n')).toEqual(THREE_PINGS);
    expect(pcap.stdout().trim().split('\n')).toEqual(THREE_PINGS);
  });

  it('ends by itself with exit 0 and a whole file when its output pipe closes (| head -3)', async () => {
    const file = join(tmp, 'head.pcapng');
    const lines = capture(['-P', '-w', file], { pipeTo: 'head -3' });
    const binary = capture(['-w', '-'], { pipeTo: 'head -c 100 >/dev/null' });
    await Promise.all([lines.started, binary.started]);
    ping(5);
    // head has what it wanted: the next packet meets a closed pipe and both captures must end.
    const more = setInterval(() => ping(1), 300);
    try {
      expect(await lines.exited, lines.stderr()).toBe(0);
      expect(await binary.exited, binary.stderr()).toBe(0);
    } finally {
      clearInterval(more);
    }
    expect(lines.stdout().trim().split('\n')).toHaveLength(3);
    expect(tsharkPackets(file).slice(0, 6)).toEqual(THREE_PINGS);
  });

  it('switches files after -b filesize:KB with tshark names, losing nothing', async () => {
    const dir = sharedDir('size');
    const run = capture(['-c', '40', '-b', 'filesize:1', '-w', join(dir, 'ring.pcapng')]);
    await run.started;
    ping(20);
    expect(await run.exited, run.stderr()).toBe(0);
    const files = readdirSync(dir).sort();
    expect(files.length).toBeGreaterThan(2);
    files.forEach((name, i) => {
      expect(name).toMatch(new RegExp(`^ring_${String(i + 1).padStart(5, '0')}_\\d{14}\\.pcapng$`));
      // tshark's kB: 1000 bytes; a file is switched after the packet that reached the size.
      if (i < files.length - 1) expect(statSync(join(dir, name)).size).toBeGreaterThanOrEqual(1000);
    });
    const packets = files.flatMap((name) => tsharkPackets(join(dir, name)));
    expect(packets).toHaveLength(40);
    expect(packets.map((p) => Number(p.split('\t')[1]))).toEqual(
      Array.from({ length: 40 }, (_, i) => Math.floor(i / 2) + 1),
    );
  });

  it('keeps the newest N files with -b files:N, and switches on -b duration:N', async () => {
    const ringDir = sharedDir('ring');
    const timeDir = sharedDir('time');
    const ring = capture(['-c', '40', '-b', 'filesize:1', '-b', 'files:2', '-w', join(ringDir, 'r.pcap')]);
    const timed = capture(['-a', 'duration:3', '-b', 'duration:1', '-w', join(timeDir, 't.pcapng')]);
    await Promise.all([ring.started, timed.started]);
    ping(20);
    expect(await ring.exited, ring.stderr()).toBe(0);
    const kept = readdirSync(ringDir).sort();
    expect(kept).toHaveLength(2);
    const numbers = kept.map((name) => Number(/^r_(\d{5})_\d{14}\.pcap$/.exec(name)?.[1]));
    expect(numbers[0]).toBeGreaterThan(1);
    expect(numbers[1]).toBe(numbers[0]! + 1);
    const last = kept.flatMap((name) => tsharkPackets(join(ringDir, name)));
    expect(last.at(-1)).toBe('0\t20');

    expect(await timed.exited, timed.stderr()).toBe(0);
    const slices = readdirSync(timeDir).sort();
    expect(slices.length).toBeGreaterThanOrEqual(2);
    const all = slices.flatMap((name) => tsharkPackets(join(timeDir, name)));
    expect(all).toHaveLength(40);
  });

  it('leaves no file when the capture never starts, and a file that was there as it was', async () => {
    // Started as root, icmpcap opens the file first, then drops root: in a folder the account it runs as may
    // write, the file it made goes; in one only root may write (0755), it cannot: left empty, and said so.
    const dir = mkdtempSync(join(tmp, 'never-'));
    chmodSync(dir, 0o777);
    const rootOnly = mkdtempSync(join(tmp, 'never-root-'));
    chmodSync(rootOnly, 0o755);
    const ringDir = join(dir, 'ring'); // one the account may write, as -b needs
    mkdirSync(ringDir);
    chmodSync(ringDir, 0o777);
    const starts: [string, string[], number][] = [
      ['-B out of range', ['--source', 'afpacket', '-i', 'lo', '-B', '1025'], 2],
      ['no such interface', ['-i', 'nosuch0'], 1],
    ];
    // A source that is not available: the module, where it is not loaded.
    if (!existsSync('/dev/icmpcap'))
      starts.push(['source not available', ['--source', 'module', '-i', 'lo'], 1]);
    const precious = Buffer.from('a file that was here before: not ours to empty or remove\n');
    for (const [why, args, code] of starts) {
      const made = join(dir, 'new.pcapng');
      const stuck = join(rootOnly, 'new.pcapng');
      rmSync(stuck, { force: true });
      // A file that was there: left as it was, not emptied (dumpcap opens the capture before the file).
      const before = join(dir, 'before.pcapng');
      writeFileSync(before, precious);
      const [ours, theirs, ring, piped, rootOnlyRun] = await Promise.all([
        runIcmpcap(['capture', ...args, '-w', made], tmp),
        runIcmpcap(['capture', ...args, '-w', before], tmp),
        runIcmpcap(['capture', ...args, '-b', 'filesize:1', '-w', join(ringDir, 'r.pcapng')], tmp),
        runIcmpcap(['capture', ...args, '-w', '-'], tmp),
        runIcmpcap(['capture', ...args, '-w', stuck], tmp),
      ]);
      for (const run of [ours, theirs, ring, piped, rootOnlyRun])
        expect(run.code, `${why}: ${run.stderr}`).toBe(code);
      expect(existsSync(made), `${why}: the file it made`).toBe(false);
      expect(readFileSync(before), `${why}: the file that was there`).toEqual(precious);
      // -b: not even the first file of the ring.
      expect(readdirSync(ringDir), `${why}: -b`).toEqual([]);
      // -w -: nothing written to standard output, not even a header.
      expect(piped.stdout, `${why}: -w -`).toBe('');
      // A folder only root writes: the account after the drop cannot remove what root made; empty, and said.
      expect(statSync(stuck).size, `${why}: left in a root-only folder`).toBe(0);
      expect(rootOnlyRun.stderr).toMatch(
        /was made for this capture, which never started, and could not be removed/,
      );
    }
    expect(readdirSync(dir).sort()).toEqual(['before.pcapng', 'ring']);
  });

  it('a capture that never starts removes the file it made through a link to a missing one, not the link', async () => {
    // dumpcap opens -w with O_CREAT and follows links: a link to a missing file makes that file. A failed start
    // leaves nothing that was not there before: the file made goes, the link (which was there) stays.
    const dir = mkdtempSync(join(tmp, 'link-'));
    chmodSync(dir, 0o777); // the account icmpcap runs as after the drop may remove what root made here
    const sub = join(dir, 'sub');
    mkdirSync(sub);
    chmodSync(sub, 0o777);
    const links: [string, string, string][] = [
      // why, the link (made with the target as written), the file it leads to
      ['an absolute link', join(dir, 'abs.pcapng'), join(sub, 'abs-target.pcapng')],
      ['a relative link', join(dir, 'rel.pcapng'), 'sub/rel-target.pcapng'],
      ['a link to a link', join(dir, 'chain.pcapng'), join(dir, 'abs2.pcapng')],
    ];
    symlinkSync(join(sub, 'chain-target.pcapng'), join(dir, 'abs2.pcapng'));
    for (const [, link, target] of links) symlinkSync(target, link);
    const runs = await Promise.all(
      links.map(([, link]) => runIcmpcap(['capture', '-i', 'nosuch0', '-w', link], tmp)),
    );
    for (const [i, [why, link]] of links.entries()) {
      expect(runs[i]!.code, `${why}: ${runs[i]!.stderr}`).toBe(1);
      expect(runs[i]!.stderr, why).not.toMatch(/could not be removed/);
      expect(lstatSync(link).isSymbolicLink(), `${why}: the link stays`).toBe(true);
      expect(existsSync(link), `${why}: the file it leads to is gone`).toBe(false);
    }
    expect(readdirSync(dir).sort()).toEqual([
      'abs.pcapng',
      'abs2.pcapng',
      'chain.pcapng',
      'rel.pcapng',
      'sub',
    ]);
    expect(readdirSync(sub)).toEqual([]);
  });

  it('a capture that starts writes through a link to a missing file into the file it leads to', async () => {
    const dir = mkdtempSync(join(tmp, 'link-started-'));
    chmodSync(dir, 0o777);
    const link = join(dir, 'link.pcapng');
    symlinkSync('target.pcapng', link);
    const run = capture(['-c', '6', '-w', link]);
    await run.started;
    ping(3);
    expect(await run.exited, run.stderr()).toBe(0);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(tsharkPackets(join(dir, 'target.pcapng'))).toEqual(THREE_PINGS);
    expect(readdirSync(dir).sort()).toEqual(['link.pcapng', 'target.pcapng']);
  });

  it('replaces what a file held once the capture has started', async () => {
    const file = join(tmp, 'replaced.pcapng');
    writeFileSync(file, Buffer.alloc(100_000, 0x55));
    const run = capture(['-c', '6', '-w', file]);
    await run.started;
    ping(3);
    expect(await run.exited, run.stderr()).toBe(0);
    expect(tsharkPackets(file)).toEqual(THREE_PINGS);
    expect(statSync(file).size).toBeLessThan(100_000);
  });

  it('refuses -b without a switch condition or without a file, naming the flag', async () => {
    const noSwitch = await runIcmpcap(
      ['capture', '-i', 'lo', '-b', 'files:3', '-w', join(tmp, 'x.pcapng')],
      tmp,
    );
    expect(noSwitch.code).toBe(2);
    expect(noSwitch.stderr).toMatch(/-b files:3 .*duration:N, filesize:KB/);
    const toStdout = await runIcmpcap(['capture', '-i', 'lo', '-b', 'duration:5', '-w', '-'], tmp);
    expect(toStdout.code).toBe(2);
    expect(toStdout.stderr).toMatch(/-b needs -w FILE/);
  });
});
