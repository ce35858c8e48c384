/**
 * Echo matching, a step of ingest (the Ingestor runs it over each batch it adds to the store): a reply
 * matches the request with the same (requester, responder, id, seq), the requester being the reply's
 * destination. Replies may arrive in any order (a reply to an older seq after a newer one still matches).
 * What matching decides is written to the records themselves, so everything that reads the store (table,
 * filters, sort, export) sees it without asking anyone:
 * - a matched reply takes from its request what it inherits (`inheritFromRequest`: the RTT);
 * - a request judged lost gets MISC_F_NO_RESPONSE (cleared again if a timely reply turns up out of order),
 *   so the table can say "no response found" and the filter can select them.
 * Statistics (stats/aggregator.ts) only listen to the outcomes (`EchoOutcomes`).
 *
 * Per request, in capture time (record timestamps, not wall time):
 * - answered: a reply; its RTT feeds the flow's statistics however late (as `tshark -z icmp,srt` and
 *   stats/srt.ts count them); one after `lateAfterNs` (default 1 s, srt.ts's threshold) is REPLY_LATE;
 * - no reply within `echoTimeoutNs` (default 2 s) by the newest record's time: lost (counted once its
 *   timeout passed; a reply after that takes it back: `unlost`);
 * - a second (third...) reply to the same request: a duplicate (RTT written, not in the statistics);
 * - a request to a broadcast or multicast address (`ping -b`, `ping ff02::1`): each host that answers is
 *   a flow of its own (requester, responder), never a duplicate, and nothing is lost to the group address;
 *   a responder's requests are the group requests from the first one it answered on (as srt.ts's per-peer
 *   figures), so one it stops answering shows as loss.
 * Requests are remembered for `retainNs` (default 4 s, at least twice the timeout) so late replies
 * and duplicates are recognised, and at most `maxOutstanding` of them (default 4 Mi, 21 bytes each
 * plus 24 in the hash table; the ring starts at 64 Ki and doubles as needed), oldest forgotten first
 * (judged early if its timeout has not passed yet), so memory is bounded.
 *
 * Flows: one per (requester, responder) pair. The role comes from the first request's direction: out (we
 * pinged the peer), in (the peer pinged us), otherwise unknown. At most `maxPeers` flows; beyond that the
 * least recently seen are forgotten (and their statistics with them). A forgotten flow's index (and its
 * 1 KB of recent requests) waits for its requests to be forgotten; at most `maxPeers` * 1.25 indices are
 * kept, beyond that the oldest requests are forgotten (judged) early (a flood of new requesters). With a ring-buffer limit, a flow with no
 * record left in the store and no request that can still be answered is forgotten too, so flows stay
 * proportional to the records held; a flow holds its two addresses (`addresses.retain`) while it is kept.
 */
import { CHUNK_MASK, CHUNK_SHIFT, MISC_F_HAS_ECHO, MISC_F_NO_RESPONSE, type RecordStore } from './store.js';
import { PairTable } from './stats/pair-table.js';
import { isGroup } from './stats/srt.js';

export interface EchoMatchOptions {
  echoTimeoutNs?: number;
  retainNs?: number;
  maxOutstanding?: number;
  /** The most flows (requester, responder) remembered. */
  maxPeers?: number;
  /** Replies later than this are REPLY_LATE (default 1 s, as stats/srt.ts); they still count as replies. */
  lateAfterNs?: number;
  /** The store's addresses: group addresses are told by their text; flows hold theirs while kept. */
  addresses?: MatchAddresses;
}

export interface MatchAddresses {
  readonly text: readonly string[];
  readonly family: readonly number[];
  retain?(id: number): void;
  release?(id: number): void;
  onFree?(listener: (id: number) => void): () => void;
}

export type FlowRole = 'out' | 'in' | 'unknown';

/** How a matched reply counts. */
export const REPLY_TIMELY = 0;
export const REPLY_LATE = 1;
export const REPLY_DUPLICATE = 2;

