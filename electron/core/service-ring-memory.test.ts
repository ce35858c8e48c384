/**
 * A ring-buffer capture under a flood from random IPv6 sources keeps its memory proportional to the records
 * it holds: the address table reclaims the addresses whose last record left, the per-peer statistics of peers
 * with no records left are folded into an "evicted peers" count, and what still has records keeps its
 * statistics right (a steady ping through the flood, the cumulative top talker, filters on addresses whose
 * ids were reused). Batches go through CaptureService.feed, the path a live capture's batches take.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Aggregates } from '../common/contract.js';
import { BatchBuilder, prng } from './bench/synth.js';
import { addressOf } from './bench/synth.js';
import { CaptureService } from './service.js';

const LIMIT = 131072; // two chunks: between one and two chunks stay live
const TOTAL = 200_000;
/** Phase 1: echo requests from this many random sources (each one a peer); then unsolicited replies. */
const REQUESTERS = 20_000;
const STEP_NS = 100_000;
/** New requesters in a flood (the second test). */
const FLOOD = 80_000; // 100 us apart: 20 s of capture time, the live window 6.5 to 13 s
const T0 = 1_700_000_000e9;
const LOCAL = '2001:db8::1';
const PINGED = '2001:db8::bb';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-ring-mem-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function randomV6(rand: () => number): Uint8Array {
  const a = new Uint8Array(16);
  a[0] = 0x20;
  a[1] = 0x01;
  a[2] = 0x0d;
  a[3] = 0xb8;
  for (let k = 4; k < 16; k++) a[k] = Math.floor(rand() * 256);
  return a;
}

