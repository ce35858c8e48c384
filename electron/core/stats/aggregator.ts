/**
 * Aggregates and per-peer echo statistics, kept incrementally: `update(store, from, to)` after each
 * batch makes one pass over the new records' columns.
 *
 * Echo matching: a reply matches the request with the same (requester, responder, id, seq), the
 * requester being the reply's destination. Replies may arrive in any order (a reply to an older seq
 * after a newer one still matches). Each matched reply gets its RTT written to `chunk.rtt` (the
 * service needs no other matcher). Per request, in capture time (record timestamps, not wall time):
 * - answered: a reply; its RTT feeds min/avg/max/p95/jitter, however late (as `tshark -z icmp,srt` and
 *   stats/srt.ts count them); one after `lateAfterNs` (default 1 s, srt.ts's threshold) also counts as late;
 * - no reply within `echoTimeoutNs` (default 2 s) by the newest record's time: lost (counted once its
 *   timeout passed; a reply after that takes it back: the request was answered, late);
 * - a second (third...) reply to the same request: a duplicate (RTT written, not in the statistics).
 * - a request to a broadcast or multicast address (`ping -b`, `ping ff02::1`): each host that answers is
 *   a flow of its own (requester > responder) with its own replies and RTTs, never a duplicate, and nothing
 *   is lost to the group address; a responder's requests are the group requests from the first one it
 *   answered on (as srt.ts's per-peer figures), so one it stops answering shows as loss.
 * Requests are remembered for `retainNs` (default 4 s, at least twice the timeout) so late replies
 * and duplicates are recognised, and at most `maxOutstanding` of them (default 4 Mi, 21 bytes each
 * plus 24 in the hash table; the ring starts at 64 Ki and doubles as needed), oldest forgotten first
 * (judged early if its timeout has not passed yet), so memory is bounded.
 *
 * A request judged lost gets MISC_F_NO_RESPONSE on its record (cleared again if a timely reply turns up
 * out of order), so the table can say "no response found" and the filter can select them.
 *
 * Peers: one entry per (requester, responder) pair, a flow, named `requester>responder`. The role comes from the first request's
 * direction: out (we pinged the peer: the responder is the peer), in (the peer pinged us: the
 * requester is the peer), otherwise unknown (the responder is the peer). At most `maxPeers` entries;
 * beyond that the least recently seen are evicted.
 *
 * p95 is exact up to `reservoirSize` (1024) RTTs per peer and from a uniform random sample of that
 * size (Vitter's algorithm R, seeded, so results are reproducible) after. Jitter is the mean absolute
 * difference of consecutive RTTs, in reply order. The RTT-over-time series keeps at most
 * `maxPointsPerPeer` points per peer: when full, every other point is dropped and from then on only
 * every 2nd (4th, ...) reply is kept, so the series always spans the whole history evenly.
 */
import type { Aggregates, MessageKindName, PeerSeries, PeerStats } from '../../common/contract.js';
import { messageKind } from '../../common/icmp.js';
import { CHUNK_MASK, CHUNK_SHIFT, MISC_F_HAS_ECHO, MISC_F_NO_RESPONSE, type RecordStore } from '../store.js';
import { PairTable } from './pair-table.js';
import { isGroup } from './srt.js';

export interface AggregatorOptions {
  echoTimeoutNs?: number;
  /** Replies later than this count as late (default 1 s, as stats/srt.ts); they are still replies. */
  lateAfterNs?: number;
  retainNs?: number;
  maxOutstanding?: number;
  maxPeers?: number;
  maxPointsPerPeer?: number;
  reservoirSize?: number;
  sparkLength?: number;
}

