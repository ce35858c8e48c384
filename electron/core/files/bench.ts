/**
 * Capture-file benchmark: export of 1 M records to pcapng and open + decode of a 1 M record pcapng, and the
 * service's exports from its spool (pcapng, pcapng with process comments, pcap, CSV, NDJSON), each next to
 * tshark doing the same work on the same file in the same run where tshark has a peer. Results are merged
 * into bench/results.json.
 *
 *   npx tsx electron/core/files/bench.ts [records]
 */
import { mergeBenchResults } from '../../../test/support/bench-results.js';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodeRecord, forEachRecord, type DecodedRecord } from '../record.js';
import { exportRecords, type ExportRow } from './export.js';
import { encodeRecord } from './packet.js';
import { openCaptureFile } from './read.js';
import { PcapngSpoolWriter } from './spool.js';
import { Ingestor } from '../ingest.js';
import { exportSpoolPcap, exportSpoolPcapng, spoolExportRows } from '../spool-export.js';
import { ProcAttribution } from '../proc/attribution.js';
import type { RowProcess } from '../../common/contract.js';
import { Spool } from '../spool-store.js';
import { RecordStore } from '../store.js';
import { ipv4Icmp, ipv6Icmp } from './testing/packets.js';

const COMMAND = 'npx tsx electron/core/files/bench.ts';
const RECORDS = Number(process.argv[2] ?? 1_000_000);
const BATCH = 4096;

function seconds(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/**
 * Echo request/reply pairs between a few hundred peers, 1 in 5 over IPv6, 100-byte IP packets, a packet every
 * 10 us: what a busy ping target looks like.
 */
function buildBatches(count: number): ArrayBuffer[] {
  const templates: Uint8Array[] = [];
  for (let peer = 0; peer < 256; peer++) {
    const id = 0x1000 + peer;
    if (peer % 5 === 4) {
      const src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, peer];
      templates.push(
        ipv6Icmp({ type: 128, id, payload: 52, src }),
        ipv6Icmp({ type: 129, id, payload: 52, dst: src }),
      );
    } else {
      const src = [10, 0, peer, 1];
      templates.push(
        ipv4Icmp({ type: 8, id, payload: 72, src }),
        ipv4Icmp({ type: 0, id, payload: 72, dst: src }),
      );
    }
  }
  const batches: ArrayBuffer[] = [];
  const t0 = 1_795_329_960_000_000_000n;
  for (let first = 0; first < count; first += BATCH) {
    const n = Math.min(BATCH, count - first);
    const out = new Uint8Array(n * 184);
    let at = 0;
    for (let i = first; i < first + n; i++) {
      const packet = templates[i % templates.length]!.slice();
      const seq = (i >> 9) & 0xffff;
      packet[packet.length - 2 - (packet[0]! >> 4 === 6 ? 52 : 72)] = seq >> 8; // seq sits before the payload
      packet[packet.length - 1 - (packet[0]! >> 4 === 6 ? 52 : 72)] = seq & 0xff;
      const size = encodeRecord(
        packet,
        { tsNs: t0 + BigInt(i) * 10_000n, ifindex: i % 7 === 0 ? 1 : 2, dir: i % 2, origLen: packet.length },
        out,
        at,
      );
      at += size!;
    }
    batches.push(out.buffer.slice(0, at));
  }
  return batches;
}

