import { describe, expect, it } from 'vitest';
import { messageKind } from '../../common/icmp.js';
import { BatchBuilder, IFNAMES, addressOf, randomCapture } from '../bench/synth.js';
import { type EchoMatchOptions, REPLY_DUPLICATE, REPLY_LATE, REPLY_TIMELY } from '../echo-match.js';
import { Ingestor } from '../ingest.js';
import { CHUNK_MASK, CHUNK_SHIFT, MISC_F_NO_RESPONSE, RecordStore } from '../store.js';
import {
  Aggregator,
  type AggregatorOptions,
  FIRST_OUTCOMES,
  OUTCOMES,
  RTT_BUCKETS_S,
  rttBucket,
} from './aggregator.js';

const T0 = 1_700_000_000e9;
const MS = 1e6;

interface Ev {
  ms: number;
  type: number;
  src: string;
  dst: string;
  id?: number;
  seq?: number;
  dir?: number;
}

function addEvent(b: BatchBuilder, e: Ev): void {
  b.add({
    tsNs: T0 + e.ms * MS,
    family: e.src.includes(':') ? 6 : 4,
    src: addressOf(e.src),
    dst: addressOf(e.dst),
    type: e.type,
    code: 0,
    id: e.id ?? null,
    seq: e.seq ?? 0,
    dir: e.dir ?? 3,
    ifindex: 1,
    ttl: 64,
    capLen: 64,
  });
}

function batchOf(events: Ev[]): ArrayBuffer {
  const b = new BatchBuilder();
  for (const e of events) addEvent(b, e);
  return b.take();
}

function run(events: Ev[], options: AggregatorOptions & EchoMatchOptions = {}, batchSize = 3) {
  const store = new RecordStore();
  const ingestor = new Ingestor(store, (i) => IFNAMES[i] ?? `if${i}`, options);
  const agg = new Aggregator(ingestor, options);
  const b = new BatchBuilder();
  const flush = (): void => {
    if (b.count === 0) return;
    const from = store.length;
    ingestor.ingest(b.take());
    agg.update(store, from, store.length);
  };
  for (const e of events) {
    addEvent(b, e);
    if (b.count === batchSize) flush();
  }
  flush();
  const rtts: (number | null)[] = [];
  for (let r = 0; r < store.length; r++) {
    const v = store.chunks[r >>> CHUNK_SHIFT]!.rtt[r & CHUNK_MASK]!;
    rtts.push(Number.isNaN(v) ? null : Math.round(v * 1000) / 1000);
  }
  return { agg, echo: ingestor.echo, store, rtts };
}

/** Feeds `events` in batches of `batchSize`, noting how much the echo matcher grew in its largest step. */
function steps(events: Ev[], batchSize: number) {
  const store = new RecordStore();
  const ingestor = new Ingestor(store, (i) => IFNAMES[i] ?? `if${i}`);
  const agg = new Aggregator(ingestor);
  const { echo } = ingestor;
  let before = echo.bytesAllocated;
  let largestStep = 0;
  for (let k = 0; k < events.length; k += batchSize) {
    const from = store.length;
    ingestor.ingest(batchOf(events.slice(k, k + batchSize)));
    agg.update(store, from, store.length);
    const now = echo.bytesAllocated;
    largestStep = Math.max(largestStep, now - before);
    before = now;
  }
  const rtts: (number | null)[] = [];
  for (let r = 0; r < store.length; r++) {
    const v = store.chunks[r >>> CHUNK_SHIFT]!.rtt[r & CHUNK_MASK]!;
    rtts.push(Number.isNaN(v) ? null : v);
  }
  return { echo, agg, largestStep, rtts };
}

const req = (ms: number, src: string, dst: string, seq: number, dir = 1, id = 7): Ev => ({
  ms,
  type: src.includes(':') ? 128 : 8,
  src,
  dst,
  id,
  seq,
  dir,
});
const rep = (ms: number, src: string, dst: string, seq: number, dir = 0, id = 7): Ev => ({
  ms,
  type: src.includes(':') ? 129 : 0,
  src,
  dst,
  id,
  seq,
  dir,
});
/** An unrelated record that moves capture time forward. */
const tick = (ms: number): Ev => ({ ms, type: 3, src: '192.0.2.1', dst: '192.0.2.2' });

