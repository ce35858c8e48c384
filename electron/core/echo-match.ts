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
 * - answered within `echoTimeoutNs` (default 2 s): a reply; its RTT feeds the flow's statistics;
 * - no reply within the timeout by the newest record's time: lost (counted once its timeout passed);
 * - a reply after the timeout: late, and the request still counts as lost, as ping does; its RTT is
 *   written to the record but kept out of the flow's RTT statistics;
 * - a second (third...) reply to the same request: a duplicate (RTT written, not in the statistics).
 * Requests are remembered for `retainNs` (default 4 s, at least twice the timeout) so late replies
 * and duplicates are recognised, and at most `maxOutstanding` of them (default 4 Mi, 21 bytes each
 * plus 24 in the hash table; the ring starts at 64 Ki and doubles as needed), oldest forgotten first
 * (judged early if its timeout has not passed yet), so memory is bounded.
 *
 * Flows: one per (requester, responder) pair. The role comes from the first request's direction: out (we
 * pinged the peer), in (the peer pinged us), otherwise unknown. At most `maxPeers` flows; beyond that the
 * least recently seen are forgotten (and their statistics with them).
 */
import { CHUNK_MASK, CHUNK_SHIFT, MISC_F_HAS_ECHO, MISC_F_NO_RESPONSE, type RecordStore } from './store.js';
import { PairTable } from './stats/pair-table.js';

export interface EchoMatchOptions {
  echoTimeoutNs?: number;
  retainNs?: number;
  maxOutstanding?: number;
  /** The most flows (requester, responder) remembered. */
  maxPeers?: number;
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
/** Replied to after the timeout (it still counts as lost). */
const ST_LATE = 2;
const ST_MASK = 3;
/** The request is findable through the `pending` hash table (it left its flow's recent cache). */
const ST_IN_HASH = 4;
/** Per-flow direct-mapped cache of recent requests, by the low bits of id << 16 | seq. */
const RECENT = 64;

class Flow {
  lastSeen = 0;
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

/**
 * What a matched reply (record `reply`) takes from its request (record `request`): its RTT, in ms.
 * The one place to add what else a reply inherits (e.g. the request's process).
 */
export function inheritFromRequest(store: RecordStore, reply: number, request: number, rttMs: number): void {
  void request;
  store.chunks[reply >>> CHUNK_SHIFT]!.rtt[reply & CHUNK_MASK] = rttMs;
}

export class EchoMatcher {
  readonly echoTimeoutNs: number;
  private readonly retainNs: number;
  private readonly maxOutstanding: number;
  private readonly maxFlows: number;
  private listener: EchoOutcomes | null = null;

  /** Newest record time seen (tsRel ns). */
  private newest = -Infinity;
  /** (requester, responder) -> index into flows. */
  private readonly flowIds = new PairTable(1024);
  private readonly flows: (Flow | null)[] = [];
  /** Indices of forgotten flows, each with the request number after which it may be reused. */
  private readonly freeSlots: { index: number; after: number }[] = [];
  private liveFlows = 0;
  /**
   * Each flow's recent requests, direct-mapped by the low bits of id << 16 | seq: at
   * ((flow * RECENT) + k) * 3 the request number (-1: none), its time, and (id << 16 | seq) * 4 + state.
   * One cache line answers the common case (a reply to one of the flow's last requests) without the
   * hash table or the ring's scattered slots.
   */
  private recent = new Float64Array(64 * RECENT * 3).fill(-1);
  /** (flow, id << 16 | seq) -> ring slot, for unanswered requests that left the recent cache. */
  private pending = new PairTable(1 << 16);
  // Remembered requests, oldest first: a ring indexed by request number % capacity; it grows up to
  // maxOutstanding.
  private capacity = 1 << 16;
  private reqTs = new Float64Array(this.capacity);
  private reqState = new Uint8Array(this.capacity);
  private reqIdSeq = new Uint32Array(this.capacity);
  /** Flow of each request, -1 once forgotten (typed, so GC never scans the ring). */
  private reqFlow = new Int32Array(this.capacity).fill(-1);
  /** Record index of each request, to mark the ones without a response and to link replies. */
  private reqIndex = new Uint32Array(this.capacity);
  private store: RecordStore | null = null;
  /** Next request number; the oldest remembered; the oldest whose timeout has not been judged. */
  private tail = 0;
  private head = 0;
  private judged = 0;

