/**
 * The pcapng and pcap exports from the spool copy the spool's blocks (and, for pcap, their packet bytes): each
 * file must be byte for byte what the row exporter writes for the same records, in capture order and in any
 * other order (a sorted view), across spool segments and interfaces, with the process comments of attributed
 * records, and tshark must read it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchBuilder, addressOf } from './bench/synth.js';
import { exportRecords } from './files/index.js';
import { splitSecondsNs } from './files/timestamp.js';
import { Ingestor } from './ingest.js';
import { ProcAttribution } from './proc/attribution.js';
import { exportSpoolPcap, exportSpoolPcapng, spoolExportRows } from './spool-export.js';
import { Spool } from './spool-store.js';
import { CHUNK_SIZE, RecordStore } from './store.js';

const NAMES = ['', 'lo', 'eth0', 'veth7'];
const N = CHUNK_SIZE + 5000; // two segments
const T0 = 1.7e18;
/** Every 10,000th record falls on a whole second: the pcap header's nanoseconds are 0 there. */
const STEP_NS = 1e5;

let tmp: string;
let store: RecordStore;
let ingestor: Ingestor;
let spool: Spool;
/** Processes of the records a local pinger sent or was answered on (what AF_PACKET captures attribute). */
const attribution = new ProcAttribution();
const processOf = (index: number): ReturnType<ProcAttribution['processOf']> => attribution.processOf(index);

/** A sorted view jumps about the spool: each of its records costs the row path a window read, so 3,000. */
const ORDERS: [string, number[]][] = [
  ['capture order', Array.from({ length: N }, (_, k) => k)],
  ['a sorted view', Array.from({ length: 3000 }, (_, k) => (k * 7919) % N)],
  ['a few selected', [N - 1, 3, CHUNK_SIZE, 4]],
];

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-spool-copy-'));
  store = new RecordStore();
  const ifname = (i: number): string => NAMES[i] ?? `if${i}`;
  ingestor = new Ingestor(store, ifname);
  spool = Spool.create(join(tmp, 'spool'), 'test', 256);
  const b = new BatchBuilder();
  const [a4, b4, a6, b6] = ['10.0.0.1', '10.0.0.2', '2001:db8::1', '2001:db8::2'].map(addressOf);
  const feed = (): void => {
    const batch = b.take();
    const from = store.length;
    ingestor.ingest(
      batch,
      spool.append(batch, Math.ceil(batch.byteLength / 72), ifname, from, () => true),
    );
  };
  for (let k = 0; k < N; k++) {
    const v6 = k % 3 === 0;
    b.add({
      tsNs: T0 + k * STEP_NS,
      family: v6 ? 6 : 4,
      src: v6 ? a6! : a4!,
      dst: v6 ? b6! : b4!,
      type: v6 ? 128 : 8,
      code: 0,
      id: 1,
      seq: k & 0xffff,
      dir: k % 4, // in, out, forward, unknown: with and without the direction option
      ifindex: 1 + (k % 3),
      ttl: 64,
      capLen: v6 ? 40 + 8 + (k % 13) : 20 + 8 + (k % 7), // odd lengths: padding
    });
    if (b.count === 4096) feed();
  }
  feed();
  // Comments of every length modulo 4 (their padding), processes known in part, runs of attributed records
  // and single ones.
  const procs = [
    { pid: 4242, name: 'ping', uid: 1000, cgroup: '/user.slice/user-1000.slice/session-2.scope' },
    { pid: 7, name: 'fping6', uid: null, cgroup: null },
    { pid: null, name: null, uid: 0, cgroup: null },
    { pid: 123456, name: 'mtr-packet', uid: 65534, cgroup: '/system.slice/dökker-ab.scope' },
  ].map((p) => attribution.processes.intern(p));
  for (let k = 0; k < N; k++) {
    if (k % 5 === 0 || (k % 1000 < 40 && k % 1000 >= 20)) attribution.column.set(k, procs[k % procs.length]!);
  }
});

afterAll(() => {
  spool?.close();
  rmSync(tmp, { recursive: true, force: true });
});

function tsharkFields(file: string, fields: string[]): string[][] | null {
  const args = ['-n', '-r', file, '-T', 'fields', '-E', 'separator=|', '-E', 'occurrence=a'];
  for (const f of fields) args.push('-e', f);
  const tshark = spawnSync('tshark', args, { encoding: 'utf8', maxBuffer: 1 << 27 });
  if (tshark.error !== undefined) return null; // no tshark on this machine: the byte comparison stands
  expect(tshark.status, tshark.stderr).toBe(0);
  return tshark.stdout
    .trim()
    .split('\n')
    .map((line) => line.split('|'));
}

