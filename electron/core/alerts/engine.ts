/**
 * Evaluates alert rules over the record stream, in packet time (so a capture file replays the same
 * firings as the live capture did). Each firing is an AlertEvent; actions (webhook, snapshot, command)
 * run in ./actions.ts. Neighbour findings come from the health engine fed the same records.
 */
import { type FieldMap, extractFields } from '../fields/extract.js';
import { NeighbourHealth, type NeighbourFinding, type NeighbourOptions } from '../neighbours/health.js';
import type { DecodedRecord } from '../record.js';
import type { AlertRule, Op } from './rule.js';

export interface AlertEvent {
  rule: string;
  text: string;
  /** Packet time of the firing, ISO 8601. */
  time: string;
  tsNs: bigint;
  /** What was measured against what. */
  figures: {
    metric: string;
    value: number;
    op: Op | null;
    threshold: number | null;
    windowSeconds: number | null;
  };
  /** Frame numbers behind the firing (the window's packets, or the finding's evidence), at most 100. */
  evidence: number[];
  finding?: NeighbourFinding;
  /** A link back to the first evidence frame. */
  link: string;
}

interface Seen {
  tsNs: bigint;
  frame: number;
  src: string;
}

interface EchoReq {
  key: string;
  tsNs: bigint;
  frame: number;
  answeredNs: bigint | null;
  /** Older than the echo timeout (counted lost while unanswered). */
  settled: boolean;
  /** Replaced by a newer request with the same identifier and sequence number, or gone from the window. */
  dead: boolean;
}

/**
 * A peer rule's echo requests within its window, in arrival order, with running counts: each echo record
 * costs constant work (a ping flood puts hundreds of thousands of requests in a 60 s window). Requests older
 * than the echo timeout form a prefix (`head..settleAt`) and count as lost while unanswered.
 */
class PeerWindow {
  queue: EchoReq[] = [];
  head = 0;
  settleAt = 0;
  readonly byKey = new Map<string, EchoReq>();
  answered = 0;
  answeredSumNs = 0;
  lost = 0;

  request(key: string, tsNs: bigint, frame: number): void {
    const old = this.byKey.get(key);
    if (old !== undefined) this.drop(old);
    const e: EchoReq = { key, tsNs, frame, answeredNs: null, settled: false, dead: false };
    this.queue.push(e);
    this.byKey.set(key, e);
  }

  reply(key: string, tsNs: bigint): void {
    const e = this.byKey.get(key);
    if (e === undefined || e.answeredNs !== null) return;
    e.answeredNs = tsNs - e.tsNs;
    this.answered++;
    this.answeredSumNs += Number(e.answeredNs);
    if (e.settled) this.lost--;
  }

  /** Moves the window to `nowNs`: requests past the timeout settle, requests older than the window leave. */
  advance(nowNs: bigint, windowNs: bigint): void {
    const q = this.queue;
    if (this.settleAt < this.head) this.settleAt = this.head;
    while (this.settleAt < q.length && nowNs - q[this.settleAt]!.tsNs >= ECHO_TIMEOUT_NS) {
      const e = q[this.settleAt++]!;
      e.settled = true;
      if (!e.dead && e.answeredNs === null) this.lost++;
    }
    while (this.head < q.length && nowNs - q[this.head]!.tsNs > windowNs) {
      const e = q[this.head++]!;
      if (!e.dead) this.drop(e);
    }
    if (this.head > 1024 && this.head * 2 > q.length) {
      this.queue = q.slice(this.head);
      this.settleAt -= this.head;
      this.head = 0;
    }
  }

  /** Frames of the live requests that `pick` chooses, oldest first. */
  frames(pick: (e: EchoReq) => boolean): number[] {
    const out: number[] = [];
    for (let i = this.head; i < this.queue.length; i++) {
      const e = this.queue[i]!;
      if (!e.dead && pick(e)) out.push(e.frame);
    }
    return out;
  }

  private drop(e: EchoReq): void {
    e.dead = true;
    if (e.answeredNs !== null) {
      this.answered--;
      this.answeredSumNs -= Number(e.answeredNs);
    } else if (e.settled) this.lost--;
    if (this.byKey.get(e.key) === e) this.byKey.delete(e.key);
  }
}

