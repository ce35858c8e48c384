/**
 * Display-filter benchmark on the service's real path: the records go through a spool file (the pcapng
 * the service writes) and the Ingestor into the columnar store, the Aggregator judges replies and loss,
 * and each filter runs as the filter bar runs it (View.setFilterAsync with the spool as the per-record
 * field source, the quoted-header columns from the Ingestor). The records carry real packet bytes
 * (synth.ts fillPacketBytes: errors quote an echo request), so any record a filter must read costs a
 * real spool read, counted beside the time. Median of 3 per filter, each compiled afresh (as typed).
 * Beside it, in the same run, tshark -Y on the spool file itself, per record (a prefix of the file, as
 * tshark reads ~100x slower), for a few of the same filters.
 *
 *   node --max-old-space-size=8192 --initial-old-space-size=512 --v8-pool-size=0 --import tsx electron/core/bench/filter-bench.ts [records [tshark records]]
 *   (a custom record count does not write results)
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mergeBenchResults } from '../../../test/support/bench-results.js';
import { storeFieldReader } from '../fields/store-fields.js';
import { compileFilter } from '../filter/compile.js';
import { Ingestor } from '../ingest.js';
import { Spool } from '../spool-store.js';
import { Aggregator } from '../stats/aggregator.js';
import { RecordStore } from '../store.js';
import { View } from '../view.js';
import { COMMON_FILTERS } from './common-filters.js';
import { fillPacketBytes, realisticCapture } from './synth.js';

const N = Number(process.argv[2] ?? 10_000_000);
const TSHARK_N = Number(process.argv[3] ?? 200_000);
const COMMAND =
  'node --max-old-space-size=8192 --initial-old-space-size=512 --v8-pool-size=0 --import tsx electron/core/bench/filter-bench.ts';
const IFNAMES = ['', 'eth0', 'wlan0', 'lo'];

/** Filters tshark runs too (Wireshark names only), for the per-record comparison. */
const TSHARK_FILTERS = ['icmp.type == 8', 'ip.addr == 10.1.0.0/16', 'ip.ttl < 10'];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'icmpcap-filter-bench-'));
  try {
    await run(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function run(dir: string): Promise<void> {
  const store = new RecordStore();
  const ifname = (i: number): string => IFNAMES[i] ?? `if${i}`;
  const ingestor = new Ingestor(store, ifname);
  const agg = new Aggregator(ingestor);
  const spool = Spool.create(dir, 'icmpcap filter bench', 256);
  for (const batch of realisticCapture(N, 4096)) {
    fillPacketBytes(batch);
    const from = store.length;
    const offsets = spool.append(batch, 4096, ifname, from);
    ingestor.ingest(batch, offsets);
    agg.update(store, from, store.length);
  }
  // Loss is judged at stop: every request still waiting is judged now (icmp.resp_not_found).
  ingestor.echo.finish();
  spool.sync();
  let spoolReads = 0;
  const reader = storeFieldReader(
    store,
    (offset) => spool.read(offset),
    (id) => ingestor.interfaces.get(id),
  );
  const env = {
    addresses: ingestor.addresses,
    interfaces: ingestor.interfaces,
    quoted: ingestor.quoted,
    matchedColumns: true,
    fields: (index: number) => {
      spoolReads++;
      return reader(index);
    },
  };
  const view = new View(store, env);
  view.update();
  const results: string[] = [];
  const perFilter: Record<string, number> = {};
  let worst = 0;
  let worstText = '';
  for (const text of COMMON_FILTERS) {
    const compiled = compileFilter(text, env)!;
    await view.setFilterAsync(text); // warm the JIT for the code the View shares between filters
    spoolReads = 0;
    const times: number[] = [];
    for (let k = 0; k < 3; k++) times.push((await view.setFilterAsync(text)).ms);
    const ms = median(times);
    const reads = Math.round(spoolReads / 3);
    if (ms > worst) {
      worst = ms;
      worstText = text;
    }
    perFilter[text] = Math.round(ms * 10) / 10;
    const line = `'${text}' ${ms.toFixed(1)} ms (${view.length} matches${compiled.perRecord ? `, per record: ${compiled.perRecordReason}` : ''}${reads > 0 ? `, ${reads} records read from the spool` : ''})`;
    results.push(line);
    console.log(line);
  }
  const load = os.loadavg()[0]!.toFixed(1);
  const cpu = `${os.cpus().length} x ${os.cpus()[0]?.model.trim() ?? 'cpu'}, Node ${process.version}, load average ${load}`;
  console.log(
    `worst of ${COMMON_FILTERS.length}: ${worst.toFixed(1)} ms ('${worstText}') over ${store.length} records`,
  );

  // tshark -Y on the same records (the spool file), per record, beside ours per record.
  const tshark: string[] = [];
  const hasTshark = spawnSync('tshark', ['-v']).status === 0;
  if (hasTshark) {
    const file = spool.path;
    for (const text of TSHARK_FILTERS) {
      const t0 = performance.now();
      const r = spawnSync(
        'tshark',
        ['-n', '-r', file, '-c', String(TSHARK_N), '-Y', text, '-T', 'fields', '-e', 'frame.number'],
        {
          maxBuffer: 1 << 30,
          encoding: 'utf8',
        },
      );
      const theirsMs = performance.now() - t0;
      if (r.status !== 0) throw new Error(`tshark failed: ${r.stderr}`);
      const theirsPerRecordUs = (theirsMs * 1000) / Math.min(TSHARK_N, store.length);
      const oursPerRecordUs = ((perFilter[text] ?? NaN) * 1000) / store.length;
      const line = `'${text}': tshark ${theirsPerRecordUs.toFixed(3)} us/record (${Math.min(TSHARK_N, store.length)} records in ${theirsMs.toFixed(0)} ms, start-up included), icmpcap ${oursPerRecordUs.toFixed(4)} us/record`;
      tshark.push(line);
      console.log(line);
    }
  }
  spool.close();
  if (process.argv[2] !== undefined) {
    console.log('(a custom record count: bench/results.json left alone)');
    return;
  }
  const minRatio = Math.min(
    ...TSHARK_FILTERS.map((t) => {
      const m = /tshark ([\d.]+) us\/record.*icmpcap ([\d.]+) us/.exec(
        tshark.find((l) => l.startsWith(`'${t}'`)) ?? '',
      );
      return m ? Number(m[1]) / Number(m[2]) : Infinity;
    }),
  );
  mergeBenchResults({
    'service.filter_ms_10m': {
      value: Math.round(worst * 10) / 10,
      unit: 'ms',
      command: COMMAND,
      note: `the slowest of ${COMMON_FILTERS.length} common filters ('${worstText}') over ${store.length} records on the service's path (spool + Ingestor + Aggregator, View.setFilterAsync with the spool as the field source; median of 3 each); per filter: ${JSON.stringify(perFilter)}; ${cpu}`,
    },
    'service.filter_worst_of_common_ms_10m': {
      value: Math.round(worst * 10) / 10,
      unit: 'ms',
      command: COMMAND,
      note: `same as service.filter_ms_10m (older name): ${results.join('; ')}`,
    },
    ...(hasTshark
      ? {
          'service.filter_vs_tshark': {
            value: Math.round(minRatio),
            unit: 'x faster per record',
            command: COMMAND,
            note: `per record, same run, same records (tshark -n -r <the spool file> -c ${TSHARK_N} -Y <filter>, start-up included; ours over all ${store.length}): ${tshark.join('; ')}; the smallest ratio of ${TSHARK_FILTERS.length} filters`,
          },
        }
      : {}),
  });
}

await main();