describe('echo statistics', () => {
  it('counts replies, loss, duplicates and late replies of a peer we ping (IPv4, role out)', () => {
    const L = '10.0.0.1';
    const P = '8.8.8.8';
    const { agg, rtts } = run([
      req(0, L, P, 1),
      rep(10, P, L, 1),
      req(1000, L, P, 2),
      rep(1030, P, L, 2),
      req(2000, L, P, 3), // never answered: lost
      req(3000, L, P, 4),
      rep(3020, P, L, 4),
      rep(3025, P, L, 4), // duplicate
      req(4000, L, P, 5),
      rep(6500, P, L, 5), // 2.5 s: late, still a reply with its RTT (as tshark -z icmp,srt counts it)
      tick(10_000),
    ]);
    const [peer, ...others] = agg.peerList();
    expect(others).toEqual([]);
    expect(peer).toMatchObject({
      peer: P,
      local: L,
      family: 4,
      role: 'out',
      requests: 5,
      replies: 4,
      lost: 1,
      loss: 0.2,
      duplicates: 1,
      late: 1,
      rttMinMs: 10,
      rttAvgMs: 640, // (10 + 30 + 20 + 2500) / 4
      rttMaxMs: 2500,
      rttP95Ms: 2500, // nearest rank: ceil(0.95 * 4) = 4th of [10, 20, 30, 2500]
      jitterMs: 836.667, // (|30 - 10| + |20 - 30| + |2500 - 20|) / 3
      spark: [10, 30, 20, 2500],
      lastSeenNs: String(BigInt(T0) + 6500n * 1_000_000n),
    });
    // Every matched reply gets its RTT in the store, duplicates and late ones too.
    expect(rtts).toEqual([null, 10, null, 30, null, null, 20, 25, null, 2500, null]);
  });

  it('counts replies to a broadcast request per responder, late ones with their RTT', () => {
    const L = '10.0.0.1';
    const B = '10.0.0.255';
    const [R1, R2] = ['10.0.0.2', '10.0.0.3'];
    const { agg, rtts } = run([
      req(0, L, B, 1),
      rep(1, R1, L, 1),
      rep(2, R2, L, 1),
      req(1000, L, B, 2),
      rep(1001, R1, L, 2),
      rep(1001, R1, L, 2), // a duplicate of R1's own reply
      req(2000, L, B, 3),
      rep(2002, R1, L, 3),
      rep(3500, R2, L, 3), // 1.5 s: late, a reply with its RTT
      req(4000, L, B, 4), // R2 no longer answers: lost for R2 only
      rep(4001, R1, L, 4),
      tick(10_000),
    ]);
    const byPeer = Object.fromEntries(agg.peerList().map((p) => [p.peer, p]));
    expect(Object.keys(byPeer).sort()).toEqual([R1, R2]);
    expect(byPeer[R1]).toMatchObject({
      local: L,
      role: 'out',
      requests: 4,
      replies: 4,
      lost: 0,
      duplicates: 1,
    });
    expect(byPeer[R1]!.rttMaxMs).toBe(2);
    // R2 answered from the first request on: 4 requests, the second and fourth unanswered.
    expect(byPeer[R2]).toMatchObject({
      requests: 4,
      replies: 2,
      lost: 2,
      late: 1,
      duplicates: 0,
      rttMaxMs: 1500,
    });
    expect(rtts.filter((r) => r !== null)).toEqual([1, 2, 1, 1, 2, 1500, 1]);
  });

  it('matches reordered replies of a peer that pings us (IPv6, role in)', () => {
    const P = '2001:db8::5';
    const L = 'fe80::1';
    const { agg, rtts } = run([
      req(0, P, L, 1, 0),
      req(100, P, L, 2, 0),
      req(200, P, L, 3, 0),
      rep(250, L, P, 2, 1),
      rep(260, L, P, 1, 1),
      rep(300, L, P, 3, 1),
      tick(5000),
    ]);
    const [peer] = agg.peerList();
    expect(peer).toMatchObject({
      peer: P,
      local: L,
      family: 6,
      role: 'in',
      requests: 3,
      replies: 3,
      lost: 0,
      loss: 0,
      duplicates: 0,
      late: 0,
      rttMinMs: 100,
      rttAvgMs: 170,
      rttMaxMs: 260,
      rttP95Ms: 260,
      jitterMs: 135, // replies in order 150, 260, 100: (110 + 160) / 2
    });
    expect(rtts).toEqual([null, null, null, 150, 260, 100, null]);
  });

  it('takes the responder as the peer when the direction is unknown', () => {
    const { agg } = run([req(0, '10.0.0.9', '10.0.0.10', 1, 3), rep(5, '10.0.0.10', '10.0.0.9', 1, 3)]);
    expect(agg.peerList()[0]).toMatchObject({
      peer: '10.0.0.10',
      local: '10.0.0.9',
      role: 'unknown',
      replies: 1,
    });
  });

  it('keeps requester/responder pairs apart, and ids and sequences apart', () => {
    const { agg, rtts } = run([
      req(0, '10.0.0.1', '10.0.0.2', 1, 1, 1),
      req(1, '10.0.0.1', '10.0.0.2', 1, 1, 2),
      req(2, '10.0.0.3', '10.0.0.2', 1, 1, 1),
      rep(10, '10.0.0.2', '10.0.0.1', 1, 0, 2), // answers id 2 only
      rep(11, '10.0.0.2', '10.0.0.3', 1, 0, 9), // wrong id: unmatched
      rep(12, '10.0.0.2', '10.0.0.4', 1, 0, 1), // nobody asked
    ]);
    expect(rtts).toEqual([null, null, null, 9, null, null]);
    const peers = agg.peerList();
    expect(peers.map((p) => [p.local, p.peer, p.requests, p.replies])).toEqual([
      ['10.0.0.1', '10.0.0.2', 2, 1],
      ['10.0.0.3', '10.0.0.2', 1, 0],
    ]);
  });

  it('counts a request lost only once its timeout has passed at the newest record', () => {
    const events = [req(0, '10.0.0.1', '10.0.0.2', 1), tick(1900)];
    let [peer] = run(events).agg.peerList();
    expect(peer).toMatchObject({ requests: 1, lost: 0, loss: 0 });
    [peer] = run([...events, tick(2100)]).agg.peerList();
    expect(peer).toMatchObject({ requests: 1, lost: 1, loss: 1 });
    // A custom timeout.
    [peer] = run(events, { echoTimeoutNs: 1e9 }).agg.peerList();
    expect(peer).toMatchObject({ lost: 1 });
  });

  it('matches many outstanding requests answered in reverse, across ring growth', () => {
    const events: Ev[] = [];
    const peers = ['10.0.0.2', '10.0.0.3', '2001:db8::9'];
    const count = 70_000;
    for (let k = 0; k < count; k++) {
      const peer = peers[k % 3]!;
      const local = peer.includes(':') ? 'fe80::1' : '10.0.0.1';
      events.push(req(k / 100, local, peer, Math.floor(k / 3) & 0xffff, 1, 1 + (k % 5)));
    }
    for (let k = count - 1; k >= 0; k--) {
      const peer = peers[k % 3]!;
      const local = peer.includes(':') ? 'fe80::1' : '10.0.0.1';
      events.push(rep(1500 - k / 100, peer, local, Math.floor(k / 3) & 0xffff, 0, 1 + (k % 5)));
    }
    events.push(tick(5000));
    const { agg, rtts } = run(events, {}, 4096);
    const stats = agg.peerList();
    expect(stats.map((p) => p.requests).reduce((a, b) => a + b)).toBe(count);
    expect(stats.map((p) => p.replies).reduce((a, b) => a + b)).toBe(count);
    expect(stats.map((p) => p.lost + p.duplicates).reduce((a, b) => a + b)).toBe(0);
    // RTT 1500 - k / 50 ms: the first 25000 requests' replies took longer than 1 s (late, still replies).
    expect(stats.map((p) => p.late).reduce((a, b) => a + b)).toBe(25_000);
    expect(rtts.slice(count, 2 * count).every((r) => r !== null)).toBe(true);
    expect(rtts[count]).toBeCloseTo(1500 - 2 * ((count - 1) / 100), 0);
  });

  it('matches replies of hundreds of flows that use the same id and sequence numbers, before and after clear()', () => {
    // Every flow pings with id 7, seq 1..3, and its own RTT: a reply matched to another flow's request (flows
    // sharing a slot of the recent-request cache) would get the wrong RTT.
    const flows = 600;
    const peer = (f: number): string => `10.1.${f >> 7}.${(f & 127) + 1}`;
    const rttOf = (f: number): number => 1 + (f % 97);
    const events: Ev[] = [];
    for (let seq = 1; seq <= 3; seq++) {
      const at = (seq - 1) * 1000;
      for (let f = 0; f < flows; f++) events.push(req(at + f / 1000, '10.0.0.1', peer(f), seq));
      // The first request of every fifth flow is seen twice (leaving and arriving): one request.
      if (seq === 1)
        for (let f = 0; f < flows; f += 5) events.push(req(f / 1000 + 0.5, '10.0.0.1', peer(f), 1));
      const replies = [...Array(flows).keys()].sort((a, b) => rttOf(a) - rttOf(b));
      for (const f of replies) events.push(rep(at + f / 1000 + rttOf(f), peer(f), '10.0.0.1', seq));
      // Every seventh flow's last reply comes twice: a duplicate.
      if (seq === 3) for (let f = 0; f < flows; f += 7) events.push(rep(at + 200, peer(f), '10.0.0.1', 3));
    }
    events.push(tick(6000));
    const check = (agg: Aggregator): void => {
      const stats = new Map(agg.peerList(flows).map((p) => [p.peer, p]));
      expect(stats.size).toBe(flows);
      for (let f = 0; f < flows; f++) {
        const p = stats.get(peer(f))!;
        const rtt = rttOf(f);
        expect([p.requests, p.replies, p.lost, p.duplicates]).toEqual([3, 3, 0, f % 7 === 0 ? 1 : 0]);
        expect([p.rttMinMs, p.rttMaxMs]).toEqual([rtt, rtt]);
      }
    };
    const { agg, echo, store } = run(events, {}, 512);
    check(agg);
    // A new capture: the same flows again, from an empty matcher.
    echo.clear();
    store.clear();
    const again = run(events, {}, 512);
    check(again.agg);
  });

  it('grows its per-flow caches a little at a time as flows come (no step copies megabytes)', () => {
    // A flow's recent requests take 1.5 KB; growing them by doubling made the turn that met the 4097th
    // flow allocate, fill and copy 12.6 MB at once.
    const events: Ev[] = [];
    for (let f = 0; f < 4097; f++)
      events.push(req(f / 100, '10.0.0.1', `10.2.${f >> 7}.${(f & 127) + 1}`, 1));
    const { echo, largestStep } = steps(events, 1);
    expect(echo.flowCount).toBe(4097);
    expect(largestStep).toBeLessThan(1 << 20);
  });

  it('remembers 200 000 waiting requests without a step that copies megabytes, and lets their memory go', () => {
    // Doubling the request ring copied every waiting request in one turn (at 128 Ki waiting, 2.7 MB; at
    // 512 Ki, 11 MB), and the ring never shrank. 3200 peers, 62 or 63 requests waiting each: each flow's
    // recent cache holds them, so the ring is what grows (across ring growth, the reverse test above goes
    // through the hash table).
    const count = 200_000;
    const peers = 3200;
    const peer = (k: number): string => `10.3.${(k % peers) >> 7}.${((k % peers) & 127) + 1}`;
    const seq = (k: number): number => Math.floor(k / peers);
    const events: Ev[] = [];
    for (let k = 0; k < count; k++) events.push(req(k / 100, '10.0.0.1', peer(k), seq(k)));
    // Answered newest first, each after 3 ms plus a little more per peer.
    for (let k = count - 1; k >= 0; k--)
      events.push(rep(k / 100 + 3 + (k % 100) / 10, peer(k), '10.0.0.1', seq(k)));
    const { echo, agg, largestStep, rtts } = steps(events, 256);
    expect(largestStep).toBeLessThan(1 << 20);
    const stats = agg.peerList(peers);
    expect(stats.map((p) => p.replies).reduce((a, b) => a + b)).toBe(count);
    expect(stats.map((p) => p.duplicates + p.lost).reduce((a, b) => a + b)).toBe(0);
    for (const k of [0, 1, 16_383, 16_384, 77_777, count - 1])
      expect(rtts[2 * count - 1 - k]).toBeCloseTo(3 + (k % 100) / 10, 3);
    const held = echo.bytesAllocated;
    // Long after: every request is forgotten, and the ring lets its blocks go.
    const later = steps([...events, tick(3000 + 10_000)], 4096).echo;
    expect(later.remembered).toBe(0);
    expect(held - later.bytesAllocated).toBeGreaterThan(3_000_000);
  });

  it('keeps the requests the ring wrapped round into a block whose old requests were all forgotten', () => {
    // A ring of two blocks (32 Ki requests): 32000 requests, 2000 more four seconds later (the ring wraps into
    // its first block), then time moves on until the first block's old requests are forgotten: the newest ones
    // live in that block too, and their replies must still find them.
    const events: Ev[] = [];
    for (let n = 0; n < 32_000; n++) events.push(req(n / 10, '10.0.0.1', '10.4.0.1', n, 1, 2));
    for (let n = 32_000; n < 34_000; n++)
      events.push(req(4000 + (n - 32_000) / 2, '10.0.0.1', '10.4.0.1', n, 1, 2));
    events.push(tick(5700));
    for (let n = 33_000; n < 34_000; n++) events.push(rep(5701, '10.4.0.1', '10.0.0.1', n, 0, 2));
    const { agg, rtts } = run(events, { maxOutstanding: 1 << 15 }, 1);
    const [peer] = agg.peerList();
    expect(peer!.replies).toBe(1000);
    expect(rtts.slice(-1000)).toEqual([...Array(1000).keys()].map((j) => 5701 - (4500 + j / 2)));
  });

  it('keeps a peer that never answered small: a flood from new sources makes no RTT arrays per packet', () => {
    // A spoofed-source ping flood: every request from a new address, none answered. What one more such peer
    // costs: the aggregator's bytes at 4000 peers less those at 2000, per peer.
    const flood = (peers: number): Ev[] => {
      const events: Ev[] = [];
      for (let k = 0; k < peers; k++)
        events.push(req(k / 10, `10.5.${k >> 7}.${(k & 127) + 1}`, '10.0.0.1', 1, 0));
      return events;
    };
    const small = run(flood(2000), {}, 256).agg;
    // One of them is answered after all: it gets its RTT, spark and series as any peer does.
    const { agg } = run([...flood(4000), rep(450, '10.0.0.1', '10.5.0.1', 1, 1)], {}, 256);
    expect(agg.peerCount).toBe(4000);
    expect((agg.bytesAllocated - small.bytesAllocated) / 2000).toBeLessThan(600);
    const answered = agg.peerList(4000).find((p) => p.peer === '10.5.0.1')!;
    expect(answered).toMatchObject({ role: 'in', requests: 1, replies: 1, rttMinMs: 450, spark: [450] });
    expect(agg.peerSeries('10.5.0.1').rttMs).toEqual([450]);
    const counters = agg.peerCounters().find((p) => p.peer === '10.5.0.2')!;
    expect(Array.from(counters.rttBuckets)).toEqual(new Array(RTT_BUCKETS_S.length).fill(0));
  });

  it('grows the address table and the per-address counters a block at a time under a spoofed-source flood', () => {
    // Every request from a new address: the per-id arrays doubled with a copy (at 262 144 addresses a 5 MB
    // step in the address table and 4 MB in the counters; at 2 M, 72 MB copied and faulted in in one turn).
    const store = new RecordStore();
    const ingestor = new Ingestor(store, (i) => IFNAMES[i] ?? `if${i}`);
    const agg = new Aggregator(ingestor);
    const sizes = () => [ingestor.addresses.idBytes, agg.addressCounterBytes];
    let before = sizes();
    const largest = [0, 0];
    const source = (k: number): string => `10.${k >>> 16}.${(k >>> 8) & 255}.${k & 255}`;
    const b = new BatchBuilder();
    const N = 300_000;
    for (let k = 1; k <= N + 7; k++) {
      // The last seven requests come again from a source with a high id: the second talker.
      addEvent(b, req(k / 100, source(k <= N ? k : 290_001), '192.0.2.1', k, 0));
      if (b.count < 4096 && k < N + 7) continue;
      const from = store.length;
      ingestor.ingest(b.take());
      agg.update(store, from, store.length);
      const now = sizes();
      now.forEach((v, j) => (largest[j] = Math.max(largest[j]!, v - before[j]!)));
      before = now;
    }
    expect(ingestor.addresses.size).toBe(N + 1);
    expect(largest[0]).toBeGreaterThan(0);
    expect(largest[1]).toBeGreaterThan(0);
    expect(largest[0]).toBeLessThan(1_000_000);
    expect(largest[1]).toBeLessThan(1_000_000);
    expect(agg.topTalkers(3)).toEqual([
      { address: '192.0.2.1', packets: N + 7, bytes: (N + 7) * 64 },
      { address: source(290_001), packets: 8, bytes: 8 * 64 },
      { address: source(1), packets: 1, bytes: 64 },
    ]);
    // A new capture's counters start from one block, at zero.
    agg.clear();
    expect(agg.addressCounterBytes).toBeLessThan(before[1]! / 50);
    expect(agg.topTalkers(3)).toEqual([]);
  });

  it('computes p95 by nearest rank and jitter over many replies', () => {
    const events: Ev[] = [];
    const rtt = [5, 1, 20, 3, 4, 17, 2, 19, 6, 8, 7, 9, 11, 10, 12, 14, 13, 16, 15, 18];
    rtt.forEach((r, k) => {
      events.push(req(k * 100, '10.0.0.1', '10.0.0.2', k));
      events.push(rep(k * 100 + r, '10.0.0.2', '10.0.0.1', k));
    });
    const [peer] = run(events).agg.peerList();
    const jitter = rtt.slice(1).reduce((s, r, k) => s + Math.abs(r - rtt[k]!), 0) / (rtt.length - 1);
    expect(peer!.rttP95Ms).toBe(19); // ceil(0.95 * 20) = 19th smallest
    expect(peer!.jitterMs).toBeCloseTo(jitter, 3);
    expect(peer!.rttAvgMs).toBe(10.5);
  });

  it('bounds remembered requests and peers', () => {
    const events: Ev[] = [];
    for (let k = 0; k < 3000; k++) events.push(req(k, '10.0.0.1', `10.1.${k >> 8}.${k & 255}`, k));
    const { agg, echo } = run(events, { maxOutstanding: 500, maxPeers: 100 }, 64);
    expect(echo.remembered).toBeLessThanOrEqual(500);
    expect(agg.peerCount).toBeLessThanOrEqual(110);
    // The most recently seen peers are the ones kept.
    expect(agg.peerList(1000).map((p) => p.peer)).toContain('10.1.11.183');
    expect(agg.peerList(1000).map((p) => p.peer)).not.toContain('10.1.0.0');
  });

  it('keeps a bounded, evenly decimated RTT series per peer', () => {
    const events: Ev[] = [];
    for (let k = 0; k < 1000; k++) {
      events.push(req(k * 10, '10.0.0.1', '10.0.0.2', k));
      events.push(rep(k * 10 + 1 + (k % 7), '10.0.0.2', '10.0.0.1', k));
    }
    const { agg } = run(events, { maxPointsPerPeer: 100 }, 128);
    const series = agg.peerSeries('10.0.0.2', 10_000);
    expect(series.tMs.length).toBeLessThanOrEqual(100);
    expect(series.tMs.length).toBeGreaterThanOrEqual(50);
    expect(series.tMs[0]).toBeCloseTo(T0 / 1e6 + 1, 3);
    expect(series.tMs.at(-1)!).toBeGreaterThan(T0 / 1e6 + 9000);
    for (let k = 1; k < series.tMs.length; k++) expect(series.tMs[k]!).toBeGreaterThan(series.tMs[k - 1]!);
    expect(series.rttMs.every((r) => r >= 1 && r <= 7)).toBe(true);
    expect(agg.peerSeries('10.0.0.2', 10).tMs.length).toBeLessThanOrEqual(10);
    expect(agg.peerSeries('10.9.9.9', 10)).toEqual({ peer: '10.9.9.9', tMs: [], rttMs: [], lostTMs: [] });
  });
});