describe('memory with a ring-buffer limit', () => {
  it('stays proportional to the records held under a flood from random IPv6 sources', async () => {
    const svc = new CaptureService({
      native: new Error('no native here'),
      version: 'test',
      spoolDir: join(tmp, 'spool'),
    });
    const rand = prng(15);
    const local = addressOf(LOCAL);
    const pinged = addressOf(PINGED);
    const builder = new BatchBuilder();
    let pings = 0;
    let requesters = 0;
    const sources: string[] = [];
    const record = (k: number): void => {
      const tsNs = T0 + k * STEP_NS;
      const common = { tsNs, family: 6 as const, code: 0, ifindex: 1, ttl: 64, capLen: 48 };
      if (k % 1000 === 0) {
        // We ping PINGED every 0.1 s of capture time; it answers in the next slot.
        builder.add({ ...common, src: local, dst: pinged, type: 128, id: 77, seq: k / 1000, dir: 1 });
        pings++;
      } else if (k % 1000 === 1) {
        builder.add({ ...common, src: pinged, dst: local, type: 129, id: 77, seq: (k - 1) / 1000, dir: 0 });
      } else if (k < REQUESTERS + 20) {
        builder.add({
          ...common,
          src: randomV6(rand),
          dst: local,
          type: 128,
          id: 9,
          seq: k & 0xffff,
          dir: 0,
        });
        requesters++;
      } else {
        const src = randomV6(rand);
        // Replies nobody asked for (backscatter of someone else's spoofed pings): no peer for them.
        builder.add({ ...common, src, dst: local, type: 129, id: 9, seq: k & 0xffff, dir: 0 });
        if (k >= TOTAL - 50) sources.push(Array.from(src).join(','));
      }
    };
    try {
      svc.startFeed({ limit: { records: LIMIT } });
      // A filter set before the flood, on the flood's first source: its record leaves the ring and its id
      // is reused by other addresses, which must not match.
      const first = Buffer.from(randomV6(prng(15)));
      const firstText =
        first.readUInt16BE(0).toString(16) +
        ':db8:' +
        Array.from({ length: 6 }, (_, k) => first.readUInt16BE(4 + 2 * k).toString(16)).join(':');
      await svc.handle('view.setFilter', { filter: `ipv6.src == ${firstText}` }, 'ipc');
      const addresses = svc.ingestor.addresses;
      let tableAtHalf = 0;
      let statsBytesAtHalf = 0;
      let countersAtHalf = 0;
      let maxTable = 0;
      for (let k = 0; k < TOTAL; k++) {
        record(k);
        if (builder.count === 4096 || k === TOTAL - 1) {
          svc.feed(builder.take());
          maxTable = Math.max(maxTable, addresses.size);
          // Every live record names at most one address no other live record names (its random source).
          expect(addresses.size).toBeLessThanOrEqual(svc.store.live + 64);
        }
        if (k === 170_000) {
          tableAtHalf = addresses.text.length;
          statsBytesAtHalf = svc.statistics.bytesAllocated;
          countersAtHalf = svc.statistics.addressCounterBytes;
        }
      }
      const store = svc.store;
      expect(store.firstIndex).toBeGreaterThan(0);
      expect(svc.counts().view).toBe(0);
      expect(store.live).toBeLessThanOrEqual(LIMIT);
      // The table's arrays stop growing once the ring is full: ids are reused.
      expect(addresses.text.length).toBeLessThanOrEqual(LIMIT + 4096 + 64);
      expect(addresses.text.length).toBeLessThanOrEqual(tableAtHalf + 4096);
      // The statistics stop growing too. Their per-address counters are sized (doubling) by the highest address
      // id, which the table bounds (above): where the last slices ended decides whether the ids passed 2^17 before
      // or after k = 170,000, so they are held to that bound, and the rest (the peers) to what it was at k.
      const statistics = svc.statistics;
      expect(statistics.addressCounterBytes).toBeLessThanOrEqual(
        16 * 2 ** Math.ceil(Math.log2(LIMIT + 4096 + 64)),
      );
      expect(statistics.bytesAllocated - statistics.addressCounterBytes).toBeLessThanOrEqual(
        (statsBytesAtHalf - countersAtHalf) * 1.1,
      );
      expect(maxTable).toBeLessThanOrEqual(LIMIT + 4096 + 64);

      const stats = (await svc.handle('stats.get', {}, 'ipc')) as Aggregates;
      expect(stats.total).toBe(TOTAL);
      // The flood's requesters left no records: folded, not kept; the steady ping is the one peer left.
      expect(stats.peers.map((p) => p.peer)).toEqual([PINGED]);
      expect(svc.statistics.peerCount).toBe(1);
      expect(requesters).toBeGreaterThan(REQUESTERS * 0.99);
      expect(stats.evictedPeers).toMatchObject({ peers: requesters, requests: requesters, replies: 0 });
      expect(stats.peers[0]).toMatchObject({
        local: LOCAL,
        requests: pings,
        replies: pings,
        lost: 0,
        duplicates: 0,
        late: 0,
        rttMinMs: 0.1,
        rttMaxMs: 0.1,
      });
      // Cumulative counts of an address that always had records: every record named LOCAL.
      expect(stats.topTalkers[0]).toMatchObject({ address: LOCAL, packets: TOTAL });

      // Filters on addresses whose ids were reused see the addresses the records hold now.
      await svc.handle('view.setFilter', { filter: '' }, 'ipc');
      const last = sources.at(-1)!.split(',').map(Number);
      const lastText = svc.rows(svc.counts().view - 1, 1).rows[0]!.src;
      expect(addressOf(lastText)).toEqual(Uint8Array.from(last));
      await svc.handle('view.setFilter', { filter: `ipv6.src == ${lastText}` }, 'ipc');
      expect(svc.counts().view).toBe(1);
      expect(svc.rows(0, 5).rows.map((r) => r.no)).toEqual([TOTAL]);
      await svc.handle('view.setFilter', { filter: `ipv6.src == ${PINGED}` }, 'ipc');
      const replies = svc.rows(0, 1000).rows;
      let liveReplies = 0;
      for (let k = store.firstIndex; k < TOTAL; k++) if (k % 1000 === 1) liveReplies++;
      expect(replies.length).toBe(liveReplies);
      expect(replies.every((r) => r.src === PINGED && r.type === 129 && r.rttMs === 0.1)).toBe(true);
      // Sorting by source: the live records' own addresses, in address order.
      await svc.handle('view.setFilter', { filter: '' }, 'ipc');
      await svc.handle('view.setSort', { column: 'src' }, 'ipc');
      const sorted = svc.rows(0, 200).rows.map((r) => addressOf(r.src));
      for (let k = 1; k < sorted.length; k++)
        expect(Buffer.compare(Buffer.from(sorted[k - 1]!), Buffer.from(sorted[k]!))).toBeLessThanOrEqual(0);
    } finally {
      svc.close();
    }
  });

  it('keeps echo matching bounded under a flood of new requesters faster than requests are forgotten', async () => {
    // 80,000 requesters in 0.8 s of capture time, each a new flow, while requests are remembered 4 s: the
    // flows' slots must not grow for those 4 s (1.5 KB each: 200,000 requesters in 2 s took 400 MB), and a
    // steady ping stays matched.
    const svc = new CaptureService({
      native: new Error('no native here'),
      version: 'test',
      spoolDir: join(tmp, 'spool-flood'),
    });
    const rand = prng(7);
    const local = addressOf(LOCAL);
    const pinged = addressOf(PINGED);
    const builder = new BatchBuilder();
    let pings = 0;
    let requesters = 0;
    let most = 0;
    try {
      svc.startFeed({ limit: { records: LIMIT } });
      for (let k = 0; k < FLOOD; k++) {
        const common = {
          tsNs: T0 + k * 10_000,
          family: 6 as const,
          code: 0,
          ifindex: 1,
          ttl: 64,
          capLen: 48,
        };
        if (k % 1000 === 0) {
          builder.add({ ...common, src: local, dst: pinged, type: 128, id: 77, seq: k / 1000, dir: 1 });
          pings++;
        } else if (k % 1000 === 5) {
          builder.add({ ...common, src: pinged, dst: local, type: 129, id: 77, seq: (k - 5) / 1000, dir: 0 });
        } else {
          builder.add({
            ...common,
            src: randomV6(rand),
            dst: local,
            type: 128,
            id: 9,
            seq: k & 0xffff,
            dir: 0,
          });
          requesters++;
        }
        if (builder.count === 4096 || k === FLOOD - 1) {
          svc.feed(builder.take());
          most = Math.max(most, svc.ingestor.echo.bytesAllocated);
        }
      }
      // 10,000 flows (maxPeers) of 1.5 KB and the request ring: tens of MB, not hundreds.
      expect(most).toBeLessThan(48e6);
      svc.ingestor.echo.finish();
      const stats = (await svc.handle('stats.get', {}, 'ipc')) as Aggregates;
      expect(stats.total).toBe(FLOOD);
      const ping = stats.peers.find((p) => p.peer === PINGED);
      expect(ping).toMatchObject({
        requests: pings,
        replies: pings,
        lost: 0,
        rttMinMs: 0.05,
        rttMaxMs: 0.05,
      });
      // Every flood requester is a peer (listed or folded), and none was answered.
      expect((stats.evictedPeers?.peers ?? 0) + svc.statistics.peerCount).toBe(requesters + 1);
      expect(stats.peers.every((p) => p.peer === PINGED || p.replies === 0)).toBe(true);
      expect(stats.evictedPeers?.replies ?? 0).toBe(0);
    } finally {
      svc.close();
    }
  });
});