const MAX_EVIDENCE = 100;
/** An echo request unanswered for this long counts as lost. */
const ECHO_TIMEOUT_NS = 1_000_000_000n;

function compare(op: Op, a: number, b: number): boolean {
  return op === '>' ? a > b : op === '>=' ? a >= b : op === '<' ? a < b : a <= b;
}

class RuleState {
  /** The packets in the window: `window[head..]` (the head moves; the array is compacted now and then). */
  window: Seen[] = [];
  head = 0;
  /** Packets per source in the window (the `sources` metric), kept as packets enter and leave. */
  readonly sources = new Map<string, number>();
  readonly echo = new PeerWindow();
  lastFireNs: bigint | null = null;
  constructor(
    readonly rule: AlertRule,
    /** The rule's filter on the stored record (null: not stored), from the index's columns; null: none. */
    readonly match: ((index: number) => boolean | null) | null,
  ) {}
}

/**
 * Compiles a rule's filter against the capture's index (CaptureService.ruleMatcher): the matcher tests a stored
 * record from the columns, and asks `fields` only for what they cannot answer. Null: not possible.
 */
export type RuleMatcherFactory = (
  filter: string,
  fields: (index: number) => FieldMap | null,
) => ((index: number) => boolean | null) | null;

export interface AlertEngineOptions {
  neighbours?: NeighbourOptions;
  /** Base of the link in events (e.g. the serve URL); `#frame=N` is appended. */
  linkBase?: string;
  /**
   * Rule filters tested on the index (records fed with their store index): a filter the columns answer costs
   * tens of ns a record, where every field of every record (`extractFields`) cost microseconds. Without it,
   * or for a record not stored, the filter runs on the record's fields.
   */
  matcher?: RuleMatcherFactory;
}

export class AlertEngine {
  readonly health: NeighbourHealth;
  private readonly states: RuleState[];
  private readonly linkBase: string;
  private firstTsNs: bigint | null = null;
  private prevTsNs = 0n;

  constructor(
    rules: readonly AlertRule[],
    private readonly onEvent: (event: AlertEvent) => void,
    opts: AlertEngineOptions = {},
  ) {
    this.health = new NeighbourHealth(opts.neighbours);
    const fieldsOf = (): FieldMap | null => this.currentFields();
    this.states = rules.map(
      (r) => new RuleState(r, r.predicate !== null && opts.matcher ? opts.matcher(r.filter, fieldsOf) : null),
    );
    this.linkBase = opts.linkBase ?? 'icmpcap:';
  }

  /** The record being observed (record null between records); its fields are made once, on first need. */
  private readonly current: {
    record: DecodedRecord | null;
    frame: number;
    link: string;
    fields: FieldMap | null;
  } = { record: null, frame: 0, link: '', fields: null };

  /** Every field of the record being observed (made once, on first need). */
  private currentFields(): FieldMap | null {
    const c = this.current;
    if (c.record === null) return null;
    c.fields ??= extractFields(c.record, {
      number: c.frame,
      ifname: c.link,
      firstTsNs: this.firstTsNs ?? c.record.tsNs,
      prevTsNs: this.prevTsNs,
    });
    return c.fields;
  }