describe('aggregates', () => {
  function load(batchSize: number) {
    const store = new RecordStore();
    const ingestor = new Ingestor(store, (i) => IFNAMES[i] ?? `if${i}`);
    const agg = new Aggregator(ingestor);
    for (const batch of randomCapture(80_000, 21, batchSize)) {
      const from = store.length;
      ingestor.ingest(batch);
      agg.update(store, from, store.length);
    }
    return { store, ingestor, agg };
  }

  it('equal a brute-force count', () => {
    const { store, ingestor, agg } = load(4096);
    const a = agg.aggregates({ rate: 5, droppedKernel: 1, droppedRing: 2 });
    const kinds = { echo: 0, error: 0, nd: 0, other: 0 };
    const dirs = [0, 0, 0, 0];
    const typeCodes = new Map<string, number>();
    const packets = new Map<string, number>();
    const bytes = new Map<string, number>();
    const perSecond = new Map<number, typeof kinds>();
    for (let r = 0; r < store.length; r++) {
      const c = store.chunks[r >>> CHUNK_SHIFT]!;
      const i = r & CHUNK_MASK;
      const meta = c.meta[i]!;
      const family = meta >>> 24 === 6 ? 6 : 4;
      const kind = messageKind(family, meta & 255);
      kinds[kind]++;
      dirs[(meta >>> 16) & 3]!++;
      const tc = `${family}/${meta & 255}/${(meta >>> 8) & 255}`;
      typeCodes.set(tc, (typeCodes.get(tc) ?? 0) + 1);
      const len = c.len[i]! & 0xffff;
      for (const id of new Set([c.src[i]!, c.dst[i]!])) {
        const addr = ingestor.addresses.text[id]!;
        packets.set(addr, (packets.get(addr) ?? 0) + 1);
        bytes.set(addr, (bytes.get(addr) ?? 0) + len);
      }
      const sec = Number((store.baseNs! + BigInt(c.tsRel[i]!)) / 1_000_000_000n);
      const s = perSecond.get(sec) ?? { echo: 0, error: 0, nd: 0, other: 0 };
      s[kind]++;
      perSecond.set(sec, s);
    }
    expect(a.total).toBe(store.length);
    expect(a.rate).toBe(5);
    expect(a.droppedRing).toBe(2);
    expect(a.byKind).toEqual(kinds);
    expect(a.byDir).toEqual({ in: dirs[0], out: dirs[1], fwd: dirs[2], unknown: dirs[3] });
    expect(new Map(a.byTypeCode.map((t) => [`${t.family}/${t.type}/${t.code}`, t.count]))).toEqual(typeCodes);
    const top = [...packets.entries()].sort((x, y) => y[1] - x[1]).slice(0, 10);
    expect(a.topTalkers.map((t) => t.packets)).toEqual(top.map(([, p]) => p));
    for (const t of a.topTalkers) expect(t.bytes).toBe(bytes.get(t.address));
    expect(a.series.tSec.length).toBe(300);
    const last = Math.max(...perSecond.keys());
    expect(a.series.tSec.at(-1)).toBe(last);
    a.series.tSec.forEach((sec, k) => {
      const want = perSecond.get(sec) ?? { echo: 0, error: 0, nd: 0, other: 0 };
      expect([a.series.echo[k], a.series.error[k], a.series.nd[k], a.series.other[k]]).toEqual([
        want.echo,
        want.error,
        want.nd,
        want.other,
      ]);
    });
    expect(a.peers.length).toBeGreaterThan(10);
    expect(a.peers.length).toBeLessThanOrEqual(200);
    for (let k = 1; k < a.peers.length; k++)
      expect(a.peers[k]!.requests).toBeLessThanOrEqual(a.peers[k - 1]!.requests);
  });

  it('do not depend on how the records were batched', () => {
    const extra = { rate: 0, droppedKernel: 0, droppedRing: 0 };
    const one = load(80_000).agg.aggregates(extra);
    const many = load(777).agg.aggregates(extra);
    expect(many.peers).toEqual(one.peers);
    expect(many).toEqual(one);
  });

  it('start over after clear()', () => {
    const { agg } = load(4096);
    agg.clear();
    const a = agg.aggregates({ rate: 0, droppedKernel: 0, droppedRing: 0 });
    expect(a.total).toBe(0);
    expect(a.peers).toEqual([]);
    expect(a.topTalkers).toEqual([]);
    expect(a.series.tSec).toEqual([]);
  });
});