/** What echo matching tells its listener (the statistics), in record order. */
export interface EchoOutcomes {
  /** A new flow, numbered `flow` (a number is reused only after flowsForgotten named it). */
  flowAdded(flow: number, requester: number, responder: number, role: FlowRole): void;
  /** A request of `flow` at `ts` (`repeat`: the same request seen again while it waits, not counted). */
  request(flow: number, ts: number, repeat: boolean): void;
  /** A reply matched to a request of `flow`: REPLY_TIMELY, REPLY_LATE or REPLY_DUPLICATE. */
  reply(flow: number, rttMs: number, ts: number, kind: number): void;
  /** A request's timeout passed: answered in time, or lost (sent at `sentTs`). */
  judged(flow: number, lost: boolean, sentTs: number): void;
  /** A timely reply turned up for a request already judged lost (records slightly out of order). */
  unlost(flow: number): void;
  flowsForgotten(flows: readonly number[]): void;
  /** Everything was forgotten (a new capture). */
  cleared(): void;
}

const ST_PENDING = 0;
const ST_ANSWERED = 1;
const ST_MASK = 3;
/** Broadcast and multicast requests remembered for responders answering for the first time (a ring). */
const GROUP_REQUESTS = 4096;
/** The request is findable through the `pending` hash table (it left its flow's recent cache). */
const ST_IN_HASH = 4;
/** Per-flow direct-mapped cache of recent requests, by the low bits of id << 16 | seq. */
const RECENT = 64;
/**
 * Numbers an entry of the recent cache takes: the request number and its (id << 16 | seq) * 4 + state. 16
 * bytes, so an entry never straddles two cache lines; the request's time is its ring slot's.
 */
const RECENT_STRIDE = 2;
/**
 * Flows per block of the recent caches (log2): 128 flows, 128 KB. The caches grow a block at a time as flows
 * come, never by copying: doubling one array made the turn that met the 4097th flow allocate, fill and copy
 * 12.6 MB (43 ms of page faults on a 2-core VM, a capture's longest turn).
 */
const RECENT_BLOCK_SHIFT = 7;
const RECENT_BLOCK_MASK = (1 << RECENT_BLOCK_SHIFT) - 1;
/** Requests per block of the ring (log2): 16 Ki requests, 336 KB (fewer when maxOutstanding is smaller). */
const RING_BLOCK_SHIFT = 14;
/** Emptied ring blocks kept for reuse (the tail needs a new block as often as the head lets one go). */
const SPARE_BLOCKS = 2;

/** A block of the request ring: per request its time, state, id << 16 | seq, flow (-1: forgotten), record. */
class RequestBlock {
  readonly ts: Float64Array;
  readonly state: Uint8Array;
  readonly idSeq: Uint32Array;
  readonly flow: Int32Array;
  readonly index: Uint32Array;
  constructor(size: number) {
    this.ts = new Float64Array(size);
    this.state = new Uint8Array(size);
    this.idSeq = new Uint32Array(size);
    this.flow = new Int32Array(size).fill(-1);
    this.index = new Uint32Array(size);
  }
  get byteLength(): number {
    return this.ts.length * 21;
  }
}

/** A flow's cold state; what every record reads or writes is in EchoMatcher's per-flow typed arrays. */
class Flow {
  evicted = false;
  constructor(
    readonly index: number,
    readonly requester: number,
    readonly responder: number,
  ) {}
}

/** (family, type) of a record's meta: 1 echo request, 2 echo reply, 0 neither. */
function echoRole(meta: number): number {
  const type = meta & 255;
  if (meta >>> 24 === 6) return type === 128 ? 1 : type === 129 ? 2 : 0;
  return type === 8 ? 1 : type === 0 ? 2 : 0;
}

/** Who else wants to know that a reply answers a request (the process attribution: proc/attribution.ts). */
export interface ReplyInheritance {
  echoMatched(request: number, reply: number): void;
}

/**
 * What a matched reply (record `reply`) takes from its request (record `request`): its RTT, in ms, and
 * (through `inheritance`) the request's process.
 */
export function inheritFromRequest(
  store: RecordStore,
  reply: number,
  request: number,
  rttMs: number,
  inheritance: ReplyInheritance | null = null,
): void {
  store.chunks[reply >>> CHUNK_SHIFT]!.rtt[reply & CHUNK_MASK] = rttMs;
  inheritance?.echoMatched(request, reply);
}

