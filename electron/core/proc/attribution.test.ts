/**
 * Process attribution with real processes, captured by the real capture service through AF_PACKET (the
 * capture helper) in a network namespace: `ping` (ping socket), `ping -6`, a Python raw-socket sender and
 * `traceroute -I` each have their echo requests and the replies to them tagged with the sender's real pid and
 * command name; an ICMP port unreachable quoting a UDP datagram of a local Python socket names that process;
 * pings this host only answers stay unknown. The display filter finds them by `icmpcap.proc.*`, CSV/NDJSON
 * carry the columns, and tshark reads the pcapng export's `PID:`/`Cmd:` comments and direction flags.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Row } from '../../common/contract.js';
import { parseCsv } from '../files/testing/records.js';
import { A4, A6, B4, hasOddTools, OddLab, type ChildResult } from '../testing/odd-lab.js';

const PYTHON = '/usr/bin/python3';

const RAW_SENDER = `
import socket, struct, sys, time
ident = int(sys.argv[2])
def checksum(b):
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
for seq in range(3):
    body = struct.pack('!BBHHH', 8, 0, 0, ident, seq) + b'icmpcap-raw!'
    s.sendto(struct.pack('!BBHHH', 8, 0, checksum(body), ident, seq) + b'icmpcap-raw!', (sys.argv[1], 0))
    time.sleep(0.3)
time.sleep(0.5)
`;

const UDP_SENDER = `
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(3):
    s.sendto(b'icmpcap-udp', (sys.argv[1], 33999))
    time.sleep(0.3)
time.sleep(0.5)
`;

function hasTraceroute(): boolean {
  try {
    execFileSync('traceroute', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(!hasOddTools() || !hasTraceroute())('process attribution through AF_PACKET', () => {
  const lab = new OddLab();
  let dir = '';
  let result: ChildResult;
  const ranges = new Map<string, [number, number]>();
  const pids = new Map<string, number>();
  const filters = new Map<string, number[]>();

  /** Runs `cmd` in the capture's namespace, as a child whose pid is the program's own (ip execs it). */
  function runIn(ns: string, cmd: string[]): Promise<number> {
    return new Promise((resolve, reject) => {
      const child = spawn('ip', ['netns', 'exec', ns, ...cmd], { stdio: 'ignore' });
      child.on('error', reject);
      child.on('exit', () => resolve(child.pid!));
    });
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'icmpcap-proc-'));
    lab.setUp();
    // Unprivileged ICMP (ping) sockets in the capture's namespace, so `ping` uses one rather than a raw socket.
    execFileSync('ip', [
      'netns',
      'exec',
      lab.b,
      'sysctl',
      '-q',
      '-w',
      'net.ipv4.ping_group_range=0 2147483647',
    ]);
    await lab.startService(dir);
    let from = await lab.mark('start');
    const step = async (name: string, cmd: string[]): Promise<void> => {
      pids.set(name, await runIn(lab.b, cmd));
      const to = await lab.mark(name);
      ranges.set(name, [from, to]);
      from = to;
    };
    // Each sender lives a while after its first packet: its socket must still be there when the record arrives.
    await step('ping', ['ping', '-n', '-q', '-c', '4', '-i', '0.3', A4]);
    await step('ping6', ['ping', '-6', '-n', '-q', '-c', '4', '-i', '0.3', A6]);
    await step('raw', [PYTHON, '-c', RAW_SENDER, A4, '4321']);
    await step('traceroute', ['traceroute', '-I', '-n', '-q', '3', '-z', '300', '-m', '2', A4]);
    await step('udp', [PYTHON, '-c', UDP_SENDER, A4]);
    // The other way: requests from the peer, answered by this host's kernel: no process to name.
    lab.ping('a', ['-c', '2', '-i', '0.2', B4]);
    const to = await lab.mark('inbound');
    ranges.set('inbound', [from, to]);
    for (const filter of [`icmpcap.proc.name == "ping"`, `icmpcap.proc.pid == ${pids.get('raw')}`]) {
      const answer = await lab.filter(filter);
      if (answer.error) throw new Error(`${filter}: ${answer.error}`);
      filters.set(filter, answer.nos!);
    }
    result = await lab.stop();
    lab.tearDown();
  }, 180_000);

  afterAll(() => {
    lab.tearDown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function rowsOf(name: string, keep: (r: Row) => boolean): Row[] {
    const [from, to] = ranges.get(name)!;
    return result.rows.filter((r) => r.no > from && r.no <= to && keep(r));
  }
  const requests = (family: 4 | 6) => (r: Row) => r.family === family && r.type === (family === 4 ? 8 : 128);
  const replies = (family: 4 | 6) => (r: Row) => r.family === family && r.type === (family === 4 ? 0 : 129);

  it.each([
    ['ping', 4, 'ping', 4],
    ['ping6', 6, 'ping', 4],
    ['raw', 4, 'python3', 3],
    ['traceroute', 4, 'traceroute', 3],
  ] as const)(
    '%s: requests and their replies carry the sender (pid, name, uid)',
    (name, family, cmd, count) => {
      const pid = pids.get(name)!;
      const sent = rowsOf(name, requests(family));
      const answered = rowsOf(name, replies(family));
      expect(sent.length).toBeGreaterThanOrEqual(count);
      expect(answered.length).toBeGreaterThanOrEqual(count);
      for (const row of [...sent, ...answered]) {
        expect(row.proc, `record ${row.no}`).toMatchObject({ pid, name: cmd, uid: 0 });
      }
    },
  );

  it('a port unreachable quoting a local UDP datagram names the process that sent it', () => {
    const errors = rowsOf('udp', (r) => r.family === 4 && r.type === 3 && r.code === 3);
    expect(errors.length).toBeGreaterThan(0);
    for (const row of errors) expect(row.proc).toMatchObject({ pid: pids.get('udp'), name: 'python3' });
  });

  it('echoes this host only answers stay unknown', () => {
    const rows = rowsOf('inbound', (r) => r.type === 8 || r.type === 0);
    expect(rows.length).toBeGreaterThanOrEqual(4);
    for (const row of rows) expect(row.proc).toBeUndefined();
  });

  it('display filters select by process name and pid', () => {
    const byName = filters.get(`icmpcap.proc.name == "ping"`)!;
    const ping = [...rowsOf('ping', () => true), ...rowsOf('ping6', () => true)].filter(
      (r) => r.proc?.name === 'ping',
    );
    expect(byName).toEqual(ping.map((r) => r.no));
    const raw = rowsOf('raw', (r) => r.proc !== undefined).map((r) => r.no);
    expect(raw.length).toBeGreaterThanOrEqual(6);
    expect(filters.get(`icmpcap.proc.pid == ${pids.get('raw')}`)).toEqual(raw);
  });

  it('CSV and NDJSON exports carry pid, process, uid and cgroup', () => {
    const table = parseCsv(readFileSync(result.exports.csv, 'utf8'));
    const header = table[0]!;
    const col = (name: string) => header.indexOf(name);
    const byNo = new Map(table.slice(1).map((line) => [Number(line[0]), line]));
    const ndjson = new Map(
      readFileSync(result.exports.ndjson, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .map((o) => [o.no as number, o]),
    );
    for (const row of result.rows) {
      const line = byNo.get(row.no)!;
      const object = ndjson.get(row.no)!;
      expect(line[col('pid')]).toBe(row.proc?.pid?.toString() ?? '');
      expect(line[col('process')]).toBe(row.proc?.name ?? '');
      expect(object.pid).toBe(row.proc?.pid ?? null);
      expect(object.process).toBe(row.proc?.name ?? null);
      expect(object.uid).toBe(row.proc?.uid ?? null);
      expect(object.cgroup).toBe(row.proc?.cgroup ?? null);
    }
  });

  it('tshark reads PID:/Cmd: comments and the direction flag from the pcapng export', () => {
    const out = execFileSync(
      'tshark',
      [
        '-r',
        result.exports.pcapng,
        '-n',
        '-T',
        'fields',
        '-E',
        'separator=|',
        '-E',
        'aggregator=;',
        '-e',
        'frame.number',
        '-e',
        'frame.comment',
        '-e',
        'frame.packet_flags_direction',
      ],
      { encoding: 'utf8' },
    );
    const frames = new Map(
      out
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split('|'))
        .map(([n, comment, direction]) => [
          Number(n),
          { comment: comment ?? '', direction: direction ?? '' },
        ]),
    );
    let tagged = 0;
    for (const row of result.rows) {
      const frame = frames.get(row.no)!;
      expect(frame, `frame ${row.no}`).toBeDefined();
      expect(frame.direction).toBe(row.dir === 'in' ? '0x00000001' : row.dir === 'out' ? '0x00000002' : '');
      if (row.proc?.pid != null) {
        tagged++;
        expect(frame.comment.split(';')).toEqual(
          expect.arrayContaining([`PID: ${row.proc.pid}`, `Cmd: ${row.proc.name}`]),
        );
      } else expect(frame.comment).not.toContain('PID:');
    }
    expect(tagged).toBeGreaterThanOrEqual(30);
  });
});