describe('flows and unanswered requests', () => {
  it('keeps one entry per flow, and marks requests with no reply within the timeout', () => {
    // 10.0.0.1 pings us (10.0.0.2) and answers... and also pings 10.0.0.9, which never answers.
    const events: Ev[] = [];
    for (let k = 0; k < 4; k++) {
      events.push(req(k * 100, '10.0.0.1', '10.0.0.2', k, 0));
      events.push(rep(k * 100 + 1, '10.0.0.2', '10.0.0.1', k, 1));
      events.push(req(k * 100 + 50, '10.0.0.1', '10.0.0.9', k, 0, 8));
    }
    events.push({ ms: 5000, type: 3, src: '10.0.0.2', dst: '10.0.0.1', dir: 1 }); // time passes
    const { agg, store } = run(events);
    const flows = agg
      .peerList()
      .map((p) => [p.flow, p.peer, p.local, p.loss])
      .sort((a, b) => String(a[0]).localeCompare(String(b[0])));
    expect(flows).toEqual([
      ['10.0.0.1>10.0.0.2', '10.0.0.1', '10.0.0.2', 0],
      ['10.0.0.1>10.0.0.9', '10.0.0.1', '10.0.0.9', 1],
    ]);
    const marked: number[] = [];
    for (let r = 0; r < store.length; r++)
      if (store.chunks[r >>> CHUNK_SHIFT]!.misc[r & CHUNK_MASK]! & MISC_F_NO_RESPONSE) marked.push(r + 1);
    expect(marked).toEqual([3, 6, 9, 12]);
    expect(agg.peerSeries('10.0.0.1>10.0.0.2').rttMs).toHaveLength(4);
    expect(agg.peerSeries('10.0.0.1>10.0.0.9').rttMs).toHaveLength(0);
    // The loss marks: when each lost request was sent.
    expect(agg.peerSeries('10.0.0.1>10.0.0.9').lostTMs!.map((t) => Math.round(t - T0 / 1e6))).toEqual([
      50, 150, 250, 350,
    ]);
    expect(agg.peerSeries('10.0.0.1>10.0.0.2').lostTMs).toEqual([]);
  });

  it('keeps the send times of the last 512 lost requests, in order, however many were lost', () => {
    // 700 requests to a peer that never answers: the marks' buffer grows, then wraps around.
    const events: Ev[] = [];
    for (let k = 0; k < 700; k++) events.push(req(k * 10, '10.0.0.1', '10.0.0.9', k, 0, 8));
    events.push({ ms: 20_000, type: 3, src: '10.0.0.2', dst: '10.0.0.1', dir: 1 }); // time passes
    const { agg } = run(events, {}, 64);
    const marks = agg.peerSeries('10.0.0.1>10.0.0.9').lostTMs!.map((t) => Math.round(t - T0 / 1e6));
    expect(marks).toEqual(Array.from({ length: 512 }, (_, k) => (700 - 512 + k) * 10));
  });
});

