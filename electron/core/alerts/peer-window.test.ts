/**
 * Peer rules (loss and RTT to one host) keep running counts over their window. This holds their firings equal
 * to a direct evaluation (the rule's definition, as the engine first computed it: every request in the window
 * looked at on every echo record) over pings with loss, late replies, floods and other hosts' traffic.
 */
import { describe, expect, it } from 'vitest';
import type { DecodedRecord } from '../record.js';
import { AlertEngine, type AlertEvent } from './engine.js';
import { parseAlertRule, type AlertRule } from './rule.js';
import { prng } from '../bench/synth.js';

const PEER = '192.0.2.7';
const ME = '192.0.2.1';
const TIMEOUT_NS = 1_000_000_000n;

function echo(request: boolean, tsNs: bigint, peer: string, id: number, seq: number): DecodedRecord {
  return {
    tsNs,
    family: 4,
    type: request ? 8 : 0,
    code: 0,
    hasEcho: true,
    id,
    seq,
    src: request ? ME : peer,
    dst: request ? peer : ME,
    ttl: 64,
  } as unknown as DecodedRecord;
}

/** Pings to PEER (calm, lossy, slow and flooding phases) and to another host, in capture order. */
function traffic(): DecodedRecord[] {
  const rnd = prng(99);
  const out: DecodedRecord[] = [];
  let t = 1_700_000_000_000_000_000n;
  let seq = 0;
  const phases = [
    { n: 40, gapMs: 1000, loss: 0, rttMs: 5 },
    { n: 60, gapMs: 200, loss: 0.4, rttMs: 8 },
    { n: 3000, gapMs: 1, loss: 0.02, rttMs: 2 }, // ping -f
    { n: 30, gapMs: 300, loss: 0, rttMs: 60 },
    { n: 50, gapMs: 100, loss: 0.1, rttMs: 1500 }, // replies after the timeout
    { n: 2000, gapMs: 2, loss: 0.5, rttMs: 30 },
  ];
  const pending: DecodedRecord[] = [];
  for (const ph of phases) {
    for (let k = 0; k < ph.n; k++) {
      t += BigInt(Math.round(ph.gapMs * (0.5 + rnd()) * 1e6));
      while (pending.length > 0 && pending[0]!.tsNs <= t) out.push(pending.shift()!);
      seq++;
      out.push(echo(true, t, PEER, 1, seq));
      if (rnd() < 0.3) out.push(echo(true, t + 1000n, '198.51.100.9', 2, seq));
      if (rnd() >= ph.loss) {
        const reply = echo(false, t + BigInt(Math.round(ph.rttMs * (0.5 + rnd()) * 1e6)), PEER, 1, seq);
        let at = pending.length;
        while (at > 0 && pending[at - 1]!.tsNs > reply.tsNs) at--;
        pending.splice(at, 0, reply);
      }
    }
  }
  out.push(...pending);
  return out;
}

/** The rule's definition, evaluated directly on every echo record (the engine's first implementation). */
function reference(
  rule: AlertRule,
  records: DecodedRecord[],
): { tsNs: bigint; value: number; evidence: number[] }[] {
  const c = rule.condition;
  if (c.kind !== 'peer') throw new Error('a peer rule');
  const echoes = new Map<string, { tsNs: bigint; frame: number; answeredNs: bigint | null }>();
  const out: { tsNs: bigint; value: number; evidence: number[] }[] = [];
  let last: bigint | null = null;
  records.forEach((r, i) => {
    const key = `${r.id}:${r.seq}`;
    if (r.type === 8 && r.dst === c.peer) echoes.set(key, { tsNs: r.tsNs, frame: i + 1, answeredNs: null });
    else if (r.type === 0 && r.src === c.peer) {
      const q = echoes.get(key);
      if (q && q.answeredNs === null) q.answeredNs = r.tsNs - q.tsNs;
    } else return;
    const windowNs = BigInt(c.windowMs) * 1_000_000n;
    for (const [k, q] of echoes) if (r.tsNs - q.tsNs > windowNs) echoes.delete(k);
    const all = [...echoes.values()];
    let value: number;
    let evidence: number[];
    if (c.metric === 'loss') {
      const settled = all.filter((q) => q.answeredNs !== null || r.tsNs - q.tsNs >= TIMEOUT_NS);
      if (settled.length === 0) return;
      const lost = settled.filter((q) => q.answeredNs === null);
      value = (100 * lost.length) / settled.length;
      evidence = lost.map((q) => q.frame);
    } else {
      const answered = all.filter((q) => q.answeredNs !== null);
      if (answered.length === 0) return;
      value = answered.reduce((s, q) => s + Number(q.answeredNs), 0) / answered.length / 1e6;
      evidence = answered.map((q) => q.frame);
    }
    const fires =
      c.op === '>'
        ? value > c.value
        : c.op === '>='
          ? value >= c.value
          : c.op === '<'
            ? value < c.value
            : value <= c.value;
    if (!fires) return;
    if (last !== null && r.tsNs - last < BigInt(rule.cooldownMs) * 1_000_000n) return;
    last = r.tsNs;
    out.push({ tsNs: r.tsNs, value, evidence: evidence.slice(-100) });
  });
  return out;
}

describe('peer alert rules', () => {
  it('fire as the direct evaluation does, over floods, loss and late replies', () => {
    const records = traffic();
    const rules = [
      `peer ${PEER} loss > 10% over 5s; cooldown 500ms`,
      `peer ${PEER} loss >= 45% over 2s; cooldown 200ms`,
      `peer ${PEER} rtt > 20ms over 2s; cooldown 300ms`,
      `peer ${PEER} rtt < 3ms over 60s; cooldown 1s`,
      // A window shorter than the echo timeout: nothing is ever judged lost.
      `peer ${PEER} loss > 0% over 500ms`,
    ].map(parseAlertRule);
    for (const rule of rules) {
      const events: AlertEvent[] = [];
      const engine = new AlertEngine([rule], (e) => events.push(e));
      records.forEach((r, i) => engine.observe(r, i + 1, 'eth0'));
      const want = reference(rule, records);
      if (!rule.text.includes('500ms;') && !rule.text.endsWith('500ms'))
        expect(want.length, rule.text).toBeGreaterThan(2);
      expect(
        events.map((e) => ({ tsNs: e.tsNs, value: e.figures.value, evidence: e.evidence })),
        rule.text,
      ).toEqual(want.map((w) => ({ ...w, value: expect.closeTo(w.value, 9) as number })));
    }
  });

  it('counts a request sent again with the same sequence number once, the newer one', () => {
    const events: AlertEvent[] = [];
    const engine = new AlertEngine([parseAlertRule(`peer ${PEER} loss >= 50% over 60s; cooldown 1ms`)], (e) =>
      events.push(e),
    );
    const t = 1_700_000_000_000_000_000n;
    const s = 1_000_000_000n;
    const feed = [
      echo(true, t, PEER, 1, 1), // replaced by the next one before its timeout
      echo(true, t + s / 2n, PEER, 1, 1),
      echo(false, t + s / 2n + 1000n, PEER, 1, 1),
      echo(true, t + s, PEER, 1, 2), // lost
      echo(true, t + 3n * s, PEER, 1, 3),
    ];
    feed.forEach((r, i) => engine.observe(r, i + 1, 'eth0'));
    // At the last record: seq 1 (the newer request) answered, seq 2 lost, seq 3 not settled: 50%.
    expect(events.map((e) => [e.figures.value, e.evidence])).toEqual([[50, [4]]]);
  });
});
