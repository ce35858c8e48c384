/**
 * Capture-service benchmark: ingest (Ingestor + Aggregator + View.update, batches of 4096), a display
 * filter over 10 M records, viewport fetches from a filtered and sorted view, and memory per record.
 * Synthetic but shaped like a busy host: echo request/reply pairs with a few thousand peers (both
 * families, both directions, some loss, duplicates and reordering), errors and ND. Results merge into
 * bench/results.json.
 *
 *   npx tsx electron/core/bench/service-bench.ts [records]   (a custom count does not write results)
 *   (npm run bench -- service runs it with --max-old-space-size=8192)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Row } from '../../common/contract.js';
import { Ingestor } from '../ingest.js';
import { Aggregator } from '../stats/aggregator.js';
import { CHUNK_MASK, CHUNK_SHIFT, MISC_F_HAS_ECHO, RecordStore } from '../store.js';
import { View } from '../view.js';
import { BatchBuilder, type SynthFields, addressOf, prng } from './synth.js';

const N = Number(process.argv[2] ?? 10_000_000);
const BATCH = 4096;
const COMMAND = 'npx tsx electron/core/bench/service-bench.ts';
const IFNAMES = ['', 'eth0', 'wlan0', 'lo'];
const EMPTY = new ArrayBuffer(0);

interface Peer {
  addr: Uint8Array;
  family: 4 | 6;
  baseRtt: number;
  seq: number;
  id: number;
}

/** Makes the synthetic capture batch by batch (not timed). */
function* batches(n: number): Generator<ArrayBuffer> {
  const rnd = prng(1);
  const local4 = addressOf('192.168.1.10');
  const local6 = addressOf('2001:db8:ffff::10');
  const peers: Peer[] = [];
  for (let k = 0; k < 3000; k++) {
    const v6 = k % 3 === 2;
    const text = v6
      ? `2001:db8:${(k >> 8).toString(16)}::${(k & 255).toString(16)}`
      : `10.${k % 4}.${(k >> 8) & 255}.${k & 255}`;
    peers.push({ addr: addressOf(text), family: v6 ? 6 : 4, baseRtt: 0.2 + rnd() * 40, seq: 0, id: k });
  }
  const router4 = addressOf('192.168.1.1');
  const router6 = addressOf('fe80::1');
  const b = new BatchBuilder(BATCH * 112);
  let ts = 1_700_000_000e9;
  let made = 0;
  const replies: SynthFields[] = [];
  const add = (r: SynthFields): void => {
    b.add(r);
    made++;
  };
  while (made < n) {
    while (b.count < BATCH && made < n) {
      ts += 5000 + Math.floor(rnd() * 10_000); // ~100 k records/s of capture time
      const due = replies.length > 0 && replies[0]!.tsNs <= ts;
      if (due) {
        add(replies.shift()!);
        continue;
      }
      const x = rnd();
      const p = peers[Math.floor(rnd() * peers.length)]!;
      const local = p.family === 4 ? local4 : local6;
      if (x < 0.9) {
        // We ping a peer (out), or a peer pings us (in).
        const out = x < 0.75;
        const seq = (p.seq = (p.seq + 1) & 0xffff);
        const req: SynthFields = {
          tsNs: ts,
          family: p.family,
          src: out ? local : p.addr,
          dst: out ? p.addr : local,
          type: p.family === 4 ? 8 : 128,
          code: 0,
          id: p.id,
          seq,
          dir: out ? 1 : 0,
          ifindex: 1 + (p.id % 2),
          ttl: 64,
          capLen: 84,
        };
        add(req);
        if (rnd() < 0.99) {
          const rtt = p.baseRtt * (1 + rnd() * rnd()) * 1e6;
          const reply = { ...req, tsNs: ts + rtt, src: req.dst, dst: req.src, type: p.family === 4 ? 0 : 129 };
          reply.dir = out ? 0 : 1;
          reply.ttl = out ? 50 : 64;
          // Keep replies in time order (a few are reordered by the generator's granularity anyway).
          let at = replies.length;
          while (at > 0 && replies[at - 1]!.tsNs > reply.tsNs) at--;
          replies.splice(at, 0, reply);
        }
      } else if (x < 0.96) {
        add({
          tsNs: ts,
          family: p.family,
          src: p.family === 4 ? router4 : router6,
          dst: local,
          type: p.family === 4 ? (x < 0.93 ? 3 : 11) : x < 0.93 ? 1 : 2,
          code: x < 0.93 ? 3 : 0,
          id: null,
          seq: 0,
          dir: 0,
          ifindex: 1,
          ttl: 255,
          capLen: 120,
        });
      } else {
        add({
          tsNs: ts,
          family: 6,
          src: router6,
          dst: local6,
          type: 135 + (x < 0.98 ? 0 : 1),
          code: 0,
          id: null,
          seq: 0,
          dir: x < 0.98 ? 0 : 1,
          ifindex: 2,
          ttl: 255,
          capLen: 72,
        });
      }
    }
    yield b.take();
  }
}