function tshark(args: string[]): number {
  const start = process.hrtime.bigint();
  const result = spawnSync('tshark', args, { stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 26 });
  if (result.status !== 0) throw new Error(`tshark ${args.join(' ')} failed: ${String(result.stderr)}`);
  return seconds(start);
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'icmpcap-bench-'));
  try {
    const batches = buildBatches(RECORDS);
    const input = path.join(dir, 'input.pcapng');

    // Spool: what the capture service does with every batch as it arrives. Three runs (the disk's page cache
    // and writeback make single runs noisy); the median counts and the last run's file is the input below.
    const offsets = new Float64Array(RECORDS);
    const spoolRuns: number[] = [];
    for (let run = 0; run < 3; run++) {
      const start = process.hrtime.bigint();
      const spool = PcapngSpoolWriter.create(input, { application: 'icmpcap bench' });
      spool.interfaceId(1, 'lo');
      spool.interfaceId(2, 'eth0');
      let written = 0;
      for (const batch of batches) written += spool.append(batch, 0, batch.byteLength, offsets, written);
      spool.close();
      spoolRuns.push(seconds(start));
      if (written !== RECORDS) throw new Error('the spool lost records');
    }
    const spoolSeconds = [...spoolRuns].sort((a, b) => a - b)[1]!;
    const spoolMb = (fs.statSync(input).size / 1e6).toFixed(1);
    console.log(
      `spool: ${RECORDS} records, ${spoolMb} MB in ${spoolRuns.map((x) => x.toFixed(3)).join(' / ')} s`,
    );

    // Open + decode into batches: three runs, the median counts (the first one also warms up the JIT).
    const openRuns: number[] = [];
    let opened = 0;
    for (let run = 0; run < 3; run++) {
      const start = process.hrtime.bigint();
      opened = 0;
      const reader = openCaptureFile(input);
      for (;;) {
        const next = await reader.next();
        if (next.done) {
          if (next.value.error) throw new Error(`reading the bench file failed: ${next.value.error.message}`);
          break;
        }
        opened += next.value.records;
      }
      openRuns.push(seconds(start));
    }
    const openSeconds = [...openRuns].sort((a, b) => a - b)[1]!;
    const tsharkReadSeconds = tshark(['-r', input]);
    console.log(
      `open: ${opened} records in ${openRuns.map((s) => s.toFixed(3)).join(' / ')} s; tshark -r: ${tsharkReadSeconds.toFixed(3)} s`,
    );

    // Export from memory: rows as the service hands them over (decoded records).
    const rows: ExportRow[] = [];
    for (const batch of batches) {
      forEachRecord(batch, (view, offset) => {
        const record: DecodedRecord = decodeRecord(view, offset);
        rows.push({ no: rows.length + 1, record, ifname: record.ifindex === 1 ? 'lo' : 'eth0' });
      });
    }
    const exported = path.join(dir, 'export.pcapng');
    const exportRuns: number[] = [];
    let result = { records: 0 };
    for (let run = 0; run < 3; run++) {
      const start = process.hrtime.bigint();
      result = await exportRecords(rows, { format: 'pcapng', path: exported });
      exportRuns.push(seconds(start));
    }
    const exportSeconds = [...exportRuns].sort((a, b) => a - b)[1]!;
    rows.length = 0;
    const tsharkCopySeconds = tshark(['-r', input, '-w', path.join(dir, 'tshark-copy.pcapng')]);
    console.log(
      `export: ${result.records} records in ${exportRuns.map((x) => x.toFixed(3)).join(' / ')} s; tshark -r -w: ${tsharkCopySeconds.toFixed(3)} s`,
    );

    if (opened !== RECORDS || result.records !== RECORDS) throw new Error('record counts differ');

    // Export as the capture service does it: the spool and index the service keeps (Spool, Ingestor), rows
    // from spoolExportRows (bytes from the spool as written, fields from the index).
    const store = new RecordStore();
    const ingestor = new Ingestor(store, (i) => (i === 1 ? 'lo' : 'eth0'));
    const spool = Spool.create(path.join(dir, 'service-spool'), 'icmpcap bench', 256);
    for (const batch of batches) {
      const from = store.length;
      const locations = spool.append(
        batch,
        Math.ceil(batch.byteLength / 72),
        (i) => (i === 1 ? 'lo' : 'eth0'),
        from,
      );
      ingestor.ingest(batch, locations);
    }
    const all = function* (): Generator<number> {
      for (let i = 0; i < RECORDS; i++) yield i;
    };
    const median = (runs: number[]): number => [...runs].sort((x, y) => x - y)[Math.floor(runs.length / 2)]!;
    const runs = async (count: number, work: () => Promise<unknown>): Promise<number[]> => {
      const out: number[] = [];
      for (let run = 0; run < count; run++) {
        const start = process.hrtime.bigint();
        await work();
        out.push(seconds(start));
      }
      return out;
    };
    const same = (a: string, b: string, what: string): void => {
      if (!fs.readFileSync(path.join(dir, a)).equals(fs.readFileSync(path.join(dir, b))))
        throw new Error(`${what}: the copy from the spool and the row export differ`);
    };
    const list = (xs: number[]): string => xs.map((x) => x.toFixed(3)).join(' / ');
    // The service's pcapng export copies the spool's blocks (exportSpoolPcapng); the rows path must give the
    // same bytes.
    const spoolExportRuns = await runs(3, () =>
      exportSpoolPcapng(store, ingestor, spool, all(), { path: path.join(dir, 'from-spool.pcapng') }),
    );
    const rowsRuns = await runs(1, () =>
      exportRecords(spoolExportRows(store, ingestor, spool, all()), {
        format: 'pcapng',
        path: path.join(dir, 'from-spool-rows.pcapng'),
      }),
    );
    same('from-spool.pcapng', 'from-spool-rows.pcapng', 'pcapng');
    const spoolExportSeconds = median(spoolExportRuns);
    const rowsSeconds = rowsRuns[0]!;
    console.log(`export from the spool through rows (CSV, NDJSON path): ${rowsSeconds.toFixed(3)} s`);
    console.log(
      `export from the spool: ${RECORDS} records in ${list(spoolExportRuns)} s; tshark -r -w: ${tsharkCopySeconds.toFixed(3)} s`,
    );

    // pcapng of a capture with attributed processes: a local pinger's requests and replies (every other
    // peer's records here, half of all) carry `PID:`/`Cmd:`/`UID:`/`Cgroup:` EPB comments.
    const attribution = new ProcAttribution();
    const pingers = [
      { pid: 4242, name: 'ping', uid: 1000, cgroup: '/user.slice/user-1000.slice/session-2.scope' },
      { pid: 4243, name: 'fping', uid: 1000, cgroup: '/user.slice/user-1000.slice/session-2.scope' },
    ].map((p) => attribution.processes.intern(p));
    for (let i = 0; i < RECORDS; i++)
      if ((i >> 1) % 2 === 0) attribution.column.set(i, pingers[(i >> 2) % 2]!);
    const processOf = (i: number): RowProcess | null => attribution.processOf(i);
    const commentRuns = await runs(3, () =>
      exportSpoolPcapng(store, ingestor, spool, all(), {
        path: path.join(dir, 'from-spool-proc.pcapng'),
        processOf,
      }),
    );
    await exportRecords(spoolExportRows(store, ingestor, spool, all(), processOf), {
      format: 'pcapng',
      path: path.join(dir, 'from-spool-proc-rows.pcapng'),
    });
    same('from-spool-proc.pcapng', 'from-spool-proc-rows.pcapng', 'pcapng with process comments');
    const commentSeconds = median(commentRuns);
    const tsharkCommentSeconds = tshark([
      '-r',
      path.join(dir, 'from-spool-proc.pcapng'),
      '-w',
      path.join(dir, 'tshark-proc.pcapng'),
    ]);
    console.log(
      `export from the spool, pcapng with process comments on half the records: ${list(commentRuns)} s; tshark -r -w of that file: ${tsharkCommentSeconds.toFixed(3)} s`,
    );

    // pcap: record headers written, packet bytes copied from the spool (exportSpoolPcap).
    const pcapRuns = await runs(3, () =>
      exportSpoolPcap(store, spool, all(), { path: path.join(dir, 'from-spool.pcap') }),
    );
    const pcapRowsRuns = await runs(1, () =>
      exportRecords(spoolExportRows(store, ingestor, spool, all()), {
        format: 'pcap',
        path: path.join(dir, 'from-spool-rows.pcap'),
      }),
    );
    same('from-spool.pcap', 'from-spool-rows.pcap', 'pcap');
    const pcapSeconds = median(pcapRuns);
    const tsharkPcapSeconds = tshark(['-r', input, '-w', path.join(dir, 'tshark.pcap'), '-F', 'pcap']);
    console.log(
      `export from the spool to pcap: ${list(pcapRuns)} s (through rows ${pcapRowsRuns[0]!.toFixed(3)} s); tshark -r -w -F pcap: ${tsharkPcapSeconds.toFixed(3)} s`,
    );

    // CSV and NDJSON: rows from the spool and the index, formatted.
    const textSeconds: Record<'csv' | 'ndjson', number> = { csv: 0, ndjson: 0 };
    for (const format of ['csv', 'ndjson'] as const) {
      const textRuns = await runs(3, () =>
        exportRecords(spoolExportRows(store, ingestor, spool, all(), processOf), {
          format,
          path: path.join(dir, `from-spool.${format}`),
        }),
      );
      textSeconds[format] = median(textRuns);
      console.log(`export from the spool to ${format}: ${list(textRuns)} s`);
    }
    spool.close();

    const machine = `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`;
    const metrics: Record<string, { value: number; unit: string; command: string; note: string }> = {
      'files.pcapng_export_records_per_s': {
        value: Math.round(RECORDS / exportSeconds),
        unit: 'records/s',
        command: COMMAND,
        note: `exportRecords of ${RECORDS} decoded 100-byte ICMP records from memory to a pcapng file on disk (median of 3 runs in one process); ${machine}`,
      },
      'files.pcapng_export_vs_tshark': {
        value: Number((tsharkCopySeconds / exportSeconds).toFixed(2)),
        unit: 'x',
        command: COMMAND,
        note: `tshark -r in -w out on the same ${RECORDS}-record file took ${tsharkCopySeconds.toFixed(2)} s vs our ${exportSeconds.toFixed(2)} s (higher is better)`,
      },
      'files.open_records_per_s': {
        value: Math.round(RECORDS / openSeconds),
        unit: 'records/s',
        command: COMMAND,
        note: `openCaptureFile over a ${RECORDS}-record pcapng, decoded into record batches (median of 3 runs in one process); ${machine}`,
      },
      'files.open_vs_tshark': {
        value: Number((tsharkReadSeconds / openSeconds).toFixed(2)),
        unit: 'x',
        command: COMMAND,
        note: `tshark -r in > /dev/null on the same file took ${tsharkReadSeconds.toFixed(2)} s vs our ${openSeconds.toFixed(2)} s (higher is better)`,
      },
      'files.spool_export_records_per_s': {
        value: Math.round(RECORDS / spoolExportSeconds),
        unit: 'records/s',
        command: COMMAND,
        note: `the service's pcapng export of ${RECORDS} records from its Spool (exportSpoolPcapng: Enhanced Packet Blocks copied in runs, interface ids rewritten; same bytes as the row path, checked), median of 3 runs, file fsync'ed and renamed; tshark -r in -w out on the same records took ${tsharkCopySeconds.toFixed(2)} s in the same run; the row path (spoolExportRows + exportRecords, what CSV/NDJSON take) ${(RECORDS / rowsSeconds / 1e6).toFixed(2)} M/s`,
      },
      'files.spool_export_vs_tshark': {
        value: Number((tsharkCopySeconds / spoolExportSeconds).toFixed(2)),
        unit: 'x',
        command: COMMAND,
        note: `tshark -r in -w out on the same ${RECORDS}-record file took ${tsharkCopySeconds.toFixed(2)} s vs our export from the spool ${spoolExportSeconds.toFixed(2)} s (higher is better)`,
      },
      'files.spool_export_comments_records_per_s': {
        value: Math.round(RECORDS / commentSeconds),
        unit: 'records/s',
        command: COMMAND,
        note: `exportSpoolPcapng of ${RECORDS} records of which half carry a local process (PID:/Cmd:/UID:/Cgroup: EPB comments written into the copied blocks; same bytes as the row path, checked), median of 3 runs; tshark -r that file -w out took ${tsharkCommentSeconds.toFixed(2)} s in the same run (${(tsharkCommentSeconds / commentSeconds).toFixed(2)}x)`,
      },
      'files.spool_export_pcap_records_per_s': {
        value: Math.round(RECORDS / pcapSeconds),
        unit: 'records/s',
        command: COMMAND,
        note: `exportSpoolPcap of ${RECORDS} records (pcap record headers written, packet bytes copied from the spool's blocks; same bytes as the row path, checked), median of 3 runs; tshark -r in -w out -F pcap on the same records took ${tsharkPcapSeconds.toFixed(2)} s in the same run (${(tsharkPcapSeconds / pcapSeconds).toFixed(2)}x); through rows ${(RECORDS / pcapRowsRuns[0]!).toFixed(0)} records/s`,
      },
      'files.spool_export_pcap_vs_tshark': {
        value: Number((tsharkPcapSeconds / pcapSeconds).toFixed(2)),
        unit: 'x',
        command: COMMAND,
        note: `tshark -r in -w out -F pcap on the same ${RECORDS}-record file took ${tsharkPcapSeconds.toFixed(2)} s vs our pcap export from the spool ${pcapSeconds.toFixed(2)} s (higher is better)`,
      },
      'files.spool_export_csv_records_per_s': {
        value: Math.round(RECORDS / textSeconds.csv),
        unit: 'records/s',
        command: COMMAND,
        note: `CSV export of ${RECORDS} records from the spool and index (spoolExportRows + exportRecords, half with a process), median of 3 runs`,
      },
      'files.spool_export_ndjson_records_per_s': {
        value: Math.round(RECORDS / textSeconds.ndjson),
        unit: 'records/s',
        command: COMMAND,
        note: `NDJSON export of ${RECORDS} records from the spool and index (spoolExportRows + exportRecords, half with a process), median of 3 runs`,
      },
      'files.spool_append_records_per_s': {
        value: Math.round(RECORDS / spoolSeconds),
        unit: 'records/s',
        command: COMMAND,
        note: `PcapngSpoolWriter.append of ${BATCH}-record batches (100-byte packets), one writeSync per batch, offsets kept; median of 3 runs, to ${os.tmpdir()} on disk`,
      },
    };
    mergeBenchResults(metrics);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