export class EchoMatcher {
  readonly echoTimeoutNs: number;
  private readonly retainNs: number;
  private readonly maxOutstanding: number;
  private readonly maxFlows: number;
  /** Flow indices (live, or forgotten and waiting for their requests to go) kept before reusing early. */
  private readonly maxSlots: number;
  private readonly lateAfterNs: number;
  private readonly addresses: MatchAddresses | null;
  private listener: EchoOutcomes | null = null;
  /** The store whose evictions this follows, and the capture time of the last sweep for record-less flows. */
  private watched: RecordStore | null = null;
  private sweptAt = -Infinity;
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
  private readonly groupAnswerers = new Map<string, Flow[]>();

  /** Newest record time seen (tsRel ns). */
  private newest = -Infinity;
  /** (requester, responder) -> index into flows. */
  private readonly flowIds = new PairTable(1024);
  private readonly flows: (Flow | null)[] = [];
  /**
   * Per flow index, what a record reads or writes, in typed arrays (a few bytes a flow, dense, so they stay
   * in cache, where a record reaching its Flow object missed it): 1 while the flow is live (0: none, or
   * forgotten); the time and store index of its newest record (request or reply: the ring buffer has let
   * the flow go once its newest is below its first record).
   */
  private flowLive = new Uint8Array(1024);
  private flowLastSeen = new Float64Array(1024);
  private flowLastIndex = new Float64Array(1024);
  /** Indices of forgotten flows, each with the request number after which it may be reused. */
  private readonly freeSlots: { index: number; after: number }[] = [];
  private liveFlows = 0;
  /**
   * Each flow's recent requests, direct-mapped by the low bits of id << 16 | seq: in block
   * flow >> RECENT_BLOCK_SHIFT, at (((flow & RECENT_BLOCK_MASK) * RECENT) + k) * RECENT_STRIDE, the request
   * number (-1: none) and (id << 16 | seq) * 4 + state. One cache line answers the common case (a reply to one
   * of the flow's last requests) without the hash table; the request's ring slot, written moments before,
   * gives its time.
   */
  private recent: Float64Array[] = [];
  /** (flow, id << 16 | seq) -> ring slot, for unanswered requests that left the recent cache. */
  private pending = new PairTable(1 << 16);
  /**
   * Remembered requests, oldest first: a ring of maxOutstanding slots (slot = request number & ringMask) in
   * blocks of 2^blockShift, a block made when the tail enters it and let go once the head has left it.
   * Memory follows the requests waiting, and no step copies the ring (doubling one copied and re-slotted every
   * waiting request in one turn: at 512 Ki waiting, 11 MB). Typed arrays, so GC never scans the ring; a forgotten
   * request's flow is -1.
   */
  private ring: (RequestBlock | null)[];
  private readonly ringMask: number;
  private readonly blockShift: number;
  private readonly blockMask: number;
  private spareBlocks: RequestBlock[] = [];
  private store: RecordStore | null = null;
  /** Told of every matched reply (set by the Ingestor: its process attribution, when it has one). */
  inheritance: ReplyInheritance | null = null;
  /** Next request number; the oldest remembered; the oldest whose timeout has not been judged. */
  private tail = 0;
  private head = 0;
  private judged = 0;

  constructor(options: EchoMatchOptions = {}) {
    this.echoTimeoutNs = options.echoTimeoutNs ?? 2e9;
    this.retainNs = Math.max(options.retainNs ?? 4e9, 2 * this.echoTimeoutNs);
    // A power of two (rounded down) so ring slots are a mask away.
    this.maxOutstanding = 2 ** Math.floor(Math.log2(Math.max(16, options.maxOutstanding ?? 1 << 22)));
    this.ringMask = this.maxOutstanding - 1;
    this.blockShift = Math.min(RING_BLOCK_SHIFT, Math.log2(this.maxOutstanding));
    this.blockMask = (1 << this.blockShift) - 1;
    this.ring = new Array<RequestBlock | null>(this.maxOutstanding >>> this.blockShift).fill(null);
    this.maxFlows = options.maxPeers ?? 10_000;
    this.maxSlots = this.maxFlows + Math.max(1024, this.maxFlows >> 2);
    this.lateAfterNs = options.lateAfterNs ?? 1e9;
    this.addresses = options.addresses ?? null;
    this.addresses?.onFree?.((id) => {
      if (id < this.groupFlags.length) this.groupFlags[id] = 0;
    });
  }

