/**
 * Evaluates alert rules over the record stream, in packet time (so a capture file replays the same
 * firings as the live capture did). Each firing is an AlertEvent; actions (webhook, snapshot, command)
 * run in ./actions.ts. Neighbour findings come from the health engine fed the same records.
 */
import { extractFields } from '../fields/extract.js';
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
  tsNs: bigint;
  frame: number;
  answeredNs: bigint | null;
}

const MAX_EVIDENCE = 100;
/** An echo request unanswered for this long counts as lost. */
const ECHO_TIMEOUT_NS = 1_000_000_000n;

function compare(op: Op, a: number, b: number): boolean {
  return op === '>' ? a > b : op === '>=' ? a >= b : op === '<' ? a < b : a <= b;
}

class RuleState {
  window: Seen[] = [];
  echo = new Map<string, EchoReq>();
  lastFireNs: bigint | null = null;
  constructor(readonly rule: AlertRule) {}
}

export interface AlertEngineOptions {
  neighbours?: NeighbourOptions;
  /** Base of the link in events (e.g. the serve URL); `#frame=N` is appended. */
  linkBase?: string;
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
    this.states = rules.map((r) => new RuleState(r));
    this.linkBase = opts.linkBase ?? 'icmpcap:';
  }

  /** Feeds one record (frame numbers are 1-based, as in the table). */
  observe(record: DecodedRecord, frame: number, link: string): void {
    this.firstTsNs ??= record.tsNs;
    const findings = this.health.observe(record, frame, link);
    let fields: ReturnType<typeof extractFields> | null = null;
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
        fields ??= extractFields(record, {
          number: frame,
          ifname: link,
          firstTsNs: this.firstTsNs,
          prevTsNs: this.prevTsNs,
        });
        if (!st.rule.predicate(fields)) continue;
      }
      const windowNs = BigInt(c.windowMs) * 1_000_000n;
      st.window.push({ tsNs: record.tsNs, frame, src: record.src });
      while (st.window.length > 0 && record.tsNs - st.window[0]!.tsNs >= windowNs) st.window.shift();
      const count = st.window.length;
      const value =
        c.metric === 'count'
          ? count
          : c.metric === 'rate'
            ? count / (c.windowMs / 1000)
            : new Set(st.window.map((s) => s.src)).size;
      if (compare(c.op, value, c.value)) {
        this.fire(
          st,
          record.tsNs,
          { metric: c.metric, value, op: c.op, threshold: c.value, windowSeconds: c.windowMs / 1000 },
          st.window.map((s) => s.frame),
        );
      }
    }
    this.prevTsNs = record.tsNs;
  }

  private peer(st: RuleState, record: DecodedRecord, frame: number): void {
    const c = st.rule.condition;
    if (c.kind !== 'peer' || !record.hasEcho) return;
    const request = record.family === 4 ? record.type === 8 : record.type === 128;
    const reply = record.family === 4 ? record.type === 0 : record.type === 129;
    const key = `${record.id}:${record.seq}`;
    if (request && record.dst === c.peer) st.echo.set(key, { tsNs: record.tsNs, frame, answeredNs: null });
    else if (reply && record.src === c.peer) {
      const req = st.echo.get(key);
      if (req && req.answeredNs === null) req.answeredNs = record.tsNs - req.tsNs;
    } else return;
    const windowNs = BigInt(c.windowMs) * 1_000_000n;
    for (const [k, r] of st.echo) if (record.tsNs - r.tsNs > windowNs) st.echo.delete(k);
    const all = [...st.echo.values()];
    let value: number;
    let evidence: number[];
    if (c.metric === 'loss') {
      const settled = all.filter((r) => r.answeredNs !== null || record.tsNs - r.tsNs >= ECHO_TIMEOUT_NS);
      if (settled.length === 0) return;
      const lost = settled.filter((r) => r.answeredNs === null);
      value = (100 * lost.length) / settled.length;
      evidence = lost.map((r) => r.frame);
    } else {
      const answered = all.filter((r) => r.answeredNs !== null);
      if (answered.length === 0) return;
      value = answered.reduce((s, r) => s + Number(r.answeredNs) / 1e6, 0) / answered.length;
      evidence = answered.map((r) => r.frame);
    }
    if (compare(c.op, value, c.value)) {
      this.fire(
        st,
        record.tsNs,
        { metric: c.metric, value, op: c.op, threshold: c.value, windowSeconds: c.windowMs / 1000 },
        evidence,
      );
    }
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