describe('per-peer statistics do not depend on when they are read', () => {
  /**
   * Feeds `events` in batches of 1000 and returns everything the peers show; the peers are also read after
   * every `readEvery` batches (1: each batch's echo outcomes are counted at once; Infinity: only at the end,
   * outcomes wait and are counted a flow at a time, in groups of many thousands).
   */
  function peersAfter(events: Ev[], options: AggregatorOptions & EchoMatchOptions, readEvery: number) {
    const store = new RecordStore();
    const ingestor = new Ingestor(store, (i) => IFNAMES[i] ?? `if${i}`, options);
    const agg = new Aggregator(ingestor, options);
    const extra = { rate: 0, droppedKernel: 0, droppedRing: 0 };
    for (let k = 0, batch = 1; k < events.length; k += 1000, batch++) {
      const from = store.length;
      ingestor.ingest(batchOf(events.slice(k, k + 1000)));
      agg.update(store, from, store.length);
      // What every reader of the peers does first.
      if (batch % readEvery === 0) agg.settle();
    }
    const peers = agg.peerList(10_000);
    return {
      aggregates: agg.aggregates(extra, 10_000),
      counters: agg.peerCounters().sort((a, b) => `${a.peer}${a.local}`.localeCompare(`${b.peer}${b.local}`)),
      series: peers.map((p) => agg.peerSeries(p.flow)),
    };
  }

  it('holds outcomes in a buffer that grows with them: a short capture keeps it small', () => {
    const events: Ev[] = [];
    for (let k = 0; k < 3; k++) {
      events.push(req(k * 1000, '10.0.0.1', '10.0.0.2', k));
      events.push(rep(k * 1000 + 2, '10.0.0.2', '10.0.0.1', k));
    }
    const { agg } = run(events);
    // The counters by type and code are 1 MB of it; the outcomes' buffer at its largest is 3.9 MB more.
    expect(agg.bytesAllocated).toBeLessThan(1.5e6);
    expect(agg.peerList()[0]!.replies).toBe(3);
  });

  it('40 peers with 3000 exchanges each: loss, duplicates, late replies, p95 from the reservoir', () => {
    const events: Ev[] = [];
    let ms = 0;
    for (let k = 0; k < 3000; k++) {
      for (let p = 0; p < 40; p++) {
        const peer = p % 4 === 3 ? `2001:db8::${p}` : `10.9.0.${p}`;
        const local = p % 4 === 3 ? '2001:db8::ffff' : '10.9.1.1';
        ms += 0.05;
        events.push(req(ms, local, peer, k, 1, p));
        if ((k * 7 + p) % 50 === 0) continue; // lost
        // RTTs spread over 0.1-60 ms, some late (over 1 s), a few duplicated.
        const rtt = (k * 13 + p * 7) % 53 === 0 ? 1200 : 0.1 + ((k * 31 + p * 17) % 600) / 10;
        events.push(rep(ms + rtt, peer, local, k, 0, p));
        if ((k + p) % 97 === 0) events.push(rep(ms + rtt + 0.5, peer, local, k, 0, p));
      }
    }
    events.sort((a, b) => a.ms - b.ms);
    events.push(tick(ms + 10_000));
    const once = peersAfter(events, {}, Infinity);
    const each = peersAfter(events, {}, 1);
    expect(once.aggregates.peers).toHaveLength(40);
    // Past the reservoir's 1024 RTTs, and with every kind of outcome.
    for (const p of once.aggregates.peers) {
      expect(p.replies).toBeGreaterThan(2000);
      expect(p.lost).toBeGreaterThan(0);
      expect(p.late).toBeGreaterThan(0);
      expect(p.duplicates).toBeGreaterThan(0);
    }
    expect(once).toEqual(each);
  });

  /** 2000 peers pinged `rounds` times each, one in 9 requests unanswered, in time order. */
  function pingedFlows(rounds: number): Ev[] {
    const events: Ev[] = [];
    let ms = 0;
    for (let k = 0; k < rounds; k++) {
      for (let p = 0; p < 2000; p++) {
        const peer = `10.7.${p >> 8}.${p & 255}`;
        ms += 0.01;
        events.push(req(ms, '10.9.1.1', peer, k, 1, p));
        if ((k + p) % 9 !== 0) events.push(rep(ms + 0.3 + (p % 7), peer, '10.9.1.1', k, 0, p));
      }
    }
    return events.sort((a, b) => a.ms - b.ms);
  }

  it('2000 peers: the same read every 37 batches as read once at the end', () => {
    // Read once at the end, the buffer fills at full size twice: its outcomes are counted a flow or so per
    // outcome after it (2000 flows: about a batch later).
    const events = pingedFlows(100);
    events.push(tick(events.at(-1)!.ms + 10_000));
    const once = peersAfter(events, {}, Infinity);
    expect(once.aggregates.peers).toHaveLength(2000);
    expect(peersAfter(events, {}, 37)).toEqual(once);
  });

  it('settles a slice at a time within a deadline, to the same figures as settling at once', () => {
    // 2000 flows' outcomes held (never read while they came), then settled as the periodic push does.
    const events = pingedFlows(40);
    const settled = (deadline: () => number): { calls: number; peers: unknown } => {
      const { agg } = run(events, {}, 1000);
      let calls = 1;
      while (!agg.settleSome(32768, deadline())) calls++;
      return { calls, peers: agg.peerCounters() };
    };
    const atOnce = settled(() => Infinity);
    // A deadline already past: each slice counts one look at the clock's worth (1024 outcomes) or sorts.
    const sliced = settled(() => performance.now() - 1);
    expect(sliced.calls).toBeGreaterThan(atOnce.calls * 8);
    expect(sliced.peers).toEqual(atOnce.peers);
    expect((atOnce.peers as { replies: number }[]).reduce((n, p) => n + p.replies, 0)).toBe(
      events.filter((e) => e.type === 0).length,
    );
  });

  it('counts every outcome when read right after the buffer filled, while it is still being counted', () => {
    // Outcomes as echo matching tells them, straight to the statistics: 2000 flows, requests, replies
    // (timely, late, duplicate), judged and lost ones.
    const make = (): Aggregator => {
      const ingestor = new Ingestor(new RecordStore(), () => 'eth0');
      const agg = new Aggregator(ingestor);
      const local = ingestor.addresses.internV4(0x0a090101);
      for (let f = 0; f < 2000; f++)
        agg.flowAdded(f, local, ingestor.addresses.internV4(0x0a070000 + f), 'out');
      return agg;
    };
    const feed = (agg: Aggregator, from: number, to: number): void => {
      for (let k = from; k < to; k++) {
        const f = (k * 7919) % 2000;
        const ts = k * 1000;
        if (k % 3 === 0) agg.request(f, ts, false);
        else if (k % 3 === 1)
          agg.reply(
            f,
            0.5 + (k % 13),
            ts,
            k % 11 === 0 ? REPLY_LATE : k % 17 === 0 ? REPLY_DUPLICATE : REPLY_TIMELY,
          );
        else agg.judged(f, k % 19 === 0, ts - 5000);
      }
    };
    // The buffer grows with what it holds until it holds OUTCOMES: from there its outcomes are counted a flow
    // or so per outcome after it.
    const fullAt = OUTCOMES;
    const total = fullAt + 5000;
    const atEnd = make();
    feed(atEnd, 0, total);
    const readEarly = make();
    feed(readEarly, 0, fullAt + 10);
    readEarly.peerList(10); // ten outcomes after the fill: most of the full buffer is still to count
    feed(readEarly, fullAt + 10, total);
    const peers = (agg: Aggregator) => agg.peerCounters().sort((a, b) => a.peer.localeCompare(b.peer));
    const all = peers(atEnd);
    expect(all.reduce((n, p) => n + p.requests + p.replies + p.duplicates + p.judged, 0)).toBe(total);
    expect(peers(readEarly)).toEqual(all);

    // No outcome held counts more than a few flows' worth: the buffer growing on its way up (from
    // FIRST_OUTCOMES) is no count of all it holds (65536 outcomes in one call, a 70 ms turn when cold).
    const counted = make();
    let inCall = 0;
    type Counting = { count: (this: Aggregator, peer: unknown, begin: number, end: number) => void };
    const count = (Aggregator.prototype as unknown as Counting).count;
    (counted as unknown as Counting).count = function (peer, begin, end): void {
      inCall += end - begin;
      count.call(this, peer, begin, end);
    };
    let most = 0;
    for (let k = 0; k < total; k += 1) {
      inCall = 0;
      feed(counted, k, k + 1);
      most = Math.max(most, inCall);
    }
    expect(FIRST_OUTCOMES).toBeLessThan(OUTCOMES);
    expect(most).toBeLessThan(1000); // 2000 flows: about 66 outcomes each in a full buffer
    expect(peers(counted)).toEqual(all);
  });

  it('a stream of new peers past maxPeers: forgotten flows, their numbers reused', () => {
    const events: Ev[] = [];
    for (let k = 0; k < 60_000; k++) {
      const peer = `10.8.${(k >> 4) & 255}.${(k >> 12) + 1}`;
      events.push(req(k, '10.9.1.1', peer, k, 1, 5));
      if (k % 3 !== 0) events.push(rep(k + 0.25 + (k % 5), peer, '10.9.1.1', k, 0, 5));
    }
    events.sort((a, b) => a.ms - b.ms);
    const options = { maxPeers: 200 };
    const once = peersAfter(events, options, Infinity);
    const each = peersAfter(events, options, 1);
    expect(once.aggregates.evictedPeers!.peers).toBeGreaterThan(1000);
    expect(once).toEqual(each);
  });
});

