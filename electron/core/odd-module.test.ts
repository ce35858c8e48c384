/**
 * The odd-traffic suite through the kernel module: the records icmpcap.ko wrote in the QEMU guest for the odd
 * set (native/test/guest/guest_sources.cc, which also proves them identical to AF_PACKET's, record by record)
 * come out through the serial log (kernel/test/run.sh writes them to kernel/build/xsrc/) and go here through
 * the capture service as a native session's batches would: the table shows each case's packets with the
 * right flags, every export format holds them, and tshark reads the pcapng and pcap exports, finds the same
 * packets and reassembles the fragments. The AF_PACKET half of the suite is odd-traffic.test.ts.
 *
 * kernel/test/run.sh runs this file after the guest (ICMPCAP_XSRC_DIR set: the output must be there). In a
 * plain `vitest run` it uses the output of the last guest run, and skips when there is none.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXPORT_FORMATS, type ExportFormat, type Job, type Row } from '../common/contract.js';
import { parseCsv } from './files/testing/records.js';
import { projectRoot } from './paths.js';
import { forEachRecord } from './record.js';
import { CaptureService } from './service.js';

const DIR = process.env.ICMPCAP_XSRC_DIR ?? join(projectRoot(), 'kernel', 'build', 'xsrc');
const RECORDS = join(DIR, 'module-records.bin');
const CASES = join(DIR, 'cases.txt');
const PRESENT = existsSync(RECORDS) && existsSync(CASES);
if (!PRESENT && process.env.ICMPCAP_XSRC_DIR)
  throw new Error(`no records from the guest in ${DIR}: guest_sources did not print them (see its log)`);

/** guest_sources.cc's addresses and identifiers. */
const A4 = '10.79.0.1';
const B4 = '10.79.0.2';
const A6 = 'fd79::1';
const B6 = 'fd79::2';
const ID = 0x7901;
const MARKER_ID = 0x4d4b;

/** Each case's rows, in record order: [direction, type, flags, source]. Markers are left out. */
const EXPECTED: Record<string, [Row['dir'], number, string, string][]> = {
  'ping4-in': [
    ['in', 8, 'fragment', A4],
    ['in', 0, 'fragment not-first', A4],
    ['in', 0, 'fragment not-first', A4],
    // The module's LOCAL_OUT hook sees the reply before it is fragmented.
    ['out', 0, '', B4],
  ],
  'ping4-out': [
    ['out', 8, '', B4],
    ['in', 0, 'fragment', A4],
    ['in', 0, 'fragment not-first', A4],
    ['in', 0, 'fragment not-first', A4],
  ],
  'ping6-in': [
    ['in', 128, 'fragment', A6],
    ['in', 0, 'fragment not-first', A6],
    ['in', 0, 'fragment not-first', A6],
    ['out', 129, '', B6],
  ],
  'ping6-out': [
    ['out', 128, '', B6],
    ['in', 129, 'fragment', A6],
    ['in', 0, 'fragment not-first', A6],
    ['in', 0, 'fragment not-first', A6],
  ],
  short4: [['in', 8, 'short', A4]],
  'short4-padded': [['in', 8, 'short', A4]],
  short6: [['in', 128, 'short', A6]],
  badsum4: [['in', 8, 'bad-checksum', A4]],
  badsum6: [['in', 128, 'bad-checksum', A6]],
  options4: [
    ['in', 8, '', A4],
    ['out', 0, '', B4],
  ],
  'options4-long': [
    ['in', 8, '', A4],
    ['out', 0, '', B4],
  ],
  hbh6: [['in', 143, '', A6]],
  dstopt6: [
    ['in', 128, '', A6],
    ['out', 129, '', B6],
  ],
  deep6: [
    ['in', 128, '', A6],
    ['out', 129, '', B6],
  ],
  frag4: [
    ['in', 8, 'fragment', A4],
    ['in', 0, 'fragment not-first', A4],
    ['out', 0, '', B4],
  ],
  frag6: [
    ['in', 128, 'fragment', A6],
    ['in', 0, 'fragment not-first', A6],
    ['out', 129, '', B6],
  ],
  rfc4884: [['in', 11, '', A4]],
  unknown4: [['in', 99, '', A4]],
  unknown6: [['in', 250, '', A6]],
  vlan4: [
    ['in', 8, '', A4],
    ['out', 0, '', B4],
  ],
  vlan6: [
    ['in', 128, '', A6],
    ['out', 129, '', B6],
  ],
};