export interface AddressNames {
  readonly text: readonly string[];
  readonly family: readonly number[];
  /**
   * Reference counting (ingest.ts AddressTable): a peer holds its two addresses while it is kept, and a
   * reclaimed id's per-address counters are folded before the id is reused. Absent: ids are never reused.
   */
  retain?(id: number): void;
  release?(id: number): void;
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
/** Per (family, type): kind index (low 2 bits), 4 = echo request, 8 = echo reply. */
const TYPE_INFO = (() => {
  const t = new Uint8Array(512);
  for (let type = 0; type < 256; type++) {
    t[type] = KINDS.indexOf(messageKind(4, type));
    t[256 + type] = KINDS.indexOf(messageKind(6, type));
  }
  t[8]! |= 4;
  t[0]! |= 8;
  t[256 + 128]! |= 4;
  t[256 + 129]! |= 8;
  return t;
})();

const ST_PENDING = 0;
const ST_ANSWERED = 1;
const ST_MASK = 3;
/** Broadcast and multicast requests remembered for responders answering for the first time (a ring). */
const GROUP_REQUESTS = 4096;
/** The request is findable through the `pending` hash table (it left its peer's recent cache). */
const ST_IN_HASH = 4;
/** Per-peer direct-mapped cache of recent requests, by the low bits of id << 16 | seq. */
const RECENT = 64;
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
  /** RTT histogram, per bucket of RTT_BUCKETS_S; above the last bound only rttCount counts. */
  rttBuckets = new Float64Array(RTT_BUCKETS_S.length);
  jitterSum = 0;
  lastRtt = NaN;
  reservoir = new Float32Array(64);
  spark: Float32Array;
  sparkCount = 0;
  /**
   * The RTT-over-time points, interleaved in one buffer so an append touches one cache line:
   * pointsT[2k] = ms since the capture's base time, pointsRtt[2k + 1] = RTT in ms.
   */
  pointsT = new Uint32Array(128);
  pointsRtt = new Float32Array(this.pointsT.buffer);
  points = 0;
  pointStride = 1;
  pointSkip = 0;
  lastSeen = 0;
  /** The newest record of this flow (request or reply): the ring buffer has let it go once it is below. */
  lastIndex = -1;
  /** When the last LOST_TIMES lost requests were sent (ms since the capture's base time), a ring. */
  lostT = new Float64Array(0);
  lostCount = 0;
  evicted = false;
  p95Cache: number | null = null;

  constructor(
    /** Place in Aggregator.peerSlots (reused after eviction). */
    readonly index: number,
    readonly requester: number,
    readonly responder: number,
    readonly role: 'out' | 'in' | 'unknown',
    sparkLength: number,
  ) {
    this.spark = new Float32Array(sparkLength);
  }
}

export class Aggregator {
  readonly echoTimeoutNs: number;
  private readonly lateAfterNs: number;
  private readonly retainNs: number;
  private readonly maxOutstanding: number;
  private readonly maxPeers: number;
  private readonly maxPoints: number;
  private readonly reservoirSize: number;
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
  private packets = new Float64Array(1024);
  private bytes = new Float64Array(1024);
  private readonly slotSec = new Float64Array(SERIES_SLOTS).fill(-1);
  private readonly slotCounts = new Float64Array(SERIES_SLOTS * 4);
  private newestSec = -1;
  /** Newest record time seen (tsRel ns). */
  private newest = -Infinity;

  /** (requester, responder) -> index into peerSlots. */
  private readonly peerIds = new PairTable(1024);
  private readonly peerSlots: (Peer | null)[] = [];
  /** Indices of evicted peers, each with the request number after which it may be reused. */
  private readonly freeSlots: { index: number; after: number }[] = [];
  private livePeers = 0;
  /**
   * Each peer's recent requests, direct-mapped by the low bits of id << 16 | seq: at
   * ((peer * RECENT) + k) * 3 the request number (-1: none), its time, and (id << 16 | seq) * 4 + state.
   * One cache line answers the common case (a reply to one of the peer's last requests) without the
   * hash table or the ring's scattered slots.
   */
  private recent = new Float64Array(64 * RECENT * 3).fill(-1);
  /** (peer index, id << 16 | seq) -> ring slot, for unanswered requests that left the recent cache. */
  private pending = new PairTable(1 << 16);
  // Remembered requests, oldest first: a ring indexed by request number % capacity; it grows up to
  // maxOutstanding.
  private capacity = 1 << 16;
  private reqTs = new Float64Array(this.capacity);
  private reqState = new Uint8Array(this.capacity);
  private reqIdSeq = new Uint32Array(this.capacity);
  /** Peer index of each request, -1 once forgotten (typed, so GC never scans the ring). */
  private reqPeer = new Int32Array(this.capacity).fill(-1);
  /** Record index of each request, to mark the ones without a response. */
  private reqIndex = new Uint32Array(this.capacity);
  private store: RecordStore | null = null;
  /** Next request number; the oldest remembered; the oldest whose timeout has not been judged. */
  private tail = 0;
  private head = 0;
  private judged = 0;
  /** xorshift32 state for the reservoirs (seeded: results are reproducible). */
  private rng = 0x1c3f;
  private baseNs = 0n;
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
  /** The store whose evictions this follows, and the capture time of the last sweep for record-less peers. */
  private watched: RecordStore | null = null;
  /** Per address id: 0 not known yet, 1 unicast, 2 broadcast or multicast. */
  private groupFlags = new Uint8Array(1024);
  /** Recent group requests (a ring of GROUP_REQUESTS), findable by (requester, id << 16 | seq). */
  private readonly groupPending = new PairTable(GROUP_REQUESTS);
  private groupHead = 0;
  private readonly groupFrom = new Uint32Array(GROUP_REQUESTS);
  private readonly groupIdSeq = new Uint32Array(GROUP_REQUESTS);
  private readonly groupTs = new Float64Array(GROUP_REQUESTS);
  private readonly groupDir = new Uint8Array(GROUP_REQUESTS);
  private readonly groupIndex = new Uint32Array(GROUP_REQUESTS);
  private readonly groupKey: string[] = new Array<string>(GROUP_REQUESTS).fill('');
  /** `requester group` (addresses) -> the flows of the responders that answered its group requests. */
  private readonly groupAnswerers = new Map<string, Peer[]>();
  private sweptAt = -Infinity;