describe('loss is judged against the clock while idle and at stop', () => {
  const peerOf = (agg: Aggregator) => agg.aggregates({ rate: 0, droppedKernel: 0, droppedRing: 0 }).peers[0]!;

  it('ping -c 3 to a dead host: 0 % while waiting, 100 % once the waits are over', () => {
    const { agg, echo } = run([
      req(0, '10.0.0.2', '10.66.0.1', 1),
      req(1000, '10.0.0.2', '10.66.0.1', 2),
      req(2000, '10.0.0.2', '10.66.0.1', 3),
    ]);
    // Nothing else arrives: by capture time alone no wait is ever over (the defect: 0 % forever).
    expect(peerOf(agg)).toMatchObject({ lost: 0, loss: 0 });
    expect(echo.advanceIdle(500 * MS)).toBe(true); // 2.5 s after the first request: it is lost
    expect(peerOf(agg)).toMatchObject({ lost: 1 });
    expect(echo.advanceIdle(1000 * MS)).toBe(false);
    expect(echo.advanceIdle(2500 * MS)).toBe(true);
    expect(peerOf(agg)).toMatchObject({ lost: 3, loss: 1 });
  });

  it('judges every waiting request at stop', () => {
    const { agg, echo } = run([
      req(0, '10.0.0.2', '10.66.0.1', 1),
      rep(5, '10.66.0.1', '10.0.0.2', 1),
      req(1000, '10.0.0.2', '10.66.0.1', 2),
    ]);
    expect(peerOf(agg)).toMatchObject({ lost: 0 });
    expect(echo.finish()).toBe(true);
    expect(peerOf(agg)).toMatchObject({ lost: 1, loss: 0.5 });
  });
});