describe('pcapng export from the spool', () => {
  it('writes the same bytes as the row exporter, in any order, across segments and interfaces', async () => {
    expect(spool.paths).toHaveLength(2);
    for (const [what, order] of ORDERS) {
      const copy = join(tmp, 'copy.pcapng');
      const rows = join(tmp, 'rows.pcapng');
      const result = await exportSpoolPcapng(store, ingestor, spool, order, { path: copy });
      await exportRecords(spoolExportRows(store, ingestor, spool, order), { format: 'pcapng', path: rows });
      expect(result.records, what).toBe(order.length);
      expect(readFileSync(copy).equals(readFileSync(rows)), what).toBe(true);
    }
    const copy = join(tmp, 'copy.pcapng');
    await exportSpoolPcapng(store, ingestor, spool, ORDERS[0]![1], { path: copy });
    const names = tsharkFields(copy, ['frame.interface_name']);
    if (names) {
      expect(names).toHaveLength(N);
      expect(names.slice(0, 4).flat()).toEqual(['lo', 'eth0', 'veth7', 'lo']);
    }
  });

  it("writes the attributed records' process comments as the row exporter does, and tshark reads them", async () => {
    for (const [what, order] of ORDERS) {
      const copy = join(tmp, 'copy-proc.pcapng');
      const rows = join(tmp, 'rows-proc.pcapng');
      const result = await exportSpoolPcapng(store, ingestor, spool, order, { path: copy, processOf });
      await exportRecords(spoolExportRows(store, ingestor, spool, order, processOf), {
        format: 'pcapng',
        path: rows,
      });
      expect(result.records, what).toBe(order.length);
      expect(readFileSync(copy).equals(readFileSync(rows)), what).toBe(true);
    }
    const copy = join(tmp, 'copy-proc.pcapng');
    await exportSpoolPcapng(store, ingestor, spool, ORDERS[0]![1], { path: copy, processOf });
    const frames = tsharkFields(copy, ['frame.number', 'frame.comment', 'frame.packet_flags_direction']);
    if (frames) {
      expect(frames).toHaveLength(N);
      let tagged = 0;
      for (const [k, [no, comment, direction]] of frames.entries()) {
        expect(no).toBe(String(k + 1));
        const proc = attribution.processOf(k);
        const expected = proc
          ? [
              proc.pid === null ? [] : [`PID: ${proc.pid}`],
              proc.name === null ? [] : [`Cmd: ${proc.name}`],
              proc.uid === null ? [] : [`UID: ${proc.uid}`],
              proc.cgroup === null ? [] : [`Cgroup: ${proc.cgroup}`],
            ].flat()
          : [];
        if (expected.length > 0) tagged++;
        expect(comment === '' ? [] : comment!.split(','), `frame ${k + 1}`).toEqual(expected);
        // The direction option still follows the comments.
        expect(direction, `frame ${k + 1}`).toBe(
          k % 4 === 0 ? '0x00000001' : k % 4 === 1 ? '0x00000002' : '',
        );
      }
      expect(tagged).toBeGreaterThan(N / 5);
    }
  });
});

describe('pcap export from the spool', () => {
  it('writes the same bytes as the row exporter, in any order, across segments', async () => {
    for (const [what, order] of ORDERS) {
      const copy = join(tmp, 'copy.pcap');
      const rows = join(tmp, 'rows.pcap');
      const result = await exportSpoolPcap(store, spool, order, { path: copy });
      await exportRecords(spoolExportRows(store, ingestor, spool, order), { format: 'pcap', path: rows });
      expect(result.records, what).toBe(order.length);
      expect(readFileSync(copy).equals(readFileSync(rows)), what).toBe(true);
    }
  });

  it('is read by tshark with every packet, its lengths and its nanosecond time', async () => {
    const copy = join(tmp, 'copy.pcap');
    await exportSpoolPcap(store, spool, ORDERS[0]![1], { path: copy });
    const frames = tsharkFields(copy, ['frame.time_epoch', 'frame.cap_len', 'frame.len']);
    if (!frames) return;
    expect(frames).toHaveLength(N);
    for (const k of [0, 1, 2, 3, 9999, 10000, 10001, N - 1]) {
      const [time, capLen, length] = frames[k]!;
      const ns = BigInt(T0 + k * STEP_NS); // the double the record was made with
      const seconds = ns / 1_000_000_000n;
      expect(time, `frame ${k + 1}`).toBe(
        `${seconds}.${String(ns - seconds * 1_000_000_000n).padStart(9, '0')}`,
      );
      const v6 = k % 3 === 0;
      const captured = v6 ? 40 + 8 + (k % 13) : 20 + 8 + (k % 7);
      expect([Number(capLen), Number(length)], `frame ${k + 1}`).toEqual([captured, captured]);
    }
  });
});

describe('splitSecondsNs', () => {
  it('splits 64-bit nanosecond times into seconds and nanoseconds exactly, as BigInt division does', () => {
    const times = [0n, 999_999_999n, 1_000_000_000n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n];
    let x = 0x9e3779b97f4a7c15n;
    for (let k = 0; k < 2000; k++) {
      x = (x * 6364136223846793005n + 1442695040888963407n) & 0xffff_ffff_ffff_ffffn;
      times.push(
        k % 2 ? x : 1_700_000_000_000_000_000n + (x % 10n ** 17n),
        (x / 1_000_000_000n) * 1_000_000_000n,
      );
    }
    const out = { seconds: 0, ns: 0 };
    for (const t of times) {
      splitSecondsNs(Number(t >> 32n), Number(t & 0xffff_ffffn), out);
      expect([out.seconds, out.ns], String(t)).toEqual([
        Number(t / 1_000_000_000n),
        Number(t % 1_000_000_000n),
      ]);
    }
  });
});
