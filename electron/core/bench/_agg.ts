import { Ingestor } from '../ingest.js';
import { Aggregator } from '../stats/aggregator.js';
import { RecordStore } from '../store.js';
import { View } from '../view.js';
// reuse the bench generator by importing the module would run main; copy minimal: use randomCapture-like heavy echo
import { BatchBuilder, addressOf, prng } from './synth.js';
const rnd = prng(1);
const store = new RecordStore();
const ing = new Ingestor(store, (i) => 'eth' + i);
const peers = Array.from({ length: 3000 }, (_, k) => addressOf(`10.${k % 4}.${(k >> 8) & 255}.${k & 255}`));
const local = addressOf('192.168.1.10');
const b = new BatchBuilder();
let ts = 1.7e18; const seqs = new Uint16Array(3000);
for (let n = 0; n < 1_000_000; n += 2) {
  ts += 10000; const k = Math.floor(rnd() * 3000); const seq = ++seqs[k]!;
  b.add({ tsNs: ts, family: 4, src: local, dst: peers[k]!, type: 8, code: 0, id: k, seq, dir: 1, ifindex: 1, ttl: 64, capLen: 84 });
  b.add({ tsNs: ts + 5000, family: 4, src: peers[k]!, dst: local, type: 0, code: 0, id: k, seq, dir: 0, ifindex: 1, ttl: 64, capLen: 84 });
  if (b.count >= 4096) ing.ingest(b.take());
}
ing.ingest(b.take());
for (let rep = 0; rep < 5; rep++) {
  const agg = new Aggregator(ing.addresses);
  const c0 = process.cpuUsage(); const t0 = performance.now();
  for (let f = 0; f < store.length; f += 4096) agg.update(store, f, Math.min(store.length, f + 4096));
  const c1 = process.cpuUsage();
  console.log('agg', (performance.now() - t0).toFixed(0), 'ms wall', ((c1.user + c1.system - c0.user - c0.system) / 1000).toFixed(0), 'ms cpu', agg.peerCount);
}
const view = new View(store, { addresses: ing.addresses, interfaces: ing.interfaces });
for (let rep = 0; rep < 3; rep++) { const t0 = performance.now(); view.setFilter('ip.addr == 10.1.0.0/16 && icmp.type == echo-reply && rtt > 0.001'); console.log('filter', (performance.now() - t0).toFixed(1), view.length); }