  constructor(
    private readonly addresses: AddressNames,
    options: AggregatorOptions = {},
  ) {
    this.echoTimeoutNs = options.echoTimeoutNs ?? 2e9;
    this.lateAfterNs = options.lateAfterNs ?? 1e9;
    this.retainNs = Math.max(options.retainNs ?? 4e9, 2 * this.echoTimeoutNs);
    // A power of two (rounded down) so ring slots are a mask away.
    this.maxOutstanding = 2 ** Math.floor(Math.log2(Math.max(16, options.maxOutstanding ?? 1 << 22)));
    if (this.capacity > this.maxOutstanding) {
      this.capacity = this.maxOutstanding;
      this.reqTs = new Float64Array(this.capacity);
      this.reqState = new Uint8Array(this.capacity);
      this.reqIdSeq = new Uint32Array(this.capacity);
      this.reqPeer = new Int32Array(this.capacity).fill(-1);
      this.reqIndex = new Uint32Array(this.capacity);
    }
    this.maxPeers = options.maxPeers ?? 10_000;
    this.maxPoints = Math.max(4, options.maxPointsPerPeer ?? 1024);
    this.reservoirSize = options.reservoirSize ?? 1024;
    this.sparkLength = options.sparkLength ?? 32;
    addresses.onFree?.((id) => {
      this.foldTalker(id);
      if (id < this.groupFlags.length) this.groupFlags[id] = 0;
    });
  }

