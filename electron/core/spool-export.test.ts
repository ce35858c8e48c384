/**
 * The pcapng export from the spool copies the spool's blocks: the file must be byte for byte what the row
 * exporter writes for the same records, in capture order and in any other order (a sorted view), across
 * spool segments and interfaces, and tshark must read it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchBuilder, addressOf } from './bench/synth.js';
import { exportRecords } from './files/index.js';
import { Ingestor } from './ingest.js';
import { exportSpoolPcapng, spoolExportRows } from './spool-export.js';
import { Spool } from './spool-store.js';
import { CHUNK_SIZE, RecordStore } from './store.js';

const NAMES = ['', 'lo', 'eth0', 'veth7'];
const N = CHUNK_SIZE + 5000; // two segments

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-spool-copy-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('pcapng export from the spool', () => {
  it('writes the same bytes as the row exporter, in any order, across segments and interfaces', async () => {
    const store = new RecordStore();
    const ifname = (i: number): string => NAMES[i] ?? `if${i}`;
    const ingestor = new Ingestor(store, ifname);
    const spool = Spool.create(join(tmp, 'spool'), 'test', 256);
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
        tsNs: 1.7e18 + k * 1e5,
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
    expect(spool.paths).toHaveLength(2);
    const orders: [string, number[]][] = [
      ['capture order', Array.from({ length: N }, (_, k) => k)],
      ['a sorted view', Array.from({ length: N }, (_, k) => (k * 7919) % N)],
      ['a few selected', [N - 1, 3, CHUNK_SIZE, 4]],
    ];
    try {
      for (const [what, order] of orders) {
        const copy = join(tmp, 'copy.pcapng');
        const rows = join(tmp, 'rows.pcapng');
        const result = await exportSpoolPcapng(store, ingestor, spool, order, { path: copy });
        await exportRecords(spoolExportRows(store, ingestor, spool, order), { format: 'pcapng', path: rows });
        expect(result.records, what).toBe(order.length);
        expect(readFileSync(copy).equals(readFileSync(rows)), what).toBe(true);
      }
      const copy = join(tmp, 'copy.pcapng');
      await exportSpoolPcapng(store, ingestor, spool, orders[0]![1], { path: copy });
      const tshark = spawnSync('tshark', ['-n', '-r', copy, '-T', 'fields', '-e', 'frame.interface_name'], {
        encoding: 'utf8',
        maxBuffer: 1 << 26,
      });
      if (tshark.error === undefined) {
        const names = tshark.stdout.trim().split('\n');
        expect(names).toHaveLength(N);
        expect(names.slice(0, 4)).toEqual(['lo', 'eth0', 'veth7', 'lo']);
      }
    } finally {
      spool.close();
    }
  });
});
