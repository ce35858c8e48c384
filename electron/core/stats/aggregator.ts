/**
 * Aggregates and per-peer echo statistics, kept incrementally: `update(store, from, to)` after each
 * batch makes one pass over the new records' columns for the counters; the per-peer echo statistics come
 * from echo matching, a step of ingest (echo-match.ts: requests, replies, loss, late replies and
 * duplicates), whose outcomes this listens to.
 *
 * Peers: one entry per flow of echo matching, a (requester, responder) pair named `requester>responder`.
 * The role comes from the first request's direction: out (we pinged the peer: the responder is the peer),
 * in (the peer pinged us: the requester is the peer), otherwise unknown (the responder is the peer). Echo
 * matching bounds the flows (`maxPeers`), forgetting the least recently seen.
 *
 * p95 is exact up to `reservoirSize` (1024) RTTs per peer and from a uniform random sample of that
 * size (Vitter's algorithm R, seeded, so results are reproducible) after. Jitter is the mean absolute
 * difference of consecutive RTTs, in reply order. The RTT-over-time series keeps at most
 * `maxPointsPerPeer` points per peer: when full, every other point is dropped and from then on only
 * every 2nd (4th, ...) reply is kept, so the series always spans the whole history evenly.
 *
 * Echo outcomes are counted in groups, a flow at a time: they wait in a buffer (OUTCOMES of them) and are
 * counted, each flow's in the order they came, when it fills or before anything reads the peers. A busy
 * host interleaves thousands of flows, and counting an outcome the moment it came touched a dozen cache
 * lines of one peer (its counters, histogram, reservoir, spark, points) that the next outcome of that peer,
 * thousands of records later, found evicted again: 0.4-0.7 us a record of ingest with 3000 peers.
 */
import type { Aggregates, MessageKindName, PeerSeries, PeerStats } from '../../common/contract.js';
import { messageKind } from '../../common/icmp.js';
import {
  type EchoMatcher,
  type EchoOutcomes,
  type FlowRole,
  REPLY_DUPLICATE,
  REPLY_LATE,
} from '../echo-match.js';
import { ID_BLOCK_MASK, ID_BLOCK_SHIFT } from '../ingest.js';
import { CHUNK_MASK, CHUNK_SHIFT, type RecordStore } from '../store.js';
import { selectKth } from './select.js';

export interface AggregatorOptions {
  maxPointsPerPeer?: number;
  reservoirSize?: number;
  sparkLength?: number;
}

export interface AddressNames {
  readonly text: readonly string[];
  readonly family: readonly number[];
  /** Reclaimed ids (ingest.ts AddressTable, a ring buffer): their per-address counters are folded first. */
  onFree?(listener: (id: number) => void): () => void;
}

/** Peers let go (no records left in a ring buffer, or beyond `maxPeers`), summed. */
export interface EvictedPeers {
  peers: number;
  requests: number;
  replies: number;
  lost: number;
  duplicates: number;
  late: number;
}

/** Echo outcomes held before they are counted a flow at a time (about 20 a flow: 3000 peers, both ways). */
export const OUTCOMES = 1 << 17;
/** The buffer's first size: it doubles as outcomes come, up to OUTCOMES (a short capture keeps it small). */
export const FIRST_OUTCOMES = 4096;
/** Outcomes counted between two looks at the clock when counting has a deadline (settleSome). */
const COUNT_CHECK = 1024;
/** What an outcome held was (its kind in the buffer). */
const OUT_REQUEST = 0;
const OUT_REPEAT = 1;
/** OUT_REPLY + the reply's kind (REPLY_TIMELY, REPLY_LATE, REPLY_DUPLICATE). */
const OUT_REPLY = 2;
const OUT_ANSWERED = 5;
const OUT_LOST = 6;
const OUT_UNLOST = 7;

/** Addresses let go whose packet counts are still folded into the top talkers (the largest ones). */
const EVICTED_TALKERS = 32;

const KINDS: readonly MessageKindName[] = ['echo', 'error', 'nd', 'other'];
/**
 * Upper bounds (seconds) of the per-peer RTT histogram's buckets: powers of two from 2^-20 s (0.95 us; RTTs
 * measured where the capture sees both packets can be a few microseconds)
 * to 2^3 s, so they are also the bucket boundaries of a base-2 (schema 0) exponential histogram.
 */
export const RTT_BUCKETS_S: readonly number[] = Array.from({ length: 24 }, (_, k) => 2 ** (k - 20));
const RTT_BUCKETS_MS = Float64Array.from(RTT_BUCKETS_S, (s) => s * 1000);

/**
 * The histogram bucket of an RTT in ms: the first b with rtt <= RTT_BUCKETS_MS[b], or RTT_BUCKETS_MS.length
 * when above the last bound (or NaN). The bounds double, so log2 (from clz32) lands on b or next to it and one comparison
 * each way settles it (a linear search cost 15 compares a reply at 20 ms, the busiest line of ingest).
 */
