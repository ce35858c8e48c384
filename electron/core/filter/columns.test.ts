import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { COMMON_FILTERS } from '../bench/common-filters.js';
import { fillPacketBytes, realisticCapture } from '../bench/synth.js';
import { storeFieldReader } from '../fields/store-fields.js';
import { Ingestor } from '../ingest.js';
import { Spool } from '../spool-store.js';
import { Aggregator } from '../stats/aggregator.js';
import { CHUNK_SIZE, RecordStore } from '../store.js';
import { type FilterEnv, compileFilter } from './compile.js';

/**
 * The fast paths the benchmark times (quoted-header columns for ICMP errors, echo matching from the
 * rtt/no-response columns, branch-free scans) select exactly what the general path selects: every
 * field decoded from the record's bytes read back from the spool, as the service did before them.
 * (The general path itself is held to tshark -Y by wireshark.test.ts and service-filter.test.ts.)
 */
describe('columnar filters select what reading every record from the spool selects', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'icmpcap-columns-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const store = new RecordStore();
  const ifname = (i: number): string => ['', 'eth0', 'wlan0'][i] ?? `if${i}`;
  const ingestor = new Ingestor(store, ifname);
  const agg = new Aggregator(ingestor);
  const spool = Spool.create(dir, 'icmpcap test', 256);
  for (const batch of realisticCapture(CHUNK_SIZE + 5000, 4096)) {
    fillPacketBytes(batch);
    const from = store.length;
    ingestor.ingest(batch, spool.append(batch, 4096, ifname, from));
    agg.update(store, from, store.length);
  }
  ingestor.echo.finish();
  spool.sync();
  const reader = storeFieldReader(
    store,
    (offset) => spool.read(offset),
    (id) => ingestor.interfaces.get(id),
  );
  const base = { addresses: ingestor.addresses, interfaces: ingestor.interfaces, fields: reader };
  const fast: FilterEnv = { ...base, quoted: ingestor.quoted, matchedColumns: true };
  // The general path: the columns only for what is outside every quoted datagram; everything else
  // from the bytes (resptime and no_resp are read through store-fields, from the same matcher).
  const general: FilterEnv = base;

  function select(text: string, env: FilterEnv): number[] {
    const f = compileFilter(text, env)!;
    const out = new Uint32Array(CHUNK_SIZE);
    const got: number[] = [];
    for (let c = 0; c * CHUNK_SIZE < store.length; c++) {
      const n = f.scan(
        store.chunks[c]!,
        0,
        Math.min(CHUNK_SIZE, store.length - c * CHUNK_SIZE),
        out,
        0,
        c * CHUNK_SIZE,
      );
      for (let k = 0; k < n; k++) got.push(out[k]!);
    }
    return got;
  }

  it('the capture has what the filters look for: errors quoting echo requests, replies, lost requests', () => {
    expect(select('icmp.type == 3 && icmp.type == 8', fast).length).toBeGreaterThan(100);
    expect(select('icmpv6.type == 1 && icmpv6.type == 128', fast).length).toBeGreaterThan(100);
    expect(select('icmp.resp_not_found', fast).length).toBeGreaterThan(10);
    expect(select('icmpv6.resptime > 10', fast).length).toBeGreaterThan(100);
  });

  const extra = [
    'icmp.type == 3 && ip.dst == 10.0.0.0/8',
    'ip.dst != 192.168.1.10',
    'ip.addr === 192.168.1.1',
    'icmp.type in {3, 8} && !(icmp.seq in {1..1000})',
    'ip.dst not in {10.0.0.0/8}',
    'icmpv6.echo.identifier == 0 && icmpv6.type == 1',
    'ipv6.hlim == 1',
    'icmp.ident',
    'icmp.no_resp',
    'icmpv6.no_resp || icmpv6.resptime >= 20',
    'icmp.code != 3 xor ip',
  ];
  for (const text of [...COMMON_FILTERS, ...extra]) {
    it(text, () => {
      const want = select(text, general);
      expect(select(text, fast)).toEqual(want);
    });
  }
});