function rowOf(store: RecordStore, ingestor: Ingestor, index: number): Row {
  // The same work as CaptureService.row().
  const DIRS = ['in', 'out', 'fwd', '?'] as const;
  const c = store.chunkOf(index);
  const i = index & CHUNK_MASK;
  const meta = c.meta[i]!;
  const misc = c.misc[i]!;
  const hasEcho = (misc & MISC_F_HAS_ECHO) !== 0;
  const idSeq = c.idSeq[i]!;
  const rtt = c.rtt[i]!;
  return {
    no: index + 1,
    tsNs: ((store.baseNs ?? 0n) + BigInt(c.tsRel[i]!)).toString(),
    dir: DIRS[(meta >>> 16) & 3]!,
    iface: ingestor.interfaces.get((misc >>> 8) & 0xffff),
    family: meta >>> 24 === 6 ? 6 : 4,
    src: ingestor.addresses.text[c.src[i]!]!,
    dst: ingestor.addresses.text[c.dst[i]!]!,
    type: meta & 0xff,
    code: (meta >>> 8) & 0xff,
    id: hasEcho ? idSeq >>> 16 : null,
    seq: hasEcho ? idSeq & 0xffff : null,
    ttl: misc & 0xff,
    len: c.len[i]! & 0xffff,
    rttMs: Number.isNaN(rtt) ? null : Math.round(rtt * 1000) / 1000,
  };
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!;
}