export function rttBucket(rttMs: number): number {
  const last = RTT_BUCKETS_MS.length;
  if (!(rttMs <= RTT_BUCKETS_MS[last - 1]!)) return last;
  if (rttMs <= RTT_BUCKETS_MS[0]!) return 0;
  // ceil(log2(q)) = 32 - clz32(ceil(q) - 1) for q in (1, 2^31): no call into the math library.
  let b = 32 - Math.clz32(Math.ceil(rttMs / RTT_BUCKETS_MS[0]!) - 1);
  if (b > last - 1) b = last - 1;
  if (b < 1) b = 1;
  if (rttMs > RTT_BUCKETS_MS[b]!) b++;
  else if (rttMs <= RTT_BUCKETS_MS[b - 1]!) b--;
  return b;
}

/** The raw, cumulative counters of one peer (for exporters; the UI reads `PeerStats`). */
export interface PeerCounters {
  peer: string;
  local: string;
  family: 4 | 6;
  role: 'out' | 'in' | 'unknown';
  requests: number;
  replies: number;
  lost: number;
  /** Requests whose timeout has passed (answered or lost): `lost / judged` is the UI's loss. */
  judged: number;
  duplicates: number;
  late: number;
  /** Per-bucket (not cumulative) counts of the timely replies' RTTs, bounds `RTT_BUCKETS_S`. */
  rttBuckets: Float64Array;
  /** Timely replies (the histogram's count) and the sum of their RTTs in seconds. */
  rttCount: number;
  rttSumS: number;
}
const SERIES_SECONDS = 300;
const SERIES_SLOTS = 512;
/** Per (family, type): kind index. */
const TYPE_INFO = (() => {
  const t = new Uint8Array(512);
  for (let type = 0; type < 256; type++) {
    t[type] = KINDS.indexOf(messageKind(4, type));
    t[256 + type] = KINDS.indexOf(messageKind(6, type));
  }
  return t;
})();

/**
 * What a peer holds before its first RTT (shared, empty): a flood of requests from new sources (spoofed
 * addresses, never answered) made five typed arrays per packet, and their allocation and collection were
 * most of the service's time under such a flood.
 */
const NO_F64 = new Float64Array(0);
const NO_F32 = new Float32Array(0);
const NO_U32 = new Uint32Array(0);

/** Lost requests remembered per flow, for the loss marks on the RTT chart. */
const LOST_TIMES = 512;

class Peer {
  requests = 0;
  replies = 0;
  lost = 0;
  /** Requests whose timeout has passed. */
  expired = 0;
  duplicates = 0;
  late = 0;
  rttCount = 0;
  rttSum = 0;
  rttMin = Infinity;
  rttMax = -Infinity;
  /** RTT histogram, per bucket of RTT_BUCKETS_S; above the last bound only rttCount counts (made at the
   * first RTT, as are the reservoir, the spark and the points). */
  rttBuckets = NO_F64;
  jitterSum = 0;
  lastRtt = NaN;
  reservoir = NO_F32;
  spark = NO_F32;
  sparkCount = 0;
  /**
   * The RTT-over-time points, interleaved in one buffer so an append touches one cache line:
   * pointsT[2k] = ms since the capture's base time, pointsRtt[2k + 1] = RTT in ms.
   */
  pointsT = NO_U32;
  pointsRtt = NO_F32;
  points = 0;
  pointStride = 1;
  pointSkip = 0;
  lastSeen = 0;
  /** When the last LOST_TIMES lost requests were sent (ms since the capture's base time): a ring, grown
   * until that many were lost. */
  lostT = NO_F64;
  lostCount = 0;
  p95Cache: number | null = null;
  /** xorshift32 state for the reservoir: seeded, and the peer's own, so which RTTs it keeps depends only on
   * the peer's replies (not on other peers', nor on when the statistics were read). */
  rng = 0x1c3f;

  constructor(
    /** The flow's number in echo matching (reused after it is forgotten). */
    readonly index: number,
    readonly requester: number,
    readonly responder: number,
    readonly role: FlowRole,
  ) {}
}

export class Aggregator implements EchoOutcomes {
  private readonly maxPoints: number;
  private readonly reservoirSize: number;
  /** Where a percentile is selected (the reservoir itself keeps its order for algorithm R). */
  private scratch = new Float64Array(0);
  /** Where peerList selects the max-th largest request count. */
  private requestCounts = new Float64Array(0);
  private readonly sparkLength: number;

  total = 0;
  /** Bumped by clear(): a new capture, whose counters start again at zero. */
  generation = 0;
  private readonly byKind = new Float64Array(4);
  private readonly byDir = new Float64Array(4);
  /** Indexed by family6 << 16 | code << 8 | type. */
  private readonly byTypeCode = new Float64Array(2 << 16);
  /** Indexed by family6 << 10 | direction << 8 | type. */
  private readonly byTypeDir = new Float64Array(2 << 10);
  /** Packets and bytes per address id, in blocks as the address table's (ingest.ts ID_BLOCK_SHIFT): id's at
   * `2 * (id & ID_BLOCK_MASK)` and the next of block `id >>> ID_BLOCK_SHIFT`. */
  private readonly talkers: Float64Array[] = [new Float64Array(2 << ID_BLOCK_SHIFT)];
  private readonly slotSec = new Float64Array(SERIES_SLOTS).fill(-1);
  private readonly slotCounts = new Float64Array(SERIES_SLOTS * 4);
  private newestSec = -1;