  /** The statistics that hear every outcome (one listener). */
  listen(listener: EchoOutcomes): void {
    this.listener = listener;
  }

  /** Matches records `from..to-1` of the store (the Ingestor calls it after each batch). */
  match(store: RecordStore, from: number, to: number): void {
    if (to <= from) return;
    this.store = store;
    if (this.watched !== store) {
      this.watched = store;
      store.onEvict((_, first) => {
        if (this.watched === store) this.sweepFlows(first);
      });
    }
    let newest = this.newest;
    for (let at = from; at < to;) {
      const c = at >>> CHUNK_SHIFT;
      const chunk = store.chunks[c]!;
      const start = at & CHUNK_MASK;
      const stop = Math.min(to - (c << CHUNK_SHIFT), CHUNK_MASK + 1);
      const { tsRel, src, dst, meta, idSeq, misc, rtt } = chunk;
      for (let i = start; i < stop; i++) {
        const ts = tsRel[i]!;
        if (ts > newest) newest = ts;
        if (!(misc[i]! & MISC_F_HAS_ECHO)) continue;
        const m = meta[i]!;
        const role = echoRole(m);
        if (role === 1) this.request(src[i]!, dst[i]!, idSeq[i]!, ts, (m >>> 16) & 3, (c << CHUNK_SHIFT) | i);
        else if (role === 2) {
          // Authoritative for replies: NaN when unmatched, whatever was there before.
          rtt[i] = NaN;
          this.reply(src[i]!, dst[i]!, idSeq[i]!, ts, (c << CHUNK_SHIFT) | i);
        }
      }
      at += stop - start;
    }
    this.newest = newest;
    this.judge();
    if (this.liveFlows > this.maxFlows) this.forgetFlows();
    // Flows whose records left the ring buffer while they could still be answered go once they cannot.
    if (store.firstIndex > 0 && newest - this.sweptAt > this.retainNs / 4) this.sweepFlows(store.firstIndex);
  }

  /**
   * A ring buffer let go of every record below `first`: the flows with no record left and no request that
   * can still be answered are forgotten (their statistics become the evicted-peers summary).
   */
  private sweepFlows(first: number): void {
    this.sweptAt = this.newest;
    const quiet = this.newest - this.retainNs;
    const gone: Flow[] = [];
    const lastIndex = this.flowLastIndex;
    const lastSeen = this.flowLastSeen;
    for (const flow of this.flows)
      if (flow !== null && !flow.evicted && lastIndex[flow.index]! < first && lastSeen[flow.index]! < quiet)
        gone.push(flow);
    if (gone.length > 0) this.drop(gone);
  }

  /** Forgets `flows`: their numbers are reused once no remembered request names them. */
  private drop(flows: Flow[]): void {
    const gone: number[] = [];
    for (const flow of flows) {
      flow.evicted = true;
      this.flowLive[flow.index] = 0;
      this.flowIds.delete(flow.requester, flow.responder);
      this.flows[flow.index] = null;
      this.freeSlots.push({ index: flow.index, after: this.tail });
      this.liveFlows--;
      gone.push(flow.index);
    }
    this.listener?.flowsForgotten(gone);
    for (const flow of flows) {
      this.addresses?.release?.(flow.requester);
      this.addresses?.release?.(flow.responder);
    }
  }

  private request(from: number, to: number, idSeq: number, ts: number, dir: number, index: number): void {
    if (this.isGroup(to)) {
      this.groupRequest(from, to, idSeq, ts, dir, index);
      return;
    }
    const p = this.flowIds.get(from, to);
    this.enqueue(p < 0 ? this.newFlow(from, to, dir).index : p, idSeq, ts, index);
  }