  constructor(options: EchoMatchOptions = {}) {
    this.echoTimeoutNs = options.echoTimeoutNs ?? 2e9;
    this.retainNs = Math.max(options.retainNs ?? 4e9, 2 * this.echoTimeoutNs);
    // A power of two (rounded down) so ring slots are a mask away.
    this.maxOutstanding = 2 ** Math.floor(Math.log2(Math.max(16, options.maxOutstanding ?? 1 << 22)));
    if (this.capacity > this.maxOutstanding) {
      this.capacity = this.maxOutstanding;
      this.reqTs = new Float64Array(this.capacity);
      this.reqState = new Uint8Array(this.capacity);
      this.reqIdSeq = new Uint32Array(this.capacity);
      this.reqFlow = new Int32Array(this.capacity).fill(-1);
      this.reqIndex = new Uint32Array(this.capacity);
    }
    this.maxFlows = options.maxPeers ?? 10_000;
  }

  /** The statistics that hear every outcome (one listener). */
  listen(listener: EchoOutcomes): void {
    this.listener = listener;
  }

  /** Matches records `from..to-1` of the store (the Ingestor calls it after each batch). */
  match(store: RecordStore, from: number, to: number): void {
    if (to <= from) return;
    this.store = store;
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
  }

  private request(from: number, to: number, idSeq: number, ts: number, dir: number, index: number): void {
    let p = this.flowIds.get(from, to);
    let flow: Flow;
    if (p < 0) {
      const role = dir === 1 ? 'out' : dir === 0 ? 'in' : 'unknown';
      // A forgotten flow's index is reused only once every request that names it is forgotten.
      const free = this.freeSlots[0];
      if (free !== undefined && free.after < this.head) {
        this.freeSlots.shift();
        p = free.index;
      } else p = this.flows.length;
      flow = new Flow(p, from, to);
      this.flows[p] = flow;
      if ((p + 1) * RECENT * 3 > this.recent.length) {
        const grown = new Float64Array(this.recent.length * 2).fill(-1);
        grown.set(this.recent);
        this.recent = grown;
      }
      this.recent.fill(-1, p * RECENT * 3, (p + 1) * RECENT * 3);
      this.flowIds.set(from, to, p);
      this.liveFlows++;
      this.listener?.flowAdded(p, from, to, role);
    } else {
      flow = this.flows[p]!;
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
        flow.lastSeen = ts;
        this.listener?.request(p, ts, true);
        return;
      }
    }
    flow.lastSeen = ts;
    this.listener?.request(p, ts, false);
    if (this.tail - this.head === this.capacity) {
      if (this.capacity < this.maxOutstanding) this.growRing();
      else this.forget(true);
    }
    const n = this.tail++;
    const slot = n & (this.capacity - 1);
    this.reqTs[slot] = ts;
    this.reqState[slot] = ST_PENDING;
    this.reqIdSeq[slot] = idSeq;
    this.reqFlow[slot] = p;
    this.reqIndex[slot] = index;
    // The request this one displaces from the flow's recent cache stays findable through the hash
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
      flow: this.reqFlow,
      index: this.reqIndex,
    };
    const oldMask = this.capacity - 1;
    this.capacity = Math.min(this.maxOutstanding, this.capacity * 2);
    const mask = this.capacity - 1;
    this.reqTs = new Float64Array(this.capacity);
    this.reqState = new Uint8Array(this.capacity);
    this.reqIdSeq = new Uint32Array(this.capacity);
    this.reqFlow = new Int32Array(this.capacity).fill(-1);
    this.reqIndex = new Uint32Array(this.capacity);
    const pending = new PairTable(this.pending.size + 1024);
    for (let n = this.head; n < this.tail; n++) {
      const from = n & oldMask;
      const to = n & mask;
      const p = old.flow[from]!;
      this.reqTs[to] = old.ts[from]!;
      this.reqState[to] = old.state[from]!;
      this.reqIdSeq[to] = old.idSeq[from]!;
      this.reqFlow[to] = p;
      this.reqIndex[to] = old.index[from]!;
      if (p >= 0 && old.state[from]! & ST_IN_HASH && this.pending.get(p, old.idSeq[from]!) === from) {
        pending.set(p, old.idSeq[from]!, to);
      }
    }
    this.pending = pending;
  }