  /** Per flow of echo matching (null: forgotten). */
  private readonly peerSlots: (Peer | null)[] = [];
  private livePeers = 0;
  /** Echo outcomes not counted yet, in the order they came: flow, kind (OUT_*), RTT in ms (a reply's, as the
   * float32 the statistics keep) and time (a judged request's: when it was sent). 30 bytes an outcome with
   * the sorted copy: 120 KB at first, 3.9 MB at most. */
  private outFlow = new Int32Array(FIRST_OUTCOMES);
  private outKind = new Uint8Array(FIRST_OUTCOMES);
  private outValue = new Float32Array(FIRST_OUTCOMES);
  private outTs = new Float64Array(FIRST_OUTCOMES);
  private outCount = 0;
  /** The same sorted by flow (a counting sort), where `settle` counts them from. */
  private sortedKind = new Uint8Array(FIRST_OUTCOMES);
  private sortedValue = new Float32Array(FIRST_OUTCOMES);
  private sortedTs = new Float64Array(FIRST_OUTCOMES);
  private flowEnds = new Int32Array(1024);
  /** The sorted outcomes still to count: the next flow, the last, and how many were sorted. */
  private countFlow = 0;
  private countTop = -1;
  private countN = 0;
  private baseNs = 0n;

  private readonly addresses: AddressNames;
  private readonly evicted: EvictedPeers = {
    peers: 0,
    requests: 0,
    replies: 0,
    lost: 0,
    duplicates: 0,
    late: 0,
  };
  /** Packets and bytes of reclaimed addresses, the largest EVICTED_TALKERS, by address. */
  private readonly evictedTalkers = new Map<string, { packets: number; bytes: number }>();

  /** Counts what `ingestor` adds to the store and hears its echo matching. */
  constructor(ingestor: { addresses: AddressNames; echo: EchoMatcher }, options: AggregatorOptions = {}) {
    this.addresses = ingestor.addresses;
    ingestor.echo.listen(this);
    this.maxPoints = Math.max(4, options.maxPointsPerPeer ?? 1024);
    this.reservoirSize = options.reservoirSize ?? 1024;
    this.sparkLength = options.sparkLength ?? 32;
    this.addresses.onFree?.((id) => this.foldTalker(id));
  }

  /** A reclaimed address: its cumulative counts join the evicted top talkers (or go, when small). */
  private foldTalker(id: number): void {
    const block = this.talkers[id >>> ID_BLOCK_SHIFT];
    const k = (id & ID_BLOCK_MASK) << 1;
    const packets = block?.[k] ?? 0;
    if (packets === 0) return;
    const bytes = block![k + 1]!;
    block![k] = block![k + 1] = 0;
    const address = this.addresses.text[id] ?? '';
    const known = this.evictedTalkers.get(address);
    if (known) {
      known.packets += packets;
      known.bytes += bytes;
      return;
    }
    if (this.evictedTalkers.size >= EVICTED_TALKERS) {
      let smallest: string | null = null;
      let least = packets;
      for (const [a, t] of this.evictedTalkers) {
        if (t.packets < least) {
          least = t.packets;
          smallest = a;
        }
      }
      if (smallest === null) return;
      this.evictedTalkers.delete(smallest);
    }
    this.evictedTalkers.set(address, { packets, bytes });
  }

  /** Takes in records `from..to-1` of the store (call after each batch with the new range). */
  update(store: RecordStore, from: number, to: number): void {
    if (to <= from) return;
    this.baseNs = store.baseNs ?? 0n;
    const baseFracNs = Number(this.baseNs % 1_000_000_000n);
    const baseSec = Number(this.baseNs / 1_000_000_000n);
    this.growAddresses(this.addresses.text.length);
    const talkers = this.talkers;
    const byKind = this.byKind;
    const byDir = this.byDir;
    const byTypeCode = this.byTypeCode;
    const byTypeDir = this.byTypeDir;
    const slotCounts = this.slotCounts;
    let secLo = Infinity;
    let secHi = -Infinity;
    let curSlot = 0;
    let curValid = false;
    for (let at = from; at < to;) {
      const c = at >>> CHUNK_SHIFT;
      const chunk = store.chunks[c]!;
      const start = at & CHUNK_MASK;
      const stop = Math.min(to - (c << CHUNK_SHIFT), CHUNK_MASK + 1);
      const { tsRel, src, dst, meta, len } = chunk;
      for (let i = start; i < stop; i++) {
        const m = meta[i]!;
        const ts = tsRel[i]!;
        const s = src[i]!;
        const d = dst[i]!;
        const l = len[i]! & 0xffff;
        const v6 = (m >>> 17) & 256;
        const info = TYPE_INFO[(m & 255) | v6]!;
        const kind = info;
        byKind[kind]!++;
        byDir[(m >>> 16) & 3]!++;
        byTypeCode[(v6 << 8) | (m & 0xffff)]!++;
        byTypeDir[(v6 << 2) | (((m >>> 16) & 3) << 8) | (m & 255)]!++;
        const st = talkers[s >>> ID_BLOCK_SHIFT]!;
        const sk = (s & ID_BLOCK_MASK) << 1;
        st[sk]!++;
        st[sk + 1]! += l;
        if (d !== s) {
          const dt = talkers[d >>> ID_BLOCK_SHIFT]!;
          const dk = (d & ID_BLOCK_MASK) << 1;
          dt[dk]!++;
          dt[dk + 1]! += l;
        }
        if (ts < secLo || ts >= secHi) {
          // Entering another second (records are nearly in time order, so this is rare).
          const sec = baseSec + Math.floor((ts + baseFracNs) / 1e9);
          secLo = (sec - baseSec) * 1e9 - baseFracNs;
          secHi = secLo + 1e9;
          curValid = this.seriesSlot(sec);
          curSlot = (sec & (SERIES_SLOTS - 1)) * 4;
        }
        if (curValid) slotCounts[curSlot + kind]!++;
      }
      at += stop - start;
    }
    this.total += to - from;
  }