function round(v: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

function main(): void {
  const store = new RecordStore();
  const ingestor = new Ingestor(store, (i) => IFNAMES[i] ?? `if${i}`);
  const env = { addresses: ingestor.addresses, interfaces: ingestor.interfaces };
  const agg = new Aggregator(ingestor.addresses);
  const view = new View(store, env);
  let ingestMs = 0;
  let aggMs = 0;
  let ingestCpuUs = 0;
  let aggCpuUs = 0;
  // Made up front so the generator's garbage is not collected inside the timed part.
  const made = [...batches(N)];
  for (let k = 0; k < made.length; k++) {
    const batch = made[k]!;
    made[k] = EMPTY;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const from = store.length;
    ingestor.ingest(batch);
    const t1 = performance.now();
    const c1 = process.cpuUsage();
    agg.update(store, from, store.length);
    view.update();
    const t2 = performance.now();
    const c2 = process.cpuUsage();
    ingestMs += t1 - t0;
    aggMs += t2 - t1;
    ingestCpuUs += c1.user + c1.system - c0.user - c0.system;
    aggCpuUs += c2.user + c2.system - c1.user - c1.system;
  }
  console.log(`cpu time: Ingestor ${round(ingestCpuUs / 1000)} ms, Aggregator + View ${round(aggCpuUs / 1000)} ms`);
  const n = store.length;
  const ingestRate = (n / (ingestMs + aggMs)) * 1000;
  console.log(
    `ingest: ${n} records in ${round(ingestMs + aggMs)} ms (${round(ingestRate / 1e6, 3)} M/s;` +
      ` Ingestor ${round(ingestMs)} ms, Aggregator + View ${round(aggMs)} ms)`,
  );
  const stats = agg.aggregates({ rate: 0, droppedKernel: 0, droppedRing: 0 });
  console.log(
    `peers: ${agg.peerCount}, e.g. ${JSON.stringify({ ...stats.peers[0], spark: undefined })}`,
  );

  const filterText = 'ip.addr == 10.1.0.0/16 && icmp.type == echo-reply && rtt > 1';
  const filterRuns: number[] = [];
  for (let k = 0; k < 5; k++) filterRuns.push(view.setFilter(filterText).ms);
  const filterMs = median(filterRuns);
  console.log(`filter '${filterText}': ${view.length} matches, median ${round(filterMs)} ms of ${filterRuns.map((m) => round(m)).join(', ')}`);
  const others: string[] = [];
  for (const text of ['icmp', 'ipv6.addr == 2001:db8::/32 || error', 'icmp.seq in {1..100} && !(dir == out)', 'rtt > 30']) {
    const ms = median([0, 1, 2].map(() => view.setFilter(text).ms));
    others.push(`'${text}' ${round(ms)} ms (${view.length})`);
  }
  console.log(`other filters: ${others.join('; ')}`);

  // Viewport: the filtered + sorted view a user scrolls through.
  view.setFilter('icmp.type == echo-reply');
  const sortMs = view.setSort('rtt', true).ms;
  const viewLength = view.length;
  const rnd = prng(99);
  const fetches: number[] = [];
  let sink = 0;
  for (let k = 0; k < 2000; k++) {
    const start = Math.floor(rnd() * Math.max(1, viewLength - 50));
    const t0 = performance.now();
    const rows: Row[] = [];
    for (let p = start; p < Math.min(viewLength, start + 50); p++) rows.push(rowOf(store, ingestor, view.indexAt(p)));
    fetches.push(performance.now() - t0);
    sink += rows.length;
  }
  const p99 = percentile(fetches, 0.99);
  console.log(`viewport: 50 rows at random positions of ${viewLength} (sorted by rtt desc in ${round(sortMs)} ms): p99 ${round(p99, 3)} ms, median ${round(median(fetches), 3)} ms (${sink} rows)`);
  const sortedViewBytes = view.bytesAllocated;
  view.setFilter('');
  const sortAllMs = view.setSort('src', false).ms;
  const sortTimeMs = (view.setSort('time', true), view.setSort('time', false).ms);
  console.log(`sort all ${n}: by src ${round(sortAllMs)} ms, by time ${round(sortTimeMs)} ms`);
  view.setSort(null);

  const storeBytes = store.bytesAllocated;
  const statsBytes = agg.bytesAllocated;
  const bytesPerRecord = (storeBytes + statsBytes + view.bytesAllocated) / n;
  console.log(
    `memory: store ${round(storeBytes / n)} B/record, aggregator ${round(statsBytes / n)} B/record, identity view 0;` +
      ` a sorted+filtered view of ${viewLength} holds ${round(sortedViewBytes / 1e6, 1)} MB`,
  );

  const cpu = `${os.cpus().length} x ${os.cpus()[0]?.model.trim() ?? 'cpu'}, Node ${process.version}`;
  const metrics = {
    'service.ingest_records_per_s': {
      value: Math.round(ingestRate),
      unit: 'records/s',
      command: COMMAND,
      note:
        `${n} synthetic records (3000 peers, echo pairs both directions, 1% loss, errors, ND) in batches of ${BATCH}` +
        ` through Ingestor.ingest + Aggregator.update + View.update; Ingestor ${round(ingestMs)} ms` +
        ` (includes its own EchoMatcher, which the Aggregator makes redundant), Aggregator + View ${round(aggMs)} ms; ${cpu}`,
    },
    'service.filter_ms_10m': {
      value: round(filterMs),
      unit: 'ms',
      command: COMMAND,
      note: `View.setFilter('${filterText}') over ${n} records, median of 5 (compiled scan loop); others: ${others.join('; ')}`,
    },
    'service.viewport_p99_ms_10m': {
      value: round(p99, 3),
      unit: 'ms',
      command: COMMAND,
      note:
        `p99 of 2000 fetches of 50 rows (the Row objects CaptureService.row() builds) at random positions of a view` +
        ` filtered to ${viewLength} echo replies of ${n} and sorted by rtt descending (sort took ${round(sortMs)} ms;` +
        ` sorting all ${n} by src took ${round(sortAllMs)} ms)`,
    },
    'service.bytes_per_record': {
      value: round(bytesPerRecord),
      unit: 'bytes',
      command: COMMAND,
      note:
        `at ${n} records: store columns ${round(storeBytes / n)} B + aggregator ${round(statsBytes / n)} B + identity view 0 B;` +
        ` a filter adds 4 B per match, a sort 12 B per match (${round(sortedViewBytes / viewLength, 1)} B/match measured)`,
    },
  };
  if (process.argv[2] !== undefined) {
    console.log('(a custom record count: bench/results.json left alone)');
    return;
  }
  const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
  const resultsFile = path.join(repoRoot, 'bench', 'results.json');
  fs.mkdirSync(path.dirname(resultsFile), { recursive: true });
  let all: Record<string, unknown> = {};
  try {
    all = JSON.parse(fs.readFileSync(resultsFile, 'utf8')) as Record<string, unknown>;
  } catch {
    // first results in this checkout
  }
  Object.assign(all, metrics);
  fs.writeFileSync(resultsFile, `${JSON.stringify(all, null, 2)}\n`);
  for (const [key, m] of Object.entries(metrics)) console.log(`${key}: ${m.value} ${m.unit}`);
}

main();
