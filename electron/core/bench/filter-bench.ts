/**
 * Display-filter benchmark: the filters people use most, each over 10 M records (View.setFilter, the
 * path the filter bar takes), median of 3. Synthetic capture shaped like a busy host (realisticCapture).
 * Filters that read records' bytes (fields off the columns, regex, slices) are marked per record; for
 * the columnar ones, tests on ip.* / icmp.* also read the bytes of ICMP errors whose outer header does
 * not already decide them (quoted datagrams): that count is reported beside the time (this run has no
 * spool, so those records answer from the columns; each costs one spool read in the service).
 *
 *   npx tsx electron/core/bench/filter-bench.ts [records]   (a custom count does not write results)
 */
import { mergeBenchResults } from '../../../test/support/bench-results.js';
import os from 'node:os';
import { compileFilter } from '../filter/compile.js';
import { Ingestor } from '../ingest.js';
import { Aggregator } from '../stats/aggregator.js';
import { RecordStore } from '../store.js';
import { View } from '../view.js';
import { realisticCapture } from './synth.js';

const N = Number(process.argv[2] ?? 10_000_000);
const COMMAND = 'npx tsx electron/core/bench/filter-bench.ts';
const IFNAMES = ['', 'eth0', 'wlan0', 'lo'];

/** The filters people type most (Wireshark's ICMP habits and icmpcap's own fields). */
export const COMMON_FILTERS = [
  'icmp',
  'icmpv6',
  'ip',
  'ipv6',
  'icmp.type == 8',
  'icmp.type == 0',
  'icmp.type == 3',
  'icmp.type == 11',
  'icmp.type in {0, 8}',
  'icmp.type == 3 && icmp.code == 4',
  'icmpv6.type == 128 || icmpv6.type == 129',
  'icmpv6.type == 2',
  'icmpv6.type in {133..137}',
  'ip.addr == 10.1.0.0/16',
  'ip.src == 10.0.0.2',
  'ip.dst != 10.0.0.2',
  'ipv6.addr == 2001:db8::/32',
  'ip.addr == 10.1.0.0/16 && icmp.type == echo-reply && icmpcap.rtt > 1',
  'icmp.seq in {1..100}',
  'icmp.ident == 1000',
  'icmpv6.echo.sequence_number > 5',
  'icmpcap.rtt > 30',
  'rtt > 1 && rtt < 5',
  'ip.ttl < 10',
  'ipv6.hlim == 255',
  'frame.len > 100',
  'frame.number in {1000..2000000}',
  'frame.time_relative > 10',
  'icmpcap.dir == in',
  'icmpcap.hook == prerouting || frame.interface_name == "eth0"',
  'echo && !(icmpcap.dir == out)',
  'error or nd',
  'not icmp.type == 8 and ip',
  'icmp.code === 0',
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

function main(): void {
  const store = new RecordStore();
  const ingestor = new Ingestor(store, (i) => IFNAMES[i] ?? `if${i}`);
  const agg = new Aggregator(ingestor);
  for (const batch of realisticCapture(N, 4096)) {
    const from = store.length;
    ingestor.ingest(batch);
    agg.update(store, from, store.length);
  }
  let quotedReads = 0;
  const env = {
    addresses: ingestor.addresses,
    interfaces: ingestor.interfaces,
    // Counts the records that would be read from the spool; answers from the columns (no spool here).
    fields: () => {
      quotedReads++;
      return null;
    },
  };
  const view = new View(store, env);
  view.update();
  const results: string[] = [];
  let worst = 0;
  for (const text of COMMON_FILTERS) {
    const compiled = compileFilter(text, env)!;
    view.setFilter(text); // warm the JIT
    quotedReads = 0;
    const ms = median([0, 1, 2].map(() => view.setFilter(text).ms));
    const reads = Math.round(quotedReads / 3);
    worst = Math.max(worst, ms);
    const line = `'${text}' ${ms.toFixed(1)} ms (${view.length} matches${compiled.perRecord ? `, per record: ${compiled.perRecordReason}` : ''}${reads > 0 ? `, ${reads} error records read from the spool` : ''})`;
    results.push(line);
    console.log(line);
  }
  const load = os.loadavg()[0]!.toFixed(1);
  const cpu = `${os.cpus().length} x ${os.cpus()[0]?.model.trim() ?? 'cpu'}, Node ${process.version}, load average ${load}`;
  console.log(`worst of ${COMMON_FILTERS.length}: ${worst.toFixed(1)} ms over ${store.length} records`);
  if (process.argv[2] !== undefined) {
    console.log('(a custom record count: bench/results.json left alone)');
    return;
  }
  mergeBenchResults({
    'service.filter_worst_of_common_ms_10m': {
      value: Math.round(worst * 10) / 10,
      unit: 'ms',
      command: COMMAND,
      note: `the slowest of ${COMMON_FILTERS.length} common filters over ${store.length} records (View.setFilter, median of 3 each): ${results.join('; ')}; ${cpu}`,
    },
  });
}

main();