  /**
   * Bytes of the per-address counters (packets and bytes per address id): sized by the highest id the address
   * table has handed out, a block at a time, so they follow the table's own bound, not the peers'.
   */
  get addressCounterBytes(): number {
    return this.talkers.length * (16 << ID_BLOCK_SHIFT);
  }

  /** Makes the counters' blocks cover ids below `n`. */
  private growAddresses(n: number): void {
    while (this.talkers.length << ID_BLOCK_SHIFT < n)
      this.talkers.push(new Float64Array(2 << ID_BLOCK_SHIFT));
  }

  /** Makes the series slot of second `sec` current; false when the second is too old to keep. */
  private seriesSlot(sec: number): boolean {
    if (sec > this.newestSec) this.newestSec = sec;
    if (sec <= this.newestSec - SERIES_SECONDS) return false;
    const slot = sec & (SERIES_SLOTS - 1);
    if (this.slotSec[slot] !== sec) {
      this.slotSec[slot] = sec;
      this.slotCounts.fill(0, slot * 4, slot * 4 + 4);
    }
    return true;
  }

  flowAdded(flow: number, requester: number, responder: number, role: FlowRole): void {
    this.peerSlots[flow] = new Peer(flow, requester, responder, role);
    this.livePeers++;
  }

  request(flow: number, ts: number, repeat: boolean): void {
    this.hold(flow, repeat ? OUT_REPEAT : OUT_REQUEST, 0, ts);
  }

  reply(flow: number, rttMs: number, ts: number, kind: number): void {
    this.hold(flow, OUT_REPLY + kind, rttMs, ts);
  }

  judged(flow: number, lost: boolean, sentTs: number): void {
    this.hold(flow, lost ? OUT_LOST : OUT_ANSWERED, 0, sentTs);
  }

  unlost(flow: number): void {
    this.hold(flow, OUT_UNLOST, 0, 0);
  }

  private hold(flow: number, kind: number, value: number, ts: number): void {
    const k = this.outCount++;
    this.outFlow[k] = flow;
    this.outKind[k] = kind;
    this.outValue[k] = value;
    this.outTs[k] = ts;
    // A full buffer's outcomes, sorted, are counted a flow or so per outcome held after it: no turn counts
    // them all at once (a count of 131072 took 9.5 ms median and up to 63 ms in a 20 M capture's turns).
    if (this.countFlow <= this.countTop) this.countSome(4);
    if (k + 1 === this.outFlow.length) {
      if (k + 1 < OUTCOMES) {
        // Grown with what it holds: counting it all here (65536 outcomes at the last size on the way up, code
        // still cold) held the turn 70 ms at the start of an open. The periodic push counts in slices.
        this.growOutcomes();
      } else {
        this.countSome(Infinity);
        this.sortHeld();
      }
    }
  }

  /** Doubles the outcomes' buffers, keeping what they hold (the outcomes held, the sorted ones not counted). */
  private growOutcomes(): void {
    const size = this.outFlow.length * 2;
    const grown = <T extends Int32Array | Uint8Array | Float32Array | Float64Array>(from: T, to: T): T => {
      to.set(from);
      return to;
    };
    this.outFlow = grown(this.outFlow, new Int32Array(size));
    this.outKind = grown(this.outKind, new Uint8Array(size));
    this.outValue = grown(this.outValue, new Float32Array(size));
    this.outTs = grown(this.outTs, new Float64Array(size));
    this.sortedKind = grown(this.sortedKind, new Uint8Array(size));
    this.sortedValue = grown(this.sortedValue, new Float32Array(size));
    this.sortedTs = grown(this.sortedTs, new Float64Array(size));
  }

  /**
   * Counts every echo outcome held: the sorted ones not counted yet, then the rest, sorted by flow (stable,
   * so each flow's in the order they came) and counted a flow at a time, its peer's lines fetched once for
   * all of them. Everything that reads the peers calls it first.
   */
  settle(): void {
    this.countSome(Infinity);
    if (this.outCount === 0) return;
    this.sortHeld();
    this.countSome(Infinity);
  }

