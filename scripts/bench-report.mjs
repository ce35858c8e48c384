// Writes docs/BENCHMARKS.md from bench/results.json: one table per part, with the command that produced
// each figure and the target it is held against.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';

const TARGETS = {
  'kernel.ring_records_per_s': '5 M records/s from the in-module producer',
  'kernel.ring_vs_netlink': 'at least 15x the netlink-per-record design (same guest run)',
  'kernel.ring_consumer_ns_per_record': 'below kernel.ring_producer_ns_per_record (the app keeps up)',
  'kernel.zero_loss_pps_module': 'above kernel.zero_loss_pps_afpacket and kernel.zero_loss_pps_tcpdump',
  'kernel.cpu_ns_per_packet_module':
    'below kernel.cpu_ns_per_packet_afpacket and kernel.cpu_ns_per_packet_tcpdump',
  'kernel.loss_at_1m_per_s': '0 records lost at 1 M records/s',
  'native.drain_records_per_s': '20 M records/s',
  'native.to_js_records_per_s': '5 M records/s',
  'service.ingest_records_per_s': '2 M records/s',
  'service.viewport_p99_ms_10m': 'under 5 ms at 10 M records',
  'service.filter_ms_10m': 'under 200 ms over 10 M records',
  'service.bytes_per_record': '48 bytes or less',
  'service.bytes_per_record_with_stats': '48 bytes or less, with statistics, at 20 M records',
  'service.ingest_records_per_s_20m': '2 M records/s',
  'service.ingest_with_ring_limit_records_per_s': '2 M records/s',
  'service.ingest_with_ring_limit_records_per_s_20m': '2 M records/s',
  'files.pcapng_export_records_per_s': '2 M records/s',
  'files.open_records_per_s': '2 M records/s',
  'service.event_loop_max_ms': 'under 50 ms at 20 M records (issue 17)',
  'service.event_loop_max_held_ms': 'under 50 ms: no step of the service holds its loop longer',
  'service.ingest_drops_while_sort_export': 'none',
  'renderer.frame_p95_ms': 'under 20 ms',
  'renderer.frame_p95_ms_sorting': 'under 20 ms with 20 M rows while sorting and capturing',
  'renderer.rows_held': '10 M rows with the same smoothness',
};

const results = existsSync('bench/results.json')
  ? JSON.parse(readFileSync('bench/results.json', 'utf8'))
  : {};
const parts = new Map();
for (const [key, r] of Object.entries(results).sort(([a], [b]) => a.localeCompare(b))) {
  const part = key.split('.')[0];
  if (!parts.has(part)) parts.set(part, []);
  parts.get(part).push([key, r]);
}
const fmt = (v) =>
  typeof v !== 'number'
    ? String(v)
    : Math.abs(v) >= 1000
      ? Math.round(v).toLocaleString('en')
      : String(+v.toPrecision(4));
let md = `# Benchmarks

Produced by \`npm run bench\` (\`scripts/bench.sh\`) on this project's build machine (Debian 12, 2 cores);
regenerated from \`bench/results.json\` by \`scripts/bench-report.mjs\`. Figures on shared machines are
noisy: each comparison is made side by side in one run, and the ratios are what to read.
`;
for (const [part, rows] of parts) {
  md += `\n## ${part}\n\n| metric | value | unit | target | command | note |\n| --- | --- | --- | --- | --- | --- |\n`;
  for (const [key, r] of rows) {
    const note = String(r.note ?? '')
      .replace(/\|/g, '\\|')
      .replace(/\n/g, ' ');
    md += `| \`${key}\` | ${fmt(r.value)} | ${r.unit ?? ''} | ${TARGETS[key] ?? ''} | \`${r.command ?? ''}\` | ${note} |\n`;
  }
}
mkdirSync('docs', { recursive: true });
writeFileSync('docs/BENCHMARKS.md', md);
console.log(`docs/BENCHMARKS.md: ${Object.keys(results).length} figures`);