  /** A new flow (requester `from`, responder `to`); its role from the first request's direction. */
  private newFlow(from: number, to: number, dir: number): Flow {
    const role = dir === 1 ? 'out' : dir === 0 ? 'in' : 'unknown';
    // A forgotten flow's index is reused only once every request that names it is forgotten (after the
    // retain time). A flood of new requesters would grow the flows' slots (RECENT * 16 bytes each) for that
    // long: beyond maxSlots, the oldest requests are forgotten now instead, judged as the full ring judges
    // them (unanswered ones count as lost), until the oldest forgotten flow's index is free.
    let p: number;
    const free = this.freeSlots[0];
    if (free !== undefined && free.after > this.head && this.flows.length >= this.maxSlots)
      while (this.head < free.after) this.forget(true);
    if (free !== undefined && free.after <= this.head) {
      this.freeSlots.shift();
      p = free.index;
    } else p = this.flows.length;
    const flow = new Flow(p, from, to);
    this.flows[p] = flow;
    if (p >= this.flowLive.length) this.growFlowState(p + 1);
    this.flowLive[p] = 1;
    this.flowLastSeen[p] = 0;
    this.flowLastIndex[p] = -1;
    while (this.recent.length <= p >>> RECENT_BLOCK_SHIFT)
      this.recent.push(new Float64Array((RECENT_BLOCK_MASK + 1) * RECENT * RECENT_STRIDE).fill(-1));
    const slots = (p & RECENT_BLOCK_MASK) * RECENT * RECENT_STRIDE;
    this.recent[p >>> RECENT_BLOCK_SHIFT]!.fill(-1, slots, slots + RECENT * RECENT_STRIDE);
    this.flowIds.set(from, to, p);
    this.liveFlows++;
    this.addresses?.retain?.(from);
    this.addresses?.retain?.(to);
    this.listener?.flowAdded(p, from, to, role);
    return flow;
  }

  /** The per-flow typed arrays, grown (doubled) to hold at least `n` flows. */
  private growFlowState(n: number): void {
    const size = Math.max(n, this.flowLive.length * 2);
    const live = new Uint8Array(size);
    live.set(this.flowLive);
    this.flowLive = live;
    const seen = new Float64Array(size);
    seen.set(this.flowLastSeen);
    this.flowLastSeen = seen;
    const last = new Float64Array(size);
    last.set(this.flowLastIndex);
    this.flowLastIndex = last;
  }

  /** One more request of flow `p`, remembered until answered, judged and forgotten. */
  private enqueue(p: number, idSeq: number, ts: number, index: number): void {
    // The same request seen again while it waits (a loopback packet seen leaving and arriving, or one
    // packet at two capture points): one request, not a second one whose first copy is then judged lost.
    const seen = ((p & RECENT_BLOCK_MASK) * RECENT + (idSeq & (RECENT - 1))) * RECENT_STRIDE;
    const cache = this.recent[p >>> RECENT_BLOCK_SHIFT]!;
    const old = cache[seen]!;
    if (old >= this.head && cache[seen + 1]! === idSeq * 4 + ST_PENDING && this.isRepeat(old, ts)) {
      this.flowLastSeen[p] = ts;
      this.flowLastIndex[p] = index;
      this.listener?.request(p, ts, true);
      return;
    }
    this.flowLastSeen[p] = ts;
    this.flowLastIndex[p] = index;
    this.listener?.request(p, ts, false);
    if (this.tail - this.head === this.maxOutstanding) this.forget(true);
    const n = this.tail++;
    const slot = n & this.ringMask;
    const block = this.ring[slot >>> this.blockShift] ?? this.newBlock(slot);
    const i = slot & this.blockMask;
    block.ts[i] = ts;
    block.state[i] = ST_PENDING;
    block.idSeq[i] = idSeq;
    block.flow[i] = p;
    block.index[i] = index;
    // The request this one displaces from the flow's recent cache stays findable through the hash
    // table while it is unanswered (a request with the same id and seq is superseded, as before).
    if (old >= this.head) {
      const tag = cache[seen + 1]!;
      const oldIdSeq = Math.floor(tag * 0.25); // not tag % 4: a double's remainder is a call into C
      const oldState = tag - oldIdSeq * 4;
      if (oldState === ST_PENDING && oldIdSeq !== idSeq) {
        const oldSlot = old & this.ringMask;
        this.pending.set(p, oldIdSeq, oldSlot);
        this.ring[oldSlot >>> this.blockShift]!.state[oldSlot & this.blockMask]! |= ST_IN_HASH;
      }
    }
    cache[seen] = n;
    cache[seen + 1] = idSeq * 4 + ST_PENDING;
  }