  /**
   * Counts about `budget` of the outcomes held (sorting the buffer once the sorted ones are counted); true once
   * at most budget / 4 are left, which settle() then counts at little cost. The periodic push settles this
   * way, a slice a turn, before it reads the peers: settle() alone counted up to OUTCOMES outcomes in the push's
   * turn (17-37 ms, the longest turns of a 20 M-record capture or open). Under a flood new outcomes keep
   * coming between slices, so "none left" might never come; "few left" does. Counting also stops once
   * performance.now() passes `deadline` (checked every COUNT_CHECK outcomes): at a capture's start, with code
   * cold and each new peer's series made on its first RTT, 32768 outcomes took 11-24 ms.
   */
  settleSome(budget: number, deadline = Infinity): boolean {
    const counted = this.countSome(budget, deadline);
    if (this.countFlow <= this.countTop) return false;
    if (this.outCount <= budget / 4) return true;
    // Out of time after counting: sorted by the next slice (which, with nothing left to count, always sorts).
    if (counted > 0 && deadline !== Infinity && performance.now() >= deadline) return false;
    this.sortHeld();
    return false;
  }

  /** Sorts the outcomes held by flow into the sorted arrays (to count from flow 0) and empties the buffer. */
  private sortHeld(): void {
    const n = this.outCount;
    this.outCount = 0;
    const flows = this.outFlow;
    let top = 0;
    for (let k = 0; k < n; k++) if (flows[k]! > top) top = flows[k]!;
    if (this.flowEnds.length < top + 1)
      this.flowEnds = new Int32Array(Math.max(top + 1, this.flowEnds.length * 2));
    const ends = this.flowEnds;
    ends.fill(0, 0, top + 1);
    for (let k = 0; k < n; k++) ends[flows[k]!]!++;
    for (let f = 1, sum = ends[0]!; f <= top; f++) sum = ends[f]! += sum;
    // Scattered into flow order from the end (each flow's stay in the order they came), so counting reads
    // them in sequence; afterwards ends[f] is where flow f's begin.
    const kinds = this.outKind;
    const values = this.outValue;
    const times = this.outTs;
    const sKinds = this.sortedKind;
    const sValues = this.sortedValue;
    const sTimes = this.sortedTs;
    for (let k = n - 1; k >= 0; k--) {
      const at = --ends[flows[k]!]!;
      sKinds[at] = kinds[k]!;
      sValues[at] = values[k]!;
      sTimes[at] = times[k]!;
    }
    this.countFlow = 0;
    this.countTop = top;
    this.countN = n;
  }

  /**
   * Counts the sorted outcomes a flow at a time until at least `outcomes` were counted, or all were, or
   * performance.now() is past `deadline`; returns how many it counted.
   */
  private countSome(outcomes: number, deadline = Infinity): number {
    const ends = this.flowEnds;
    const top = this.countTop;
    let f = this.countFlow;
    let done = 0;
    let check = deadline === Infinity ? Infinity : COUNT_CHECK;
    while (f <= top && done < outcomes) {
      const begin = ends[f]!;
      const end = f === top ? this.countN : ends[f + 1]!;
      // Null: judged after its flow was forgotten (echo matching tells none of these; nothing to count).
      const peer = this.peerSlots[f];
      f++;
      if (begin === end || !peer) continue;
      this.count(peer, begin, end);
      done += end - begin;
      if (done >= check) {
        if (performance.now() >= deadline) break;
        check = done + COUNT_CHECK;
      }
    }
    this.countFlow = f;
    return done;
  }

  /** Counts a flow's held outcomes, `begin..end-1` of the sorted ones. */
  private count(peer: Peer, begin: number, end: number): void {
    const kinds = this.sortedKind;
    const values = this.sortedValue;
    const times = this.sortedTs;
    for (let k = begin; k < end; k++) {
      const kind = kinds[k]!;
      if (kind === OUT_REQUEST) {
        peer.requests++;
        peer.lastSeen = times[k]!;
      } else if (kind === OUT_REPEAT) {
        peer.lastSeen = times[k]!;
      } else if (kind < OUT_ANSWERED) {
        peer.lastSeen = times[k]!;
        if (kind === OUT_REPLY + REPLY_DUPLICATE) peer.duplicates++;
        else {
          // Late replies are replies with their RTT too (as tshark -z icmp,srt and stats/srt.ts count them).
          if (kind === OUT_REPLY + REPLY_LATE) peer.late++;
          peer.replies++;
          this.sample(peer, values[k]!, times[k]!);
        }
      } else if (kind === OUT_UNLOST) {
        peer.lost--;
      } else {
        peer.expired++;
        if (kind === OUT_LOST) this.lose(peer, times[k]!);
      }
    }
  }

  private lose(peer: Peer, sentTs: number): void {
    peer.lost++;
    // Grown as losses come (most peers lose a few requests, if any), up to the ring's LOST_TIMES.
    if (peer.lostCount === peer.lostT.length && peer.lostT.length < LOST_TIMES) {
      const grown = new Float64Array(Math.max(8, peer.lostT.length * 2));
      grown.set(peer.lostT);
      peer.lostT = grown;
    }
    peer.lostT[peer.lostCount++ % LOST_TIMES] = Math.round(sentTs / 1e6);
  }