function tshark(file: string, args: string[]): string[][] {
  const out = execFileSync('tshark', ['-r', file, '-n', ...args], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split('|'));
}

const fields = (...names: string[]): string[] => [
  '-T',
  'fields',
  '-E',
  'separator=|',
  ...names.flatMap((n) => ['-e', n]),
];

function waitJob(service: CaptureService, id: number): Promise<Job> {
  return new Promise((resolve) => {
    const off = service.on((event, data) => {
      const job = data as Job;
      if (event === 'job' && job.id === id && job.state !== 'running') {
        off();
        resolve(job);
      }
    });
  });
}

describe.skipIf(!PRESENT)(
  `odd traffic through the module: table flags and every export${PRESENT ? '' : ` (skipped: no guest output in ${DIR}; bash kernel/test/run.sh makes it)`}`,
  () => {
    let dir = '';
    let service: CaptureService;
    const rows: Row[] = [];
    const ranges = new Map<string, [number, number]>();
    const exports = {} as Record<ExportFormat, string>;
    const jobs: Job[] = [];
    let records = 0;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'icmpcap-odd-module-'));
      const bytes = readFileSync(RECORDS);
      let end: [number, number] | undefined;
      for (const line of readFileSync(CASES, 'utf8').split('\n')) {
        const [kind, ...rest] = line.split(' ');
        if (kind === 'case') ranges.set(rest[0]!, [Number(rest[1]), Number(rest[2])]);
        if (kind === 'end') end = [Number(rest[0]), Number(rest[1])];
      }
      // The serial log carried every byte.
      expect(end).toEqual([expect.any(Number), bytes.length]);
      const batch = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length);
      forEachRecord(batch, () => records++);
      expect(records).toBe(end![0]);

      service = new CaptureService({
        native: new Error('records from the guest: no native session here'),
        version: 'test',
        spoolDir: join(dir, 'spool'),
      });
      service.startFeed({ snaplen: 65535 });
      service.feed(batch, records);
      for (let start = 0; start < service.store.live; start += 2000)
        rows.push(...service.rows(start, 2000).rows);
      for (const format of EXPORT_FORMATS) {
        exports[format] = join(dir, `all.${format}`);
        const { id } = (await service.handle(
          'export.start',
          { format, scope: 'all', path: exports[format] },
          'ipc',
        )) as { id: number };
        jobs.push(await waitJob(service, id));
      }
    }, 60_000);

    afterAll(() => {
      service?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    /** The rows of a case (records [from, to) of the guest's list are numbers from + 1 .. to), markers left out. */
    function rowsOf(name: string): Row[] {
      const [from, to] = ranges.get(name)!;
      return rows.filter((r) => r.no > from && r.no <= to && r.id !== MARKER_ID);
    }
    const flagsOf = (r: Row): string => (r.flags ?? []).join(' ');

    it('holds every record the module wrote, and every export job finishes with all of them', () => {
      expect(rows).toHaveLength(records);
      expect([...ranges.keys()]).toEqual(Object.keys(EXPECTED));
      expect(jobs.map((j) => [j.state, j.done])).toEqual(EXPORT_FORMATS.map(() => ['done', records]));
    });

    it.each(Object.entries(EXPECTED))('%s: in the table as the module saw it, flagged', (name, want) => {
      const got = rowsOf(name);
      expect(got.map((r) => [r.dir, r.type, flagsOf(r), r.src])).toEqual(want);
      for (const r of got) {
        if (r.flags?.includes('not-first')) expect([r.type, r.code, r.id, r.seq]).toEqual([0, 0, null, null]);
        else if ([8, 0, 128, 129].includes(r.type) && !r.flags?.includes('short')) expect(r.id).toBe(ID);
      }
    });

    it('every export holds every row with its length and flags', () => {
      const csv = parseCsv(readFileSync(exports.csv, 'utf8'));
      const header = csv[0]!;
      const ndjson = readFileSync(exports.ndjson, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(csv.length - 1).toBe(rows.length);
      expect(ndjson).toHaveLength(rows.length);
      for (const [i, r] of rows.entries()) {
        const line = csv[i + 1]!;
        expect([line[0], line[header.indexOf('flags')], line[header.indexOf('source')]]).toEqual([
          String(r.no),
          flagsOf(r),
          r.src,
        ]);
        expect([ndjson[i]!.no, ndjson[i]!.flags, ndjson[i]!.length]).toEqual([r.no, r.flags ?? [], r.len]);
      }
      for (const format of ['pcapng', 'pcap'] as const) {
        const frames = tshark(exports[format], [
          '-o',
          'ip.defragment:FALSE',
          '-o',
          'ipv6.defragment:FALSE',
          ...fields('frame.number', 'frame.len', 'frame.cap_len'),
        ]);
        // Records are exported in order: frame n is record n, whole.
        expect(frames.map(([n, len, cap]) => [format, Number(n), Number(len), Number(cap)])).toEqual(
          rows.map((r) => [format, r.no, r.len, r.len]),
        );
      }
    });

    it('tshark finds the same packets in the pcapng and pcap exports, reassembling the fragments', () => {
      for (const format of ['pcapng', 'pcap'] as const) {
        // With reassembly (tshark's default): every echo of the cases, once, where its last fragment is.
        const echoes = tshark(exports[format], [
          '-Y',
          `icmp.ident == ${ID} || icmpv6.echo.identifier == ${ID}`,
          ...fields('frame.number', 'icmp.type', 'icmpv6.type', 'icmp.seq', 'icmpv6.echo.sequence_number'),
        ]).map(([no, t4, t6, s4, s6]) => [Number(no), Number(t4 || t6), Number(s4 || s6)]);
        const lastFragments = rows.filter((r) => r.flags?.includes('not-first') && !nextIsLaterFragment(r));
        const want = rows
          .filter((r) => (r.id === ID && !r.flags?.includes('fragment')) || lastFragments.includes(r))
          .map((r) => [r.no, echoOf(r).type, echoOf(r).seq]);
        // The fragmented echoes that came in: ping4-in, ping4-out, ping6-in, ping6-out, frag4, frag6.
        expect(lastFragments).toHaveLength(6);
        expect({ format, echoes }).toEqual({ format, echoes: want });
        // The reassembled datagrams: ICMP (v4) or ICMPv6 length as sent.
        const whole = tshark(exports[format], [
          '-Y',
          'ip.reassembled.length || ipv6.reassembled.length',
          ...fields('frame.number', 'ip.reassembled.length', 'ipv6.reassembled.length'),
        ]).map(([no, l4, l6]) => [Number(no), Number(l4 || l6)]);
        expect({ format, whole }).toEqual({
          format,
          whole: lastFragments.map((r) => [r.no, 8 + reassembledData(r)]),
        });
      }
    });

    /** Whether the record after r is a later fragment of the same datagram (r is then not the last). */
    function nextIsLaterFragment(r: Row): boolean {
      const next = rows[r.no];
      return next !== undefined && next.src === r.src && !!next.flags?.includes('not-first');
    }
    /** The echo a datagram's last fragment completes: its first fragment's type and sequence number. */
    function echoOf(r: Row): { type: number; seq: number | null } {
      if (!r.flags?.includes('not-first')) return { type: r.type, seq: r.seq };
      let k = r.no - 1;
      while (k > 0 && rows[k - 1]!.flags?.includes('not-first')) k--;
      const first = rows[k - 1]!;
      return { type: first.type, seq: first.seq };
    }
    /** Bytes of echo data in the datagram whose last fragment is r: 3000 (ping cases) or 1920 (frag cases). */
    function reassembledData(r: Row): number {
      const name = [...ranges.entries()].find(([, [from, to]]) => r.no > from && r.no <= to)![0];
      return name.startsWith('ping') ? 3000 : 1920;
    }
  },
);
