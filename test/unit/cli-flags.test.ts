/**
 * `icmpcap capture` speaks tshark's and tcpdump's flags: -r FILE and -r -, -T, -s, -a, -i any, -q, -l, -N, -D,
 * exit codes 0/1/2, --version and help. The input files are captured by dumpcap (the reference capturer) from
 * real pings between two network namespaces; what we write is read back by tshark.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliRun, runIcmpcap, spawnIcmpcap } from '../support/cli.js';
import { type NetnsPair, createNetnsPair } from '../support/netns.js';

const tmp = mkdtempSync(join(tmpdir(), 'icmpcap-cli-flags-'));
const canRun =
  process.getuid?.() === 0 &&
  spawnSync('dumpcap', ['--version'], { stdio: 'ignore' }).status === 0 &&
  spawnSync('ip', ['netns', 'list'], { stdio: 'ignore' }).status === 0;
// icmp.* is ICMPv4 only and icmpv6.* ICMPv6, as in Wireshark.
const ECHO = 'icmp.type == 8 || icmp.type == 0 || icmpv6.type == 128 || icmpv6.type == 129';

function icmpcap(args: string[]): Promise<CliRun> {
  return runIcmpcap(args, tmp);
}

/** Runs `icmpcap` with `input` on its standard input. */
function icmpcapWithInput(args: string[], input: Buffer): CliRun {
  const r = spawnSync(process.execPath, ['bin/icmpcap.mjs', ...args], {
    input,
    env: { ...process.env, XDG_CACHE_HOME: join(tmp, 'cache') },
  });
  return { code: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

function tsharkFields(file: string, fields: string[], filter?: string): string[] {
  const args = ['-r', file, ...(filter ? ['-Y', filter] : []), '-T', 'fields'];
  for (const f of fields) args.push('-e', f);
  const out = execFileSync('tshark', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return out.split('\n').filter(Boolean);
}

describe.skipIf(!canRun)('icmpcap capture flags', () => {
  let pair: NetnsPair;
  /** Three pings v4 and two v6 through the veth, as dumpcap saw them on the answering side. */
  let reference: string;
  beforeAll(async () => {
    pair = createNetnsPair(`f${Math.random().toString(36).slice(2, 5)}`);
    reference = join(tmp, 'reference.pcapng');
    const dumpcap = spawnIcmpcapLike(pair, reference);
    await dumpcap.ready;
    pair.exec(pair.b, ['ping', '-c', '3', '-i', '0.05', pair.v4.a]);
    pair.exec(pair.b, ['ping', '-6', '-c', '2', '-i', '0.05', pair.v6.a]);
    await dumpcap.done;
  });
  afterAll(() => {
    pair?.destroy();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('reads a file with -r, keeping and writing what -Y and -c say', async () => {
    const out = join(tmp, 'replies.pcap');
    const run = await icmpcap([
      'capture',
      '-r',
      reference,
      '-Y',
      'icmp.type == echo-reply',
      '-c',
      '2',
      '-w',
      out,
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(tsharkFields(out, ['icmp.type', 'icmp.seq'])).toEqual(['0\t1', '0\t2']);
    const lines = await icmpcap(['capture', '-r', reference, '-Y', ECHO]);
    expect(lines.code).toBe(0);
    expect(lines.stdout.trim().split('\n')).toHaveLength(10);
    expect(lines.stdout).toMatch(
      /198\.51\.100\.2 > 198\.51\.100\.1: Echo Request id=\d+ seq=1 ttl=64 len=84/,
    );
    expect(lines.stdout).toMatch(/2001:db8:77::1 > 2001:db8:77::2: Echo Reply id=\d+ seq=2 /);
  });

  it('reads standard input with -r - and prints NDJSON and JSON with -T', () => {
    const bytes = readFileSync(reference);
    const nd = icmpcapWithInput(['capture', '-r', '-', '-Y', ECHO, '-T', 'ndjson'], bytes);
    expect(nd.code, nd.stderr).toBe(0);
    const objects = nd.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: number; seq: number; family: number });
    expect(objects.map((o) => `${o.family}/${o.type}/${o.seq}`)).toEqual([
      '4/8/1',
      '4/0/1',
      '4/8/2',
      '4/0/2',
      '4/8/3',
      '4/0/3',
      '6/128/1',
      '6/129/1',
      '6/128/2',
      '6/129/2',
    ]);
    const json = icmpcapWithInput(['capture', '-r', '-', '-Y', ECHO, '-T', 'json'], bytes);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(objects);
    const quiet = icmpcapWithInput(['capture', '-r', '-', '-q'], bytes);
    expect(quiet.code).toBe(0);
    expect(quiet.stdout).toBe('');
  });

  it('names addresses with -N and leaves them as numbers by default (-n)', async () => {
    const file = join(tmp, 'lo.pcapng');
    const run = spawnIcmpcap(['capture', '-i', 'lo', '-c', '2', '-Y', ECHO, '-w', file], tmp, {
      netns: pair.a,
    });
    await run.started;
    pair.exec(pair.a, ['ping', '-c', '1', '127.0.0.1']);
    expect(await run.exited, run.stderr()).toBe(0);
    const named = await icmpcap(['capture', '-r', file, '-N']);
    expect(named.stdout).toMatch(/ localhost > localhost: Echo Request/);
    const numeric = await icmpcap(['capture', '-r', file, '-n']);
    expect(numeric.stdout).toMatch(/ 127\.0\.0\.1 > 127\.0\.0\.1: Echo Request/);
  });

  it('captures on -i any with -s, -a packets:N and -l', async () => {
    const file = join(tmp, 'snap.pcapng');
    const run = spawnIcmpcap(
      ['capture', '-i', 'any', '-s', '64', '-a', 'packets:4', '-l', '-P', '-Y', ECHO, '-w', file],
      tmp,
      { netns: pair.a },
    );
    await run.started;
    pair.exec(pair.b, ['ping', '-c', '2', '-s', '200', '-i', '0.05', pair.v4.a]);
    expect(await run.exited, run.stderr()).toBe(0);
    expect(run.stdout().trim().split('\n')).toHaveLength(4);
    // 64 bytes kept of each 228-byte packet, and the original length remembered.
    expect(tsharkFields(file, ['frame.cap_len', 'frame.len'])).toEqual(Array(4).fill('64\t228'));
  });

  it('stops after -a duration:N and after a bare -a N, with nothing captured', async () => {
    const [tagged, bare] = await Promise.all([
      icmpcap(['capture', '-i', 'lo', '-a', 'duration:1', '-Y', 'icmp.id == 1 && icmp.seq == 65535']),
      icmpcap(['capture', '-i', 'lo', '-a', '1', '-Y', 'icmp.id == 1 && icmp.seq == 65535']),
    ]);
    for (const run of [tagged, bare]) {
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toMatch(/0 packets captured/);
    }
  });

  it("sizes the kernel buffer with -B MiB as tshark does: the helper's packet ring is that size", async () => {
    for (const mib of [1, 64]) {
      const run = spawnIcmpcap(
        ['capture', '--source', 'afpacket', '-i', pair.ifA, '-B', String(mib), '-c', '4', '-Y', ECHO],
        tmp,
        { netns: pair.a },
      );
      await run.started;
      expect(run.stderr()).toContain(
        `capturing on ${pair.ifA} with afpacket, a ${mib} MiB buffer (1 packet ring of ${mib} MiB)`,
      );
      // The helper (the capture's child) maps its socket's TPACKET ring: exactly the buffer asked for.
      expect(packetRingBytes(helperOf(run.child.pid!))).toBe(mib * 2 ** 20);
      pair.exec(pair.b, ['ping', '-c', '2', '-i', '0.05', pair.v4.a]);
      expect(await run.exited, run.stderr()).toBe(0);
      expect(run.stdout().trim().split('\n')).toHaveLength(4);
      expect(run.stdout()).toMatch(/198\.51\.100\.1 > 198\.51\.100\.2: Echo Reply id=\d+ seq=2 /);
      expect(run.stderr()).toMatch(/4 packets captured, 0 dropped by the kernel\n/);
    }
  });

  it('lists interfaces with -D as tshark does', async () => {
    const run = await icmpcap(['capture', '-D']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^\d+\. lo \(Loopback\)$/m);
    expect(run.stdout).toMatch(/^\d+\. any$/m);
  });
});

// The runs below make a spool folder under tmp again after the captures' afterAll.
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('icmpcap command line errors, help and version', () => {
  it('exits 2 for a mistake on the command line, naming the flag', async () => {
    const cases: [string[], RegExp][] = [
      [['capture', '-x'], /unknown flag -x; `icmpcap help capture`/],
      [['capture', '-c', 'many'], /-c takes a positive whole number, not "many"/],
      [['capture', '-T', 'xml'], /-T takes text, fields, json or ndjson, not xml/],
      [['capture', '-E', 'occurrence=z', '-T', 'ndjson'], /-E occurrence takes f, l or a/],
      [['capture', '-a', 'hours:1'], /-a takes duration:SECONDS, packets:N, filesize:KB or files:N/],
      [['capture', '-s', '10'], /-s takes 64 to 65535 bytes/],
      [['capture', '-r', 'x.pcap', '-i', 'lo'], /-r reads a file and -i captures live/],
      [['capture', '-w'], /-w needs a value/],
      [
        ['capture', '-B', '0'],
        /-B takes the kernel buffer in MiB, a whole number from 1 \(as tshark's -B\), not "0"/,
      ],
      [['capture', '--buffer-size', '1.5'], /-B takes the kernel buffer in MiB, a whole number from 1/],
      [['capture', '--buffer-size=-4'], /-B takes the kernel buffer in MiB, a whole number from 1/],
      [['capture', '-B', '9007199254740993'], /-B 9007199254740993: more than any kernel buffer/],
      [
        ['capture', '-r', 'x.pcap', '-B', '4'],
        /-B sizes the kernel buffer of a live capture and -r reads a file/,
      ],
      [
        ['capture', '--source', 'afpacket', '-i', 'lo', '-B', '1025'],
        /-B 1025: AF_PACKET takes 1 to 1024 MiB on this machine \(one packet ring of 64 KiB to 1 GiB, 1 GiB in all\)/,
      ],
      [
        ['capture', '--source', 'module', '-B', '1000000'],
        /-B 1000000: the module takes \d+ to \d+ MiB on this machine \(\d+ rings?, one per CPU/,
      ],
      [['serve', '--buffer-size', 'big'], /--buffer-size takes the kernel buffer in MiB/],
      [['frobnicate'], /unknown command frobnicate/],
      [['help', 'frobnicate'], /there is no command frobnicate/],
    ];
    const runs = await Promise.all(cases.map(([args]) => icmpcap(args)));
    runs.forEach((run, i) => {
      expect(run.code, cases[i]![0].join(' ')).toBe(2);
      expect(run.stderr).toMatch(cases[i]![1]);
    });
  });

  it('serve refuses a -B its capture cannot take before it serves: exit 2, the range, nothing listening', async () => {
    // Bounded: a serve that accepted the flag serves until stopped (SIGTERM: exit 0).
    const cases: [string[], RegExp][] = [
      [
        ['serve', '--port', '0', '--source', 'afpacket', '-B', '1025'],
        /^icmpcap: --buffer-size 1025: AF_PACKET takes 1 to 1024 MiB on this machine \(one packet ring of 64 KiB to 1 GiB, 1 GiB in all\)$/m,
      ],
      [
        ['serve', '--port', '0', '--source', 'afpacket', '--buffer-size', '1025', '-i', 'lo', '--no-start'],
        /^icmpcap: --buffer-size 1025: AF_PACKET takes 1 to 1024 MiB on this machine/m,
      ],
      // The source the capture would start with (auto: the first available one).
      [
        ['serve', '--port', '0', '-B', '100000000'],
        /^icmpcap: --buffer-size 100000000: .* takes 1 to \d+ MiB/m,
      ],
      // Not started: the source is chosen later, in the UI; a size no available source takes is refused now
      // (AF_PACKET's range alone when the module is not loaded, each source's when it is).
      [
        ['serve', '--port', '0', '--no-start', '-B', '100000000'],
        /^icmpcap: --buffer-size 100000000: (no capture source takes it here: the module takes .*; )?AF_PACKET takes 1 to 1024 MiB/m,
      ],
    ];
    const runs = await Promise.all(cases.map(([args]) => runBounded(args, 10_000)));
    runs.forEach((run, i) => {
      const what = `${cases[i]![0].join(' ')}\n${run.stdout}${run.stderr}`;
      expect(run.code, what).toBe(2);
      expect(run.stderr, what).toMatch(cases[i]![1]);
      expect(run.stdout, what).not.toMatch(/serving on/);
    });
  });

  it('serve with a -B its capture can take serves as before', async () => {
    const run = await runBounded(
      ['serve', '--port', '0', '--source', 'afpacket', '-B', '64', '--no-start'],
      10_000,
      /serving on http:/,
    );
    expect(run.stdout, run.stderr).toMatch(/^icmpcap \S+ serving on http:\/\/127\.0\.0\.1:\d+\//m);
    expect(run.code, run.stderr).toBe(0); // stopped by SIGTERM, as asked
  });

  it('exits 1 for a failure at run time, saying what', async () => {
    const run = await icmpcap(['capture', '-r', join(tmpdir(), 'no-such-capture.pcapng')]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/no-such-capture\.pcapng/);
    expect(run.stderr).toMatch(/ENOENT|no such file/);
  });

  it('prints its version and the help of one command', async () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    const [ver, help, short] = await Promise.all([
      icmpcap(['--version']),
      icmpcap(['help', 'capture']),
      icmpcap(['capture', '-h']),
    ]);
    expect(ver.stdout).toBe(`icmpcap ${pkg.version}\n`);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: icmpcap capture/);
    expect(help.stdout).toContain('-w, --write FILE');
    expect(short.stdout).toBe(help.stdout);
  });
});

/**
 * Runs `icmpcap` until it exits, or stops it with SIGTERM after `ms` (or once its output matches `until`): for
 * `serve`, which runs until stopped.
 */
function runBounded(args: string[], ms: number, until?: RegExp): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/icmpcap.mjs', ...args], {
      env: { ...process.env, XDG_CACHE_HOME: join(tmp, 'cache') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const stop = (): void => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    };
    const timer = setTimeout(stop, ms);
    const seen = (): void => {
      if (until?.test(stdout + stderr)) stop();
    };
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      seen();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      seen();
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The capture helper icmpcap started (its only child). */
function helperOf(pid: number): number {
  const children = readdirSync(`/proc/${pid}/task`).flatMap((t) =>
    readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean),
  );
  expect(children).toHaveLength(1);
  return Number(children[0]);
}

/** Bytes of the AF_PACKET rings `pid` has mapped (its `socket:[inode]` mappings). */
function packetRingBytes(pid: number): number {
  let bytes = 0;
  for (const line of readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) .* socket:\[\d+\]$/.exec(line);
    if (m) bytes += parseInt(m[2]!, 16) - parseInt(m[1]!, 16);
  }
  return bytes;
}

/** dumpcap on the capturing side of the pair, ICMP only, until 10 packets. */
function spawnIcmpcapLike(pair: NetnsPair, file: string): { ready: Promise<void>; done: Promise<void> } {
  const child = spawn('ip', [
    'netns',
    'exec',
    pair.a,
    'dumpcap',
    '-i',
    pair.ifA,
    '-f',
    '(icmp or icmp6) and (icmp[0] == 0 or icmp[0] == 8 or icmp6[0] == 128 or icmp6[0] == 129)',
    '-c',
    '10',
    '-w',
    file,
  ]);
  let stderr = '';
  const ready = new Promise<void>((resolve) => {
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (/File: /.test(stderr)) resolve();
    });
  });
  const done = new Promise<void>((resolve, reject) =>
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`dumpcap: ${stderr}`)))),
  );
  return { ready, done };
}