  /** Flows echo matching let go (no records left in a ring buffer, or too many): summed as evicted peers. */
  flowsForgotten(flows: readonly number[]): void {
    this.settle();
    const e = this.evicted;
    for (const flow of flows) {
      const peer = this.peerSlots[flow];
      if (!peer) continue;
      this.livePeers--;
      this.peerSlots[flow] = null;
      e.peers++;
      e.requests += peer.requests;
      e.replies += peer.replies;
      e.lost += peer.lost;
      e.duplicates += peer.duplicates;
      e.late += peer.late;
    }
  }

  cleared(): void {
    this.outCount = 0;
    this.countTop = -1;
    this.peerSlots.length = 0;
    this.livePeers = 0;
    Object.assign(this.evicted, { peers: 0, requests: 0, replies: 0, lost: 0, duplicates: 0, late: 0 });
    this.evictedTalkers.clear();
  }

  private sample(peer: Peer, rtt: number, ts: number): void {
    if (peer.rttBuckets.length === 0) {
      peer.rttBuckets = new Float64Array(RTT_BUCKETS_S.length);
      peer.spark = new Float32Array(this.sparkLength);
    }
    const k = peer.rttCount++;
    peer.rttSum += rtt;
    if (rtt < peer.rttMin) peer.rttMin = rtt;
    if (rtt > peer.rttMax) peer.rttMax = rtt;
    const b = rttBucket(rtt);
    if (b < RTT_BUCKETS_MS.length) peer.rttBuckets[b]!++;
    if (k > 0) peer.jitterSum += Math.abs(rtt - peer.lastRtt);
    peer.lastRtt = rtt;
    peer.p95Cache = null;
    // Reservoir (algorithm R).
    if (k < this.reservoirSize) {
      if (k >= peer.reservoir.length) {
        const grown = new Float32Array(Math.min(this.reservoirSize, Math.max(64, peer.reservoir.length * 2)));
        grown.set(peer.reservoir);
        peer.reservoir = grown;
      }
      peer.reservoir[k] = rtt;
    } else {
      let x = peer.rng;
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      peer.rng = x;
      const j = Math.floor(((x >>> 0) / 4294967296) * (k + 1));
      if (j < this.reservoirSize) peer.reservoir[j] = rtt;
    }
    peer.spark[peer.sparkCount++ % this.sparkLength] = rtt;
    // RTT-over-time points, decimated.
    if (peer.pointSkip > 0) {
      peer.pointSkip--;
      return;
    }
    if (peer.points === this.maxPoints) {
      for (let a = 0, b = 0; b < peer.points; a++, b += 2) {
        peer.pointsT[2 * a] = peer.pointsT[2 * b]!;
        peer.pointsT[2 * a + 1] = peer.pointsT[2 * b + 1]!;
      }
      peer.points = Math.ceil(peer.points / 2);
      peer.pointStride *= 2;
    }
    if (2 * peer.points === peer.pointsT.length) {
      const grown = new Uint32Array(Math.min(2 * this.maxPoints, Math.max(128, peer.pointsT.length * 2)));
      grown.set(peer.pointsT);
      peer.pointsT = grown;
      peer.pointsRtt = new Float32Array(grown.buffer);
    }
    peer.pointsT[2 * peer.points] = Math.round(ts / 1e6);
    peer.pointsRtt[2 * peer.points + 1] = rtt;
    peer.points++;
    peer.pointSkip = peer.pointStride - 1;
  }

  private *peers(): Generator<Peer> {
    for (const p of this.peerSlots) if (p) yield p;
  }

  private peerStats(peer: Peer): PeerStats {
    const a = this.addresses;
    const [peerId, localId] =
      peer.role === 'in' ? [peer.requester, peer.responder] : [peer.responder, peer.requester];
    const has = peer.rttCount > 0;
    const spark: number[] = [];
    const sparkN = Math.min(peer.sparkCount, this.sparkLength);
    for (let k = peer.sparkCount - sparkN; k < peer.sparkCount; k++)
      spark.push(round3(peer.spark[k % this.sparkLength]!));
    return {
      flow: flowKey(a.text[peer.requester] ?? '', a.text[peer.responder] ?? ''),
      peer: a.text[peerId] ?? '',
      local: a.text[localId] ?? '',
      family: a.family[peerId] === 6 ? 6 : 4,
      role: peer.role,
      requests: peer.requests,
      replies: peer.replies,
      lost: peer.lost,
      loss: peer.expired > 0 ? peer.lost / peer.expired : 0,
      duplicates: peer.duplicates,
      late: peer.late,
      rttMinMs: has ? round3(peer.rttMin) : null,
      rttAvgMs: has ? round3(peer.rttSum / peer.rttCount) : null,
      rttMaxMs: has ? round3(peer.rttMax) : null,
      rttP95Ms: has ? round3(this.p95(peer)) : null,
      jitterMs: peer.rttCount > 1 ? round3(peer.jitterSum / (peer.rttCount - 1)) : null,
      lastSeenNs: (this.baseNs + BigInt(Math.round(peer.lastSeen))).toString(),
      spark,
    };
  }