describe('rttBucket', () => {
  const bounds = RTT_BUCKETS_S.map((s) => s * 1000);
  const linear = (rtt: number): number => {
    for (let b = 0; b < bounds.length; b++) if (rtt <= bounds[b]!) return b;
    return bounds.length;
  };
  it('is the first bound at or above the RTT, as a linear search finds it, at and beside every bound', () => {
    const values = [0, -0, NaN, Infinity, 1e-12, 1e9, Number.MIN_VALUE];
    for (const bound of bounds) {
      const f = Math.fround(bound);
      values.push(bound, f, bound * (1 + 2 ** -52), bound * (1 - 2 ** -53), bound * 1.5, bound * 0.75);
      values.push(Math.fround(bound * (1 + 2 ** -23)), Math.fround(bound * (1 - 2 ** -24)));
    }
    let x = 12345;
    for (let k = 0; k < 100_000; k++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      values.push(Math.fround(2 ** ((x / 2 ** 32) * 40 - 25)));
    }
    for (const v of values) expect(rttBucket(v), `rtt ${v}`).toBe(linear(v));
  });
});

describe('peerList', () => {
  it('lists the peers with the most requests first, as sorting every peer does, ties by last seen', () => {
    const store = new RecordStore();
    const ingestor = new Ingestor(store, (i) => IFNAMES[i] ?? `if${i}`);
    const agg = new Aggregator(ingestor);
    let x = 5;
    const rnd = (n: number): number => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return x % n;
    };
    for (let flow = 0; flow < 3000; flow++) {
      agg.flowAdded(flow, 1, 2, 'out');
      const requests = rnd(40); // many ties
      for (let k = 0; k < requests; k++) agg.request(flow, rnd(1000) * 1e6, false);
    }
    for (const flow of [7, 99, 2500]) agg.flowsForgotten([flow]);
    const everyPeer = agg.peerList(1e9);
    expect(everyPeer.length).toBe(2997);
    for (const max of [1, 10, 200, 2996, 2997, 5000]) {
      const top = agg.peerList(max);
      expect(top.map((p) => [p.requests, p.lastSeenNs])).toEqual(
        everyPeer.slice(0, max).map((p) => [p.requests, p.lastSeenNs]),
      );
    }
    expect(agg.peerList(0)).toEqual([]);
  });
});