  /** Whether a request at `ts` is remembered request `n` seen again: sent no later, within the timeout. */
  private isRepeat(n: number, ts: number): boolean {
    const slot = n & this.ringMask;
    const sent = this.ring[slot >>> this.blockShift]!.ts[slot & this.blockMask]!;
    return ts >= sent && ts - sent < this.echoTimeoutNs;
  }

  /** Whether address `id` is a broadcast or multicast address (cached per id until it is reclaimed). */
  private isGroup(id: number): boolean {
    const a = this.addresses;
    if (a === null) return false;
    if (id >= this.groupFlags.length) {
      const grown = new Uint8Array(Math.max(id + 1, this.groupFlags.length * 2));
      grown.set(this.groupFlags);
      this.groupFlags = grown;
    }
    let f = this.groupFlags[id]!;
    if (f === 0) {
      f = isGroup(a.family[id] === 6 ? 6 : 4, a.text[id] ?? '') ? 2 : 1;
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
    if (this.groupPending.get(this.groupFrom[g]!, this.groupIdSeq[g]!) === g)
      this.groupPending.delete(this.groupFrom[g]!, this.groupIdSeq[g]!);
    const text = this.addresses!.text;
    this.groupFrom[g] = from;
    this.groupIdSeq[g] = idSeq;
    this.groupTs[g] = ts;
    this.groupDir[g] = dir;
    this.groupIndex[g] = index;
    this.groupKey[g] = `${text[from]} ${text[group]}`;
    this.groupPending.set(from, idSeq, g);
    const answerers = this.groupAnswerers.get(this.groupKey[g]);
    if (answerers === undefined) return;
    let k = 0;
    for (const flow of answerers) {
      if (flow.evicted) continue;
      answerers[k++] = flow;
      this.enqueue(flow.index, idSeq, ts, index);
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
    const p = this.flowIds.get(to, from);
    const flow = p < 0 ? this.newFlow(to, from, this.groupDir[g]!) : this.flows[p]!;
    const key = this.groupKey[g]!;
    let answerers = this.groupAnswerers.get(key);
    if (answerers === undefined) {
      answerers = [];
      this.groupAnswerers.set(key, answerers);
    }
    if (!answerers.includes(flow)) answerers.push(flow);
    this.enqueue(flow.index, idSeq, sent, this.groupIndex[g]!);
    return true;
  }

  /** Makes (or takes a spare) block for the ring slot the tail enters. */
  private newBlock(slot: number): RequestBlock {
    const block = this.spareBlocks.pop() ?? new RequestBlock(this.blockMask + 1);
    this.ring[slot >>> this.blockShift] = block;
    return block;
  }

  /** Matches a reply (record `index`) to its request; an unmatched one is left as it is. */
  private reply(from: number, to: number, idSeq: number, ts: number, index: number, group = true): void {
    const p = this.flowIds.get(to, from);
    if (p < 0) {
      // Perhaps a responder to a broadcast or multicast request, answering for the first time.
      if (group && this.groupReply(from, to, idSeq, ts)) this.reply(from, to, idSeq, ts, index, false);
      return;
    }
    this.flowLastIndex[p] = index;
    const r = this.recent[p >>> RECENT_BLOCK_SHIFT]!;
    const at = ((p & RECENT_BLOCK_MASK) * RECENT + (idSeq & (RECENT - 1))) * RECENT_STRIDE;
    let n = r[at]!;
    let sent: number;
    const tag = r[at + 1]!;
    const tagged = Math.floor(tag * 0.25); // not tag % 4: a double's remainder is a call into C
    let state = tag - tagged * 4;
    const recent = n >= this.head && tagged === idSeq;
    if (recent) {
      const slot = n & this.ringMask;
      sent = this.ring[slot >>> this.blockShift]!.ts[slot & this.blockMask]!;
    } else {
      const slot = this.pending.get(p, idSeq);
      const block = slot < 0 ? null : this.ring[slot >>> this.blockShift]!;
      const i = slot & this.blockMask;
      if (block === null || block.flow[i] !== p || block.idSeq[i] !== idSeq) {
        if (group && this.groupReply(from, to, idSeq, ts)) this.reply(from, to, idSeq, ts, index, false);
        return;
      }
      n = this.numberOf(slot);
      sent = block.ts[i]!;
      state = block.state[i]! & ST_MASK;
    }
    // Forgetting happens per batch; deciding by age here keeps results independent of batching.
    if (sent > ts || ts - sent > this.retainNs) return;
    const rttMs = (ts - sent) / 1e6;
    this.flowLastSeen[p] = ts;
    const slot = n & this.ringMask;
    const block = this.ring[slot >>> this.blockShift]!;
    const i = slot & this.blockMask;
    let kind = REPLY_TIMELY;
    if (state !== ST_PENDING) {
      kind = REPLY_DUPLICATE;
    } else {
      if (ts - sent > this.lateAfterNs) kind = REPLY_LATE;
      block.state[i]! |= ST_ANSWERED;
      if (recent) r[at + 1] = idSeq * 4 + ST_ANSWERED;
      // A reply seen after its request was judged lost (it came after the timeout, or records came slightly
      // out of order): answered after all.
      if (n < this.judged) {
        this.listener?.unlost(p);
        this.markNoResponse(block.index[i]!, false);
      }
    }
    this.listener?.reply(p, rttMs, ts, kind);
    inheritFromRequest(this.store!, index, block.index[i]!, rttMs, this.inheritance);
  }

  /** The request number held in a live ring slot. */
  private numberOf(slot: number): number {
    const mask = this.ringMask;
    return this.head + ((slot - (this.head & mask)) & mask);
  }

  /**
   * Idle wall time since the newest record arrived (live captures): requests whose wait is over by then
   * are judged lost now, not when the next record comes (`ping -c 3 deadhost` shows 100 % loss, not
   * 0 % forever). Elapsed time, not the wall clock itself, so record clocks need not be the wall clock.
   * At most `max` requests a call: a flood of unanswered requests that stops leaves a million waiting, 118 ms
   * to judge in one turn; `idleDue` tells whether more are due. Returns true when it judged any request.
   */
  advanceIdle(elapsedNs: number, max = Infinity): boolean {
    if (this.newest === -Infinity || !(elapsedNs > 0)) return false;
    const before = this.judged;
    this.judge(this.newest + elapsedNs, max);
    return this.judged !== before;
  }

  /** Whether requests whose wait is over `elapsedNs` after the newest record are still to be judged. */
  idleDue(elapsedNs: number): boolean {
    if (this.newest === -Infinity || !(elapsedNs > 0) || this.judged >= this.tail) return false;
    const slot = this.judged & this.ringMask;
    const sent = this.ring[slot >>> this.blockShift]!.ts[slot & this.blockMask]!;
    return sent < this.newest + elapsedNs - this.echoTimeoutNs;
  }

  /**
   * The capture stopped: every request still waiting is judged (lost unless answered), at most `max` a call
   * (`unjudged` tells whether any is left). Returns true when it judged any request.
   */
  finish(max = Infinity): boolean {
    const before = this.judged;
    this.judge(Infinity, max);
    return this.judged !== before;
  }

  /** Whether requests remembered are still to be judged (see finish). */
  get unjudged(): boolean {
    return this.judged < this.tail;
  }

  /**
   * Judges requests whose timeout has passed by `now` (the newest record's time), at most `max`, and forgets
   * old ones.
   */
  private judge(now = this.newest, max = Infinity): void {
    const limit = now - this.echoTimeoutNs;
    const mask = this.ringMask;
    for (let left = max; this.judged < this.tail && left > 0; left--) {
      const slot = this.judged & mask;
      if (!(this.ring[slot >>> this.blockShift]!.ts[slot & this.blockMask]! < limit)) break;
      this.judgeSlot(slot);
      this.judged++;
    }
    const forgetBefore = this.newest - this.retainNs;
    while (this.head < this.judged) {
      const slot = this.head & mask;
      if (!(this.ring[slot >>> this.blockShift]!.ts[slot & this.blockMask]! < forgetBefore)) break;
      this.forget(false);
    }
  }

  private judgeSlot(slot: number): void {
    const block = this.ring[slot >>> this.blockShift]!;
    const i = slot & this.blockMask;
    const p = block.flow[i]!;
    if (p < 0 || this.flowLive[p] !== 1) return;
    const lost = (block.state[i]! & ST_MASK) !== ST_ANSWERED;
    this.listener?.judged(p, lost, block.ts[i]!);
    if (lost) this.markNoResponse(block.index[i]!, true);
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
    const slot = n & this.ringMask;
    if (early && this.judged <= n) {
      this.judgeSlot(slot);
      this.judged = n + 1;
    }
    const b = slot >>> this.blockShift;
    const block = this.ring[b]!;
    const i = slot & this.blockMask;
    const p = block.flow[i]!;
    if (p >= 0 && block.state[i]! & ST_IN_HASH && this.pending.get(p, block.idSeq[i]!) === slot) {
      this.pending.delete(p, block.idSeq[i]!);
    }
    block.flow[i] = -1;
    this.head++;
    // The head left the block: every request in it is forgotten, unless the tail came round into it again
    // (a ring of one block, or one nearly full).
    if (
      i === this.blockMask &&
      (this.tail === this.head || ((this.tail - 1) & this.ringMask) >>> this.blockShift !== b)
    ) {
      this.ring[b] = null;
      if (this.spareBlocks.length < SPARE_BLOCKS) this.spareBlocks.push(block);
    }
  }

  /** Forgets the least recently seen flows, down to 90 % of the most. */
  private forgetFlows(): void {
    const keep = Math.floor(this.maxFlows * 0.9);
    const live = this.flows.filter((f): f is Flow => f !== null && !f.evicted);
    const lastSeen = this.flowLastSeen;
    live.sort((a, b) => lastSeen[b.index]! - lastSeen[a.index]!);
    this.drop(live.slice(keep));
  }

  /** Requests currently remembered (for tests and memory accounting). */
  get remembered(): number {
    return this.tail - this.head;
  }

  get flowCount(): number {
    return this.liveFlows;
  }

  /** Bytes of the request ring's blocks, spares included. */
  private get ringBytes(): number {
    let bytes = this.ring.length * 8;
    for (const block of this.ring) if (block !== null) bytes += block.byteLength;
    for (const block of this.spareBlocks) bytes += block.byteLength;
    return bytes;
  }

  /** Bytes held: every typed array (capacity included) exactly; flows and group keys about. */
  get bytesAllocated(): number {
    return (
      this.recent.length * (RECENT_BLOCK_MASK + 1) * RECENT * RECENT_STRIDE * 8 +
      this.pending.byteLength +
      this.flowIds.byteLength +
      this.ringBytes +
      this.groupFlags.byteLength +
      this.groupPending.byteLength +
      this.groupFrom.byteLength +
      this.groupIdSeq.byteLength +
      this.groupTs.byteLength +
      this.groupDir.byteLength +
      this.groupIndex.byteLength +
      this.groupKey.length * 8 +
      this.groupAnswerers.size * 96 +
      // A Flow object (header and four fields) and its slot; each flow's state in the typed arrays; a free
      // slot's object.
      this.flows.length * 56 +
      this.flowLive.byteLength +
      this.flowLastSeen.byteLength +
      this.flowLastIndex.byteLength +
      this.freeSlots.length * 40
    );
  }

  clear(): void {
    this.newest = -Infinity;
    this.flowIds.clear();
    this.flows.length = 0;
    this.flowLive.fill(0);
    this.freeSlots.length = 0;
    this.liveFlows = 0;
    this.pending.clear();
    this.recent = []; // a new capture's flows make what they need
    for (const block of this.ring) {
      if (block === null) continue;
      block.flow.fill(-1);
      if (this.spareBlocks.length < SPARE_BLOCKS) this.spareBlocks.push(block);
    }
    this.ring.fill(null);
    this.tail = this.head = this.judged = 0;
    // The address table is cleared with the index: the flows' references go with it, not one by one.
    this.sweptAt = -Infinity;
    this.groupFlags.fill(0);
    this.groupPending.clear();
    this.groupAnswerers.clear();
    this.listener?.cleared();
  }
}