  /** Nearest-rank 95th percentile of the reservoir. */
  private p95(peer: Peer): number {
    if (peer.p95Cache === null) {
      const n = Math.min(peer.rttCount, this.reservoirSize);
      if (this.scratch.length < n) this.scratch = new Float64Array(this.reservoirSize);
      this.scratch.set(peer.reservoir.subarray(0, n));
      peer.p95Cache = selectKth(this.scratch, n, Math.ceil(0.95 * n) - 1);
    }
    return peer.p95Cache;
  }

  /** Every live peer's raw counters, in no particular order (for the metrics exporter). */
  peerCounters(): PeerCounters[] {
    this.settle();
    const a = this.addresses;
    const out: PeerCounters[] = [];
    for (const peer of this.peers()) {
      const [peerId, localId] =
        peer.role === 'in' ? [peer.requester, peer.responder] : [peer.responder, peer.requester];
      out.push({
        peer: a.text[peerId] ?? '',
        local: a.text[localId] ?? '',
        family: a.family[peerId] === 6 ? 6 : 4,
        role: peer.role,
        requests: peer.requests,
        replies: peer.replies,
        lost: peer.lost,
        judged: peer.expired,
        duplicates: peer.duplicates,
        late: peer.late,
        rttBuckets: peer.rttBuckets.length ? peer.rttBuckets.slice() : new Float64Array(RTT_BUCKETS_S.length),
        rttCount: peer.rttCount,
        rttSumS: peer.rttSum / 1000,
      });
    }
    return out;
  }

  /** Packets by (family, ICMP type, direction 0 in, 1 out, 2 forward, 3 unknown), non-zero ones only. */
  packetsByTypeDir(): { family: 4 | 6; type: number; dir: number; count: number }[] {
    const out: { family: 4 | 6; type: number; dir: number; count: number }[] = [];
    for (let k = 0; k < this.byTypeDir.length; k++) {
      const count = this.byTypeDir[k]!;
      if (count > 0) out.push({ family: k >> 10 ? 6 : 4, type: k & 255, dir: (k >> 8) & 3, count });
    }
    return out;
  }

  /** Peers, most requests first. */
  peerList(max = 200): PeerStats[] {
    this.settle();
    // The max-th most requests first (selection, O(peers)), then only the peers at or above it are sorted:
    // sorting every peer with a comparator on each statistics tick cost tens of ms with 10 k peers.
    const slots = this.peerSlots;
    let live = 0;
    if (this.requestCounts.length < slots.length) this.requestCounts = new Float64Array(slots.length * 2);
    const counts = this.requestCounts;
    for (const p of slots) if (p) counts[live++] = -p.requests;
    if (live === 0 || max <= 0) return [];
    const threshold = live > max ? -selectKth(counts, live, max - 1) : -Infinity;
    const top: Peer[] = [];
    for (const p of slots) if (p && p.requests >= threshold) top.push(p);
    top.sort((a, b) => b.requests - a.requests || b.lastSeen - a.lastSeen);
    return top.slice(0, max).map((p) => this.peerStats(p));
  }

  /**
   * The aggregates the renderer shows. `rate` and the drop counts come from the service.
   */
  aggregates(
    extra: { rate: number; droppedKernel: number; droppedRing: number },
    maxPeers = 200,
  ): Aggregates {
    const byTypeCode: Aggregates['byTypeCode'] = [];
    for (let k = 0; k < this.byTypeCode.length; k++) {
      const count = this.byTypeCode[k]!;
      if (count > 0) byTypeCode.push({ family: k >> 16 ? 6 : 4, type: k & 255, code: (k >> 8) & 255, count });
    }
    byTypeCode.sort((a, b) => b.count - a.count);
    return {
      total: this.total,
      rate: extra.rate,
      droppedKernel: extra.droppedKernel,
      droppedRing: extra.droppedRing,
      byKind: { echo: this.byKind[0]!, error: this.byKind[1]!, nd: this.byKind[2]!, other: this.byKind[3]! },
      byDir: { in: this.byDir[0]!, out: this.byDir[1]!, fwd: this.byDir[2]!, unknown: this.byDir[3]! },
      byTypeCode,
      topTalkers: this.topTalkers(10),
      peers: this.peerList(maxPeers),
      series: this.series(),
      ...(this.evicted.peers > 0 ? { evictedPeers: { ...this.evicted } } : {}),
    };
  }