  /** A reclaimed address: its cumulative counts join the evicted top talkers (or go, when small). */
  private foldTalker(id: number): void {
    const packets = this.packets[id] ?? 0;
    if (packets === 0) return;
    const bytes = this.bytes[id]!;
    this.packets[id] = 0;
    this.bytes[id] = 0;
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
    this.store = store;
    if (this.watched !== store) {
      this.watched = store;
      store.onEvict((_, first) => {
        if (this.watched === store) this.sweepPeers(first);
      });
    }
    this.baseNs = store.baseNs ?? 0n;
    const baseFracNs = Number(this.baseNs % 1_000_000_000n);
    const baseSec = Number(this.baseNs / 1_000_000_000n);
    this.growAddresses(this.addresses.text.length);
    const packets = this.packets;
    const bytes = this.bytes;
    const byKind = this.byKind;
    const byDir = this.byDir;
    const byTypeCode = this.byTypeCode;
    const byTypeDir = this.byTypeDir;
    let newest = this.newest;
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
      const { tsRel, src, dst, meta, idSeq, misc, len, rtt } = chunk;
      for (let i = start; i < stop; i++) {
        const m = meta[i]!;
        const ts = tsRel[i]!;
        const s = src[i]!;
        const d = dst[i]!;
        const l = len[i]! & 0xffff;
        const v6 = (m >>> 17) & 256;
        const info = TYPE_INFO[(m & 255) | v6]!;
        const kind = info & 3;
        byKind[kind]!++;
        byDir[(m >>> 16) & 3]!++;
        byTypeCode[(v6 << 8) | (m & 0xffff)]!++;
        byTypeDir[(v6 << 2) | (((m >>> 16) & 3) << 8) | (m & 255)]!++;
        packets[s]!++;
        bytes[s]! += l;
        if (d !== s) {
          packets[d]!++;
          bytes[d]! += l;
        }
        if (ts > newest) newest = ts;
        if (ts < secLo || ts >= secHi) {
          // Entering another second (records are nearly in time order, so this is rare).
          const sec = baseSec + Math.floor((ts + baseFracNs) / 1e9);
          secLo = (sec - baseSec) * 1e9 - baseFracNs;
          secHi = secLo + 1e9;
          curValid = this.seriesSlot(sec);
          curSlot = (sec & (SERIES_SLOTS - 1)) * 4;
        }
        if (curValid) slotCounts[curSlot + kind]!++;
        if (info & 12 && misc[i]! & MISC_F_HAS_ECHO) {
          if (info & 4) this.request(s, d, idSeq[i]!, ts, (m >>> 16) & 3, (c << CHUNK_SHIFT) | i);
          // Authoritative for replies: NaN when unmatched, whatever an earlier matcher wrote.
          else rtt[i] = this.reply(s, d, idSeq[i]!, ts, (c << CHUNK_SHIFT) | i);
        }
      }
      at += stop - start;
    }
    this.total += to - from;
    this.newest = newest;
    this.judge();
    if (this.livePeers > this.maxPeers) this.evictPeers();
    // Peers whose records left the ring buffer while they could still be answered go once they cannot.
    if (store.firstIndex > 0 && newest - this.sweptAt > this.retainNs / 4) this.sweepPeers(store.firstIndex);
  }

  /**
   * A ring buffer let go of every record below `first`: the peers with no record left and no request that
   * can still be answered are folded into the evicted-peers summary (their addresses released), so the
   * statistics stay proportional to the records held. A peer that still has records keeps all its history.
   */
  private sweepPeers(first: number): void {
    this.sweptAt = this.newest;
    const quiet = this.newest - this.retainNs;
    for (const peer of this.peerSlots) {
      if (peer !== null && !peer.evicted && peer.lastIndex < first && peer.lastSeen < quiet)
        this.dropPeer(peer);
    }
  }

  private dropPeer(peer: Peer): void {
    peer.evicted = true;
    this.peerIds.delete(peer.requester, peer.responder);
    this.peerSlots[peer.index] = null;
    // An evicted peer's index is reused only once every request that names it is forgotten.
    this.freeSlots.push({ index: peer.index, after: this.tail });
    this.livePeers--;
    const e = this.evicted;
    e.peers++;
    e.requests += peer.requests;
    e.replies += peer.replies;
    e.lost += peer.lost;
    e.duplicates += peer.duplicates;
    e.late += peer.late;
    this.addresses.release?.(peer.requester);
    this.addresses.release?.(peer.responder);
  }

  private growAddresses(n: number): void {
    if (n <= this.packets.length) return;
    const size = Math.max(n, this.packets.length * 2);
    const p = new Float64Array(size);
    p.set(this.packets);
    const b = new Float64Array(size);
    b.set(this.bytes);
    this.packets = p;
    this.bytes = b;
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

  private request(from: number, to: number, idSeq: number, ts: number, dir: number, index: number): void {
    if (this.isGroup(to)) {
      this.groupRequest(from, to, idSeq, ts, dir, index);
      return;
    }
    const p = this.peerIds.get(from, to);
    this.enqueue(p < 0 ? this.newPeer(from, to, dir) : this.peerSlots[p]!, idSeq, ts, index);
  }

  /** A new flow (requester `from`, responder `to`); its role from the first request's direction. */
  private newPeer(from: number, to: number, dir: number): Peer {
    const role = dir === 1 ? 'out' : dir === 0 ? 'in' : 'unknown';
    // An evicted peer's index is reused only once every request that names it is forgotten.
    let p: number;
    const free = this.freeSlots[0];
    if (free !== undefined && free.after < this.head) {
      this.freeSlots.shift();
      p = free.index;
    } else p = this.peerSlots.length;
    const peer = new Peer(p, from, to, role, this.sparkLength);
    this.addresses.retain?.(from);
    this.addresses.retain?.(to);
    this.peerSlots[p] = peer;
    if ((p + 1) * RECENT * 3 > this.recent.length) {
      const grown = new Float64Array(this.recent.length * 2).fill(-1);
      grown.set(this.recent);
      this.recent = grown;
    }
    this.recent.fill(-1, p * RECENT * 3, (p + 1) * RECENT * 3);
    this.peerIds.set(from, to, p);
    this.livePeers++;
    return peer;
  }

  /** Whether address `id` is a broadcast or multicast address (cached per id until it is reclaimed). */
  private isGroup(id: number): boolean {
    if (id >= this.groupFlags.length) {
      const grown = new Uint8Array(Math.max(id + 1, this.groupFlags.length * 2));
      grown.set(this.groupFlags);
      this.groupFlags = grown;
    }
    let f = this.groupFlags[id]!;
    if (f === 0) {
      const family = this.addresses.family[id] === 6 ? 6 : 4;
      f = isGroup(family, this.addresses.text[id] ?? '') ? 2 : 1;
      this.groupFlags[id] = f;
    }
    return f === 2;
  }

  /**
   * A request to a broadcast or multicast address: every host there may answer, each one a flow of its own.
   * The responders that answered this requester's earlier requests to the group get it as a request of
   * theirs now (judged lost when they do not answer); one answering for the first time gets it when its
   * reply comes (`groupReply`). The group address itself is no flow: nothing is lost to it.
   */
  private groupRequest(
    from: number,
    group: number,
    idSeq: number,
    ts: number,
    dir: number,
    index: number,
  ): void {
    const g = this.groupHead++ & (GROUP_REQUESTS - 1);
    const old = this.groupPending.get(this.groupFrom[g]!, this.groupIdSeq[g]!);
    if (old === g) this.groupPending.delete(this.groupFrom[g]!, this.groupIdSeq[g]!);
    this.groupFrom[g] = from;
    this.groupIdSeq[g] = idSeq;
    this.groupTs[g] = ts;
    this.groupDir[g] = dir;
    this.groupIndex[g] = index;
    this.groupKey[g] = `${this.addresses.text[from]} ${this.addresses.text[group]}`;
    this.groupPending.set(from, idSeq, g);
    const answerers = this.groupAnswerers.get(this.groupKey[g]);
    if (answerers === undefined) return;
    let k = 0;
    for (const peer of answerers) {
      if (peer.evicted) continue;
      answerers[k++] = peer;
      this.enqueue(peer, idSeq, ts, index);
    }
    answerers.length = k;
  }

  /**
   * A reply no request of its flow explains: when it answers a recent group request of its destination, its
   * source becomes (or is) a responder of that group and the request one of its flow's. Returns whether it did.
   */
  private groupReply(from: number, to: number, idSeq: number, ts: number): boolean {
    const g = this.groupPending.get(to, idSeq);
    if (g < 0 || this.groupFrom[g] !== to || this.groupIdSeq[g] !== idSeq) return false;
    const sent = this.groupTs[g]!;
    if (sent > ts || ts - sent > this.retainNs) return false;
    const p = this.peerIds.get(to, from);
    const peer = p < 0 ? this.newPeer(to, from, this.groupDir[g]!) : this.peerSlots[p]!;
    const key = this.groupKey[g]!;
    let answerers = this.groupAnswerers.get(key);
    if (answerers === undefined) {
      answerers = [];
      this.groupAnswerers.set(key, answerers);
    }
    if (!answerers.includes(peer)) answerers.push(peer);
    this.enqueue(peer, idSeq, sent, this.groupIndex[g]!);
    return true;
  }

  /** One more request of `peer`'s flow, remembered until answered, judged and forgotten. */
  private enqueue(peer: Peer, idSeq: number, ts: number, index: number): void {
    const p = peer.index;
    {
      // The same request seen again while it waits (a loopback packet seen leaving and arriving, or one
      // packet at two capture points): one request, not a second one whose first copy is then judged lost.
      const at = (p * RECENT + (idSeq & (RECENT - 1))) * 3;
      const r = this.recent;
      if (
        r[at]! >= this.head &&
        r[at + 2]! === idSeq * 4 + ST_PENDING &&
        ts >= r[at + 1]! &&
        ts - r[at + 1]! < this.echoTimeoutNs
      ) {
        peer.lastSeen = ts;
        peer.lastIndex = index;
        return;
      }
    }
    peer.requests++;
    peer.lastSeen = ts;
    peer.lastIndex = index;
    if (this.tail - this.head === this.capacity) {
      if (this.capacity < this.maxOutstanding) this.growRing();
      else this.forget(true);
    }
    const n = this.tail++;
    const slot = n & (this.capacity - 1);
    this.reqTs[slot] = ts;
    this.reqState[slot] = ST_PENDING;
    this.reqIdSeq[slot] = idSeq;
    this.reqPeer[slot] = p;
    this.reqIndex[slot] = index;
    // The request this one displaces from the peer's recent cache stays findable through the hash
    // table while it is unanswered (a request with the same id and seq is superseded, as before).
    const r = this.recent;
    const at = (p * RECENT + (idSeq & (RECENT - 1))) * 3;
    const old = r[at]!;
    if (old >= this.head) {
      const tag = r[at + 2]!;
      const oldState = tag % 4;
      const oldIdSeq = (tag - oldState) / 4;
      if (oldState === ST_PENDING && oldIdSeq !== idSeq) {
        const oldSlot = old & (this.capacity - 1);
        this.pending.set(p, oldIdSeq, oldSlot);
        this.reqState[oldSlot]! |= ST_IN_HASH;
      }
    }
    r[at] = n;
    r[at + 1] = ts;
    r[at + 2] = idSeq * 4 + ST_PENDING;
  }

  /** Doubles the ring (request numbers keep their order; slots move). */
  private growRing(): void {
    const old = {
      ts: this.reqTs,
      state: this.reqState,
      idSeq: this.reqIdSeq,
      peer: this.reqPeer,
      index: this.reqIndex,
    };
    const oldMask = this.capacity - 1;
    this.capacity = Math.min(this.maxOutstanding, this.capacity * 2);
    const mask = this.capacity - 1;
    this.reqTs = new Float64Array(this.capacity);
    this.reqState = new Uint8Array(this.capacity);
    this.reqIdSeq = new Uint32Array(this.capacity);
    this.reqPeer = new Int32Array(this.capacity).fill(-1);
    this.reqIndex = new Uint32Array(this.capacity);
    const pending = new PairTable(this.pending.size + 1024);
    for (let n = this.head; n < this.tail; n++) {
      const from = n & oldMask;
      const to = n & mask;
      const p = old.peer[from]!;
      this.reqTs[to] = old.ts[from]!;
      this.reqState[to] = old.state[from]!;
      this.reqIdSeq[to] = old.idSeq[from]!;
      this.reqPeer[to] = p;
      this.reqIndex[to] = old.index[from]!;
      if (p >= 0 && old.state[from]! & ST_IN_HASH && this.pending.get(p, old.idSeq[from]!) === from) {
        pending.set(p, old.idSeq[from]!, to);
      }
    }
    this.pending = pending;
  }

  /** Returns the RTT in ms of a reply matched to its request, NaN for an unmatched one. */
  private reply(from: number, to: number, idSeq: number, ts: number, index: number, group = true): number {
    const p = this.peerIds.get(to, from);
    if (p < 0) {
      // Perhaps a responder to a broadcast or multicast request, answering for the first time.
      return group && this.groupReply(from, to, idSeq, ts)
        ? this.reply(from, to, idSeq, ts, index, false)
        : NaN;
    }
    const peer = this.peerSlots[p]!;
    peer.lastIndex = index;
    const r = this.recent;
    const at = (p * RECENT + (idSeq & (RECENT - 1))) * 3;
    let n = r[at]!;
    let sent: number;
    let state = r[at + 2]! % 4;
    const recent = n >= this.head && (r[at + 2]! - state) / 4 === idSeq;
    if (recent) {
      sent = r[at + 1]!;
    } else {
      const slot = this.pending.get(p, idSeq);
      if (slot < 0 || this.reqPeer[slot] !== p || this.reqIdSeq[slot] !== idSeq) {
        return group && this.groupReply(from, to, idSeq, ts)
          ? this.reply(from, to, idSeq, ts, index, false)
          : NaN;
      }
      n = this.numberOf(slot);
      sent = this.reqTs[slot]!;
      state = this.reqState[slot]! & ST_MASK;
    }
    // Forgetting happens per batch; deciding by age here keeps results independent of batching.
    if (sent > ts || ts - sent > this.retainNs) return NaN;
    const rttMs = (ts - sent) / 1e6;
    peer.lastSeen = ts;
    const slot = n & (this.capacity - 1);
    if (state !== ST_PENDING) {
      peer.duplicates++;
    } else {
      this.reqState[slot]! |= ST_ANSWERED;
      if (recent) r[at + 2] = idSeq * 4 + ST_ANSWERED;
      peer.replies++;
      // Late (as `tshark -z icmp,srt` and stats/srt.ts count them): still a reply, with its RTT.
      if (ts - sent > this.lateAfterNs) peer.late++;
      // A reply seen after its request was judged lost (it came after the timeout, or records came slightly
      // out of order): answered after all.
      if (n < this.judged) {
        peer.lost--;
        this.markNoResponse(this.reqIndex[slot]!, false);
      }
      this.sample(peer, Math.fround(rttMs), ts);
    }
    return rttMs;
  }

  /** The request number held in a live ring slot. */
  private numberOf(slot: number): number {
    const mask = this.capacity - 1;
    return this.head + ((slot - (this.head & mask)) & mask);
  }

  private sample(peer: Peer, rtt: number, ts: number): void {
    const k = peer.rttCount++;
    peer.rttSum += rtt;
    if (rtt < peer.rttMin) peer.rttMin = rtt;
    if (rtt > peer.rttMax) peer.rttMax = rtt;
    for (let b = 0; b < RTT_BUCKETS_MS.length; b++) {
      if (rtt <= RTT_BUCKETS_MS[b]!) {
        peer.rttBuckets[b]!++;
        break;
      }
    }
    if (k > 0) peer.jitterSum += Math.abs(rtt - peer.lastRtt);
    peer.lastRtt = rtt;
    peer.p95Cache = null;
    // Reservoir (algorithm R).
    if (k < this.reservoirSize) {
      if (k >= peer.reservoir.length) {
        const grown = new Float32Array(Math.min(this.reservoirSize, peer.reservoir.length * 2));
        grown.set(peer.reservoir);
        peer.reservoir = grown;
      }
      peer.reservoir[k] = rtt;
    } else {
      let x = this.rng;
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      this.rng = x;
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
      const grown = new Uint32Array(Math.min(2 * this.maxPoints, peer.pointsT.length * 2));
      grown.set(peer.pointsT);
      peer.pointsT = grown;
      peer.pointsRtt = new Float32Array(grown.buffer);
    }
    peer.pointsT[2 * peer.points] = Math.round(ts / 1e6);
    peer.pointsRtt[2 * peer.points + 1] = rtt;
    peer.points++;
    peer.pointSkip = peer.pointStride - 1;
  }

  /**
   * Idle wall time since the newest record arrived (live captures): requests whose wait is over by then
   * are judged lost now, not when the next record comes (`ping -c 3 deadhost` shows 100 % loss, not
   * 0 % forever). Elapsed time, not the wall clock itself, so record clocks need not be the wall clock.
   * Returns true when it judged any request.
   */
  advanceIdle(elapsedNs: number): boolean {
    if (this.newest === -Infinity || !(elapsedNs > 0)) return false;
    const before = this.judged;
    this.judge(this.newest + elapsedNs);
    return this.judged !== before;
  }

  /** The capture stopped: every request still waiting is judged (lost unless answered). */
  finish(): boolean {
    const before = this.judged;
    this.judge(Infinity);
    return this.judged !== before;
  }

  /** Judges requests whose timeout has passed by `now` (the newest record's time), forgets old ones. */
  private judge(now = this.newest): void {
    const limit = now - this.echoTimeoutNs;
    const mask = this.capacity - 1;
    while (this.judged < this.tail) {
      const slot = this.judged & mask;
      if (!(this.reqTs[slot]! < limit)) break;
      this.judgeSlot(slot);
      this.judged++;
    }
    const forgetBefore = this.newest - this.retainNs;
    while (this.head < this.judged && this.reqTs[this.head & mask]! < forgetBefore) this.forget(false);
  }

  private judgeSlot(slot: number): void {
    const p = this.reqPeer[slot]!;
    const peer = p < 0 ? null : this.peerSlots[p];
    if (!peer || peer.evicted) return;
    peer.expired++;
    if ((this.reqState[slot]! & ST_MASK) !== ST_ANSWERED) {
      peer.lost++;
      if (peer.lostT.length === 0) peer.lostT = new Float64Array(LOST_TIMES);
      peer.lostT[peer.lostCount++ % LOST_TIMES] = Math.round(this.reqTs[slot]! / 1e6);
      this.markNoResponse(this.reqIndex[slot]!, true);
    }
  }

  private markNoResponse(index: number, on: boolean): void {
    const chunk = this.store?.chunks[index >>> CHUNK_SHIFT];
    const i = index & CHUNK_MASK;
    if (!chunk || i >= chunk.misc.length) return; // evicted by a ring-buffer limit
    chunk.misc[i] = on ? (chunk.misc[i]! | MISC_F_NO_RESPONSE) >>> 0 : chunk.misc[i]! & ~MISC_F_NO_RESPONSE;
  }

  /** Forgets the oldest remembered request (`early`: the ring is full, judge it now if not judged). */
  private forget(early: boolean): void {
    const n = this.head;
    const slot = n & (this.capacity - 1);
    if (early && this.judged <= n) {
      this.judgeSlot(slot);
      this.judged = n + 1;
    }
    const p = this.reqPeer[slot]!;
    if (p >= 0 && this.reqState[slot]! & ST_IN_HASH && this.pending.get(p, this.reqIdSeq[slot]!) === slot) {
      this.pending.delete(p, this.reqIdSeq[slot]!);
    }
    this.reqPeer[slot] = -1;
    this.head++;
  }

  private *peers(): Generator<Peer> {
    for (const p of this.peerSlots) if (p !== null && !p.evicted) yield p;
  }

  private evictPeers(): void {
    const keep = Math.floor(this.maxPeers * 0.9);
    const live = [...this.peers()].sort((a, b) => b.lastSeen - a.lastSeen);
    for (let k = keep; k < live.length; k++) this.dropPeer(live[k]!);
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
      const sorted = peer.reservoir.slice(0, n).sort();
      peer.p95Cache = sorted[Math.ceil(0.95 * n) - 1]!;
    }
    return peer.p95Cache;
  }

  /** Every live peer's raw counters, in no particular order (for the metrics exporter). */
  peerCounters(): PeerCounters[] {
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
        rttBuckets: peer.rttBuckets.slice(),
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
    const all = [...this.peers()];
    all.sort((a, b) => b.requests - a.requests || b.lastSeen - a.lastSeen);
    return all.slice(0, max).map((p) => this.peerStats(p));
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
    const n = Math.min(this.addresses.text.length, this.packets.length);
    const want = count + this.evictedTalkers.size;
    const top: number[] = [];
    for (let id = 1; id < n; id++) {
      const p = this.packets[id]!;
      if (p === 0) continue;
      if (top.length === want && p <= this.packets[top[want - 1]!]!) continue;
      let at = top.length;
      while (at > 0 && this.packets[top[at - 1]!]! < p) at--;
      top.splice(at, 0, id);
      if (top.length > want) top.pop();
    }
    const out = top.map((id) => ({
      address: this.addresses.text[id]!,
      packets: this.packets[id]!,
      bytes: this.bytes[id]!,
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

  /** Requests currently remembered (for tests and memory accounting). */
  get remembered(): number {
    return this.tail - this.head;
  }

  get peerCount(): number {
    return this.livePeers;
  }

  /** Approximate bytes held. */
  get bytesAllocated(): number {
    let perPeer = 0;
    for (const p of this.peers()) {
      perPeer += 200 + p.reservoir.byteLength + p.spark.byteLength + RECENT * 24;
      perPeer += p.pointsT.byteLength;
    }
    return (
      perPeer +
      this.capacity * (8 + 1 + 4 + 8) +
      this.pending.byteLength +
      this.peerIds.byteLength +
      this.byTypeCode.byteLength +
      this.packets.byteLength * 2 +
      this.slotCounts.byteLength
    );
  }

  clear(): void {
    this.total = 0;
    this.byKind.fill(0);
    this.byDir.fill(0);
    this.byTypeCode.fill(0);
    this.byTypeDir.fill(0);
    this.generation++;
    this.packets.fill(0);
    this.bytes.fill(0);
    this.slotSec.fill(-1);
    this.slotCounts.fill(0);
    this.newestSec = -1;
    this.newest = -Infinity;
    this.peerIds.clear();
    this.peerSlots.length = 0;
    this.freeSlots.length = 0;
    this.livePeers = 0;
    this.pending.clear();
    this.recent.fill(-1);
    this.reqPeer.fill(-1);
    this.tail = this.head = this.judged = 0;
    this.rng = 0x1c3f;
    // The address table is cleared with the index: the peers' references go with it, not one by one.
    Object.assign(this.evicted, { peers: 0, requests: 0, replies: 0, lost: 0, duplicates: 0, late: 0 });
    this.evictedTalkers.clear();
    this.sweptAt = -Infinity;
    this.groupFlags.fill(0);
    this.groupPending.clear();
    this.groupAnswerers.clear();
  }
}

/** A flow's name: who asked and who answered. */
export function flowKey(requester: string, responder: string): string {
  return `${requester}>${responder}`;
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}