  /** Matches a reply (record `index`) to its request; an unmatched one is left as it is. */
  private reply(from: number, to: number, idSeq: number, ts: number, index: number): void {
    const p = this.flowIds.get(to, from);
    if (p < 0) return;
    const flow = this.flows[p]!;
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
      if (slot < 0 || this.reqFlow[slot] !== p || this.reqIdSeq[slot] !== idSeq) return;
      n = this.numberOf(slot);
      sent = this.reqTs[slot]!;
      state = this.reqState[slot]! & ST_MASK;
    }
    // Forgetting happens per batch; deciding by age here keeps results independent of batching.
    if (sent > ts || ts - sent > this.retainNs) return;
    const rttMs = (ts - sent) / 1e6;
    flow.lastSeen = ts;
    const slot = n & (this.capacity - 1);
    let kind = REPLY_TIMELY;
    if (state !== ST_PENDING) {
      kind = REPLY_DUPLICATE;
    } else if (ts - sent > this.echoTimeoutNs) {
      this.reqState[slot]! |= ST_LATE;
      if (recent) r[at + 2] = idSeq * 4 + ST_LATE;
      kind = REPLY_LATE;
    } else {
      this.reqState[slot]! |= ST_ANSWERED;
      if (recent) r[at + 2] = idSeq * 4 + ST_ANSWERED;
      // A timely reply seen after its request was judged lost (records slightly out of order).
      if (n < this.judged) {
        this.listener?.unlost(p);
        this.markNoResponse(this.reqIndex[slot]!, false);
      }
    }
    this.listener?.reply(p, rttMs, ts, kind);
    inheritFromRequest(this.store!, index, this.reqIndex[slot]!, rttMs);
  }

  /** The request number held in a live ring slot. */
  private numberOf(slot: number): number {
    const mask = this.capacity - 1;
    return this.head + ((slot - (this.head & mask)) & mask);
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
    const p = this.reqFlow[slot]!;
    const flow = p < 0 ? null : this.flows[p];
    if (!flow || flow.evicted) return;
    const lost = (this.reqState[slot]! & ST_MASK) !== ST_ANSWERED;
    this.listener?.judged(p, lost, this.reqTs[slot]!);
    if (lost) this.markNoResponse(this.reqIndex[slot]!, true);
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
    const p = this.reqFlow[slot]!;
    if (p >= 0 && this.reqState[slot]! & ST_IN_HASH && this.pending.get(p, this.reqIdSeq[slot]!) === slot) {
      this.pending.delete(p, this.reqIdSeq[slot]!);
    }
    this.reqFlow[slot] = -1;
    this.head++;
  }

  /** Forgets the least recently seen flows, down to 90 % of the most. */
  private forgetFlows(): void {
    const keep = Math.floor(this.maxFlows * 0.9);
    const live = this.flows.filter((f): f is Flow => f !== null && !f.evicted);
    live.sort((a, b) => b.lastSeen - a.lastSeen);
    const gone: number[] = [];
    for (let k = keep; k < live.length; k++) {
      const flow = live[k]!;
      flow.evicted = true;
      this.flowIds.delete(flow.requester, flow.responder);
      this.flows[flow.index] = null;
      this.freeSlots.push({ index: flow.index, after: this.tail });
      this.liveFlows--;
      gone.push(flow.index);
    }
    this.listener?.flowsForgotten(gone);
  }

  /** Requests currently remembered (for tests and memory accounting). */
  get remembered(): number {
    return this.tail - this.head;
  }

  get flowCount(): number {
    return this.liveFlows;
  }

  /** Approximate bytes held. */
  get bytesAllocated(): number {
    return (
      this.liveFlows * (RECENT * 24 + 48) +
      this.capacity * (8 + 1 + 4 + 4 + 4) +
      this.pending.byteLength +
      this.flowIds.byteLength
    );
  }

  clear(): void {
    this.newest = -Infinity;
    this.flowIds.clear();
    this.flows.length = 0;
    this.freeSlots.length = 0;
    this.liveFlows = 0;
    this.pending.clear();
    this.recent.fill(-1);
    this.reqFlow.fill(-1);
    this.tail = this.head = this.judged = 0;
    this.listener?.cleared();
  }
}