  /** The addresses with the most packets; reclaimed addresses count with what they had (the largest kept). */
  topTalkers(count: number): Aggregates['topTalkers'] {
    const n = Math.min(this.addresses.text.length, this.talkers.length << ID_BLOCK_SHIFT);
    const want = count + this.evictedTalkers.size;
    // The largest `want`, most first, and the least of them once there are that many (a spoofed-source
    // flood makes millions of ids: one tight pass over each block, the list touched only by a larger count).
    const top: { id: number; packets: number }[] = [];
    let least = 0;
    for (let b = 0; b < this.talkers.length && b << ID_BLOCK_SHIFT < n; b++) {
      const block = this.talkers[b]!;
      const base = b << ID_BLOCK_SHIFT;
      const end = Math.min(ID_BLOCK_MASK + 1, n - base) << 1;
      for (let k = base === 0 ? 2 : 0; k < end; k += 2) {
        const p = block[k]!;
        if (p <= least) continue;
        let at = top.length;
        while (at > 0 && top[at - 1]!.packets < p) at--;
        top.splice(at, 0, { id: base + (k >>> 1), packets: p });
        if (top.length > want) top.pop();
        if (top.length === want && want > 0) least = top[want - 1]!.packets;
      }
    }
    const out = top.map(({ id, packets }) => ({
      address: this.addresses.text[id]!,
      packets,
      bytes: this.talkers[id >>> ID_BLOCK_SHIFT]![((id & ID_BLOCK_MASK) << 1) + 1]!,
    }));
    for (const [address, t] of this.evictedTalkers) {
      const same = out.find((o) => o.address === address);
      if (same) {
        same.packets += t.packets;
        same.bytes += t.bytes;
      } else out.push({ address, packets: t.packets, bytes: t.bytes });
    }
    out.sort((a, b) => b.packets - a.packets);
    return out.slice(0, count);
  }

  series(): Aggregates['series'] {
    const out: Aggregates['series'] = { tSec: [], echo: [], error: [], nd: [], other: [] };
    if (this.newestSec < 0) return out;
    for (let sec = this.newestSec - SERIES_SECONDS + 1; sec <= this.newestSec; sec++) {
      const slot = sec & (SERIES_SLOTS - 1);
      const valid = this.slotSec[slot] === sec;
      out.tSec.push(sec);
      KINDS.forEach((kind, k) => out[kind].push(valid ? this.slotCounts[slot * 4 + k]! : 0));
    }
    return out;
  }

  /**
   * RTT over time of one flow (`requester>responder`, as PeerStats.flow) or of a peer address (the flow
   * with the most requests when several locals talk to it), at most `maxPoints` points evenly picked
   * from the kept ones. Times are ms since the epoch.
   */
  peerSeries(peerAddress: string, maxPoints = 2000): PeerSeries {
    this.settle();
    let best: Peer | null = null;
    const text = this.addresses.text;
    for (const p of this.peers()) {
      const id = p.role === 'in' ? p.requester : p.responder;
      const match = peerAddress.includes('>')
        ? flowKey(text[p.requester] ?? '', text[p.responder] ?? '') === peerAddress
        : text[id] === peerAddress;
      if (match && (best === null || p.requests > best.requests)) best = p;
    }
    const out: PeerSeries = { peer: peerAddress, tMs: [], rttMs: [], lostTMs: [] };
    if (best === null) return out;
    const baseMs = Number(this.baseNs / 1_000_000n);
    const baseFracMs = Number(this.baseNs % 1_000_000n) / 1e6;
    const lost = Math.min(best.lostCount, LOST_TIMES);
    for (let k = best.lostCount - lost; k < best.lostCount; k++)
      out.lostTMs!.push(baseMs + baseFracMs + best.lostT[k % LOST_TIMES]!);
    if (best.points === 0) return out;
    const n = best.points;
    const count = Math.min(n, Math.max(1, maxPoints));
    for (let j = 0; j < count; j++) {
      const k = Math.floor((j * n) / count);
      out.tMs.push(baseMs + baseFracMs + best.pointsT[2 * k]!);
      out.rttMs.push(round3(best.pointsRtt[2 * k + 1]!));
    }
    return out;
  }

  get peerCount(): number {
    return this.livePeers;
  }

  /** Bytes held: every typed array (capacity included) exactly; the peer objects about. */
  get bytesAllocated(): number {
    this.settle();
    let bytes = this.peerSlots.length * 8;
    for (const p of this.peerSlots) {
      if (p === null) continue;
      // The Peer object (header and 26 fields) and, once it has an RTT, its five typed-array objects, about;
      // then their buffers (pointsRtt shares pointsT's; a peer without an RTT shares empty ones).
      bytes += 240 + (p.rttBuckets.length ? 5 * 80 : 0);
      bytes += p.rttBuckets.byteLength + p.reservoir.byteLength + p.spark.byteLength;
      bytes += p.pointsT.byteLength + p.lostT.byteLength;
    }
    return (
      bytes +
      this.scratch.byteLength +
      this.requestCounts.byteLength +
      this.byKind.byteLength +
      this.byDir.byteLength +
      this.byTypeCode.byteLength +
      this.byTypeDir.byteLength +
      this.addressCounterBytes +
      this.slotSec.byteLength +
      this.slotCounts.byteLength +
      this.outFlow.length * 30 +
      this.flowEnds.byteLength
    );
  }

  clear(): void {
    this.total = 0;
    this.byKind.fill(0);
    this.byDir.fill(0);
    this.byTypeCode.fill(0);
    this.byTypeDir.fill(0);
    this.generation++;
    // A new capture makes the blocks it needs.
    this.talkers.length = 1;
    this.talkers[0]!.fill(0);
    this.slotSec.fill(-1);
    this.slotCounts.fill(0);
    this.newestSec = -1;
    this.cleared();
  }
}

/** A flow's name: who asked and who answered. */
export function flowKey(requester: string, responder: string): string {
  return `${requester}>${responder}`;
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}