  /**
   * Feeds one record (frame numbers are 1-based, as in the table); `index`: where the service stored it, so
   * that rule filters are tested on the index's columns (`matcher`).
   */
  observe(record: DecodedRecord, frame: number, link: string, index?: number): void {
    this.firstTsNs ??= record.tsNs;
    const findings = this.health.observe(record, frame, link);
    const current = this.current;
    current.record = record;
    current.frame = frame;
    current.link = link;
    current.fields = null;
    for (const st of this.states) {
      const c = st.rule.condition;
      if (c.kind === 'neighbour') {
        for (const f of findings) {
          if (c.finding === null || c.finding === f.kind) {
            this.fire(
              st,
              record.tsNs,
              { metric: f.kind, value: 1, op: null, threshold: null, windowSeconds: null },
              f.evidence,
              f,
            );
          }
        }
        continue;
      }
      if (c.kind === 'peer') {
        this.peer(st, record, frame);
        continue;
      }
      if (st.rule.predicate !== null) {
        let ok = index !== undefined && st.match !== null ? st.match(index) : null;
        if (ok === null) ok = st.rule.predicate(this.currentFields()!);
        if (!ok) continue;
      }
      // The window moves by one packet: constant work per packet (a flood fills it with thousands).
      const windowNs = BigInt(c.windowMs) * 1_000_000n;
      const sources = c.metric === 'sources';
      const w = st.window;
      w.push({ tsNs: record.tsNs, frame, src: record.src });
      if (sources) st.sources.set(record.src, (st.sources.get(record.src) ?? 0) + 1);
      while (st.head < w.length && record.tsNs - w[st.head]!.tsNs >= windowNs) {
        const gone = w[st.head++]!;
        if (sources) {
          const n = st.sources.get(gone.src)! - 1;
          if (n === 0) st.sources.delete(gone.src);
          else st.sources.set(gone.src, n);
        }
      }
      if (st.head > 1024 && st.head * 2 > w.length) {
        st.window = w.slice(st.head);
        st.head = 0;
      }
      const count = st.window.length - st.head;
      const value =
        c.metric === 'count' ? count : c.metric === 'rate' ? count / (c.windowMs / 1000) : st.sources.size;
      if (compare(c.op, value, c.value) && !this.coolingDown(st, record.tsNs)) {
        const from = Math.max(st.head, st.window.length - MAX_EVIDENCE);
        this.fire(
          st,
          record.tsNs,
          { metric: c.metric, value, op: c.op, threshold: c.value, windowSeconds: c.windowMs / 1000 },
          st.window.slice(from).map((s) => s.frame),
        );
      }
    }
    this.prevTsNs = record.tsNs;
    current.record = null;
    current.fields = null;
  }

  private peer(st: RuleState, record: DecodedRecord, frame: number): void {
    const c = st.rule.condition;
    if (c.kind !== 'peer' || !record.hasEcho) return;
    const request = record.family === 4 ? record.type === 8 : record.type === 128;
    const reply = record.family === 4 ? record.type === 0 : record.type === 129;
    const key = `${record.id}:${record.seq}`;
    const w = st.echo;
    if (request && record.dst === c.peer) w.request(key, record.tsNs, frame);
    else if (reply && record.src === c.peer) w.reply(key, record.tsNs);
    else return;
    w.advance(record.tsNs, BigInt(c.windowMs) * 1_000_000n);
    let value: number;
    if (c.metric === 'loss') {
      // Settled: answered, or unanswered past the echo timeout (lost).
      const settled = w.answered + w.lost;
      if (settled === 0) return;
      value = (100 * w.lost) / settled;
    } else {
      if (w.answered === 0) return;
      value = w.answeredSumNs / w.answered / 1e6;
    }
    if (compare(c.op, value, c.value) && !this.coolingDown(st, record.tsNs)) {
      const evidence =
        c.metric === 'loss'
          ? w.frames((e) => e.settled && e.answeredNs === null)
          : w.frames((e) => e.answeredNs !== null);
      this.fire(
        st,
        record.tsNs,
        { metric: c.metric, value, op: c.op, threshold: c.value, windowSeconds: c.windowMs / 1000 },
        evidence,
      );
    }
  }

  /** Within the rule's cool-down after its last firing (a firing now would be dropped). */
  private coolingDown(st: RuleState, tsNs: bigint): boolean {
    return st.lastFireNs !== null && tsNs - st.lastFireNs < BigInt(st.rule.cooldownMs) * 1_000_000n;
  }

  private fire(
    st: RuleState,
    tsNs: bigint,
    figures: AlertEvent['figures'],
    evidence: number[],
    finding?: NeighbourFinding,
  ): void {
    const cooldownNs = BigInt(st.rule.cooldownMs) * 1_000_000n;
    if (st.lastFireNs !== null && tsNs - st.lastFireNs < cooldownNs) return;
    st.lastFireNs = tsNs;
    const ev = evidence.slice(-MAX_EVIDENCE);
    this.onEvent({
      rule: st.rule.name,
      text: st.rule.text,
      time: new Date(Number(tsNs / 1_000_000n)).toISOString(),
      tsNs,
      figures,
      evidence: ev,
      ...(finding ? { finding } : {}),
      link: `${this.linkBase}#frame=${ev[0] ?? 0}`,
    });
  }
}
