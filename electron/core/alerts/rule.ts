/**
 * Alert rules: a display filter plus a condition over a window, then options, separated by `;`.
 *
 *   RULE      := CONDITION { ';' OPTION }
 *   CONDITION := [FILTER] ('count' | 'rate' | 'sources') OP NUMBER ['/s'] [('for' | 'over') DURATION]
 *              | 'peer' ADDRESS ('loss' OP NUMBER '%' | 'rtt' OP NUMBER 'ms') [('for' | 'over') DURATION]
 *              | 'new router' | 'neighbour' [KIND]          (KIND: a neighbour finding, e.g. dad-conflict)
 *   OP        := '>' | '>=' | '<' | '<='
 *   OPTION    := 'name' TEXT | 'cooldown' DURATION | 'webhook' URL | 'snapshot' DURATION | 'command' TEXT
 *   DURATION  := NUMBER ('ms' | 's' | 'm' | 'h')
 *
 * Examples: `icmp.type == 3 rate > 50/s for 5s; cooldown 60s; webhook http://127.0.0.1:9000/hook`,
 * `peer 192.0.2.1 loss > 5% over 60s`, `new router; snapshot 10s`.
 * count: matching packets in the window; rate: that count divided by the window; sources: distinct
 * source addresses among them. The window defaults to 1 s, the cool-down to 60 s.
 */
import { checkFilter, FilterSyntaxError, parseFilter } from '../filter/index.js';
import { Evaluator, type Predicate } from '../filter/evaluate.js';
import { NEIGHBOUR_FINDING_KINDS, type NeighbourFindingKind } from '../../common/insights.js';

export type Op = '>' | '>=' | '<' | '<=';

export type Condition =
  | { kind: 'packets'; metric: 'count' | 'rate' | 'sources'; op: Op; value: number; windowMs: number }
  | { kind: 'peer'; peer: string; metric: 'loss' | 'rtt'; op: Op; value: number; windowMs: number }
  | { kind: 'neighbour'; finding: NeighbourFindingKind | null };

export interface AlertRule {
  /** The rule as written. */
  text: string;
  name: string;
  filter: string;
  /** The compiled filter; null: every packet. */
  predicate: Predicate | null;
  condition: Condition;
  cooldownMs: number;
  webhook: string | null;
  /** Seconds of capture before and after the firing to save as pcapng; null: no snapshot. */
  snapshotSeconds: number | null;
  /** A shell command run with the event JSON on stdin; only when commands are enabled. */
  command: string | null;
}

/** A rule that does not parse: `position` is the 0-based offset of the bad part in the rule text. */
export class AlertRuleError extends Error {
  constructor(
    readonly rule: string,
    readonly position: number,
    message: string,
  ) {
    super(`${message}\n  ${rule}\n  ${' '.repeat(Math.max(0, position))}^`);
    this.name = 'AlertRuleError';
  }
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)$/;

function duration(text: string, rule: string, at: number): number {
  const m = DURATION.exec(text.trim());
  const ms = m ? Number(m[1]) * UNIT_MS[m[2]!]! : NaN;
  if (!(ms > 0))
    throw new AlertRuleError(rule, at, `"${text.trim()}" is not a duration: write e.g. 5s, 500ms, 2m`);
  return ms;
}

const PACKETS =
  /\b(count|rate|sources)\s*(>=|<=|>|<)\s*(\d+(?:\.\d+)?)\s*(\/s)?\s*(?:(?:for|over)\s+(\S+(?:\s*(?:ms|s|m|h))?))?\s*$/;
const PEER =
  /^peer\s+(\S+)\s+(loss|rtt)\s*(>=|<=|>|<)\s*(\d+(?:\.\d+)?)\s*(%|ms)?\s*(?:(?:for|over)\s+(.+))?$/;

function parseCondition(text: string, rule: string, base: number): { filter: string; condition: Condition } {
  const t = text.trim();
  const lead = base + text.indexOf(t);
  if (t === 'new router') return { filter: '', condition: { kind: 'neighbour', finding: 'new-router' } };
  const nb = /^neighbour(?:\s+(\S+))?$/.exec(t);
  if (nb) {
    const kind = nb[1] ?? null;
    if (kind !== null && !(NEIGHBOUR_FINDING_KINDS as readonly string[]).includes(kind)) {
      throw new AlertRuleError(
        rule,
        lead + t.indexOf(kind),
        `unknown neighbour finding "${kind}": use one of ${NEIGHBOUR_FINDING_KINDS.join(', ')}`,
      );
    }
    return { filter: '', condition: { kind: 'neighbour', finding: kind as NeighbourFindingKind | null } };
  }
  const peer = PEER.exec(t);
  if (peer) {
    const [, addr, metric, op, value, unit, win] = peer;
    if (metric === 'loss' && unit !== '%')
      throw new AlertRuleError(rule, lead + t.indexOf(value!), 'loss is a percentage: write e.g. loss > 5%');
    if (metric === 'rtt' && unit === '%')
      throw new AlertRuleError(
        rule,
        lead + t.indexOf(value!),
        'rtt is in milliseconds: write e.g. rtt > 100ms',
      );
    return {
      filter: '',
      condition: {
        kind: 'peer',
        peer: addr!,
        metric: metric as 'loss' | 'rtt',
        op: op as Op,
        value: Number(value),
        windowMs: win ? duration(win, rule, lead + t.lastIndexOf(win)) : 60_000,
      },
    };
  }
  const m = PACKETS.exec(t);
  if (!m) {
    throw new AlertRuleError(
      rule,
      lead + t.length,
      'expected a condition at the end: count|rate|sources OP NUMBER [for DURATION], peer ADDR loss|rtt OP NUMBER, new router or neighbour',
    );
  }
  const [, metric, op, value, perSecond, win] = m;
  if (perSecond && metric !== 'rate')
    throw new AlertRuleError(rule, lead + m.index, `"/s" goes with rate, not ${metric}`);
  return {
    filter: t.slice(0, m.index).trim(),
    condition: {
      kind: 'packets',
      metric: metric as 'count' | 'rate' | 'sources',
      op: op as Op,
      value: Number(value),
      windowMs: win ? duration(win, rule, lead + t.lastIndexOf(win)) : 1000,
    },
  };
}

/** Parses one rule; throws AlertRuleError pointing at the bad part. */
export function parseAlertRule(rule: string): AlertRule {
  const parts = rule.split(';');
  const head = parts[0]!;
  const { filter, condition } = parseCondition(head, rule, 0);
  let predicate: Predicate | null = null;
  if (filter !== '') {
    const at = rule.indexOf(filter);
    try {
      checkFilter(filter);
      const ast = parseFilter(filter);
      predicate = ast === null ? null : new Evaluator().node(ast);
    } catch (e) {
      if (e instanceof FilterSyntaxError)
        throw new AlertRuleError(rule, at + e.position, `filter: ${e.message}`);
      throw e;
    }
  }
  const out: AlertRule = {
    text: rule,
    name: rule.trim(),
    filter,
    predicate,
    condition,
    cooldownMs: 60_000,
    webhook: null,
    snapshotSeconds: null,
    command: null,
  };
  let offset = head.length + 1;
  for (const part of parts.slice(1)) {
    const t = part.trim();
    const at = offset + part.indexOf(t);
    offset += part.length + 1;
    if (t === '') continue;
    const sp = t.search(/\s/);
    const key = sp < 0 ? t : t.slice(0, sp);
    const arg = sp < 0 ? '' : t.slice(sp).trim();
    const argAt = at + (sp < 0 ? t.length : t.indexOf(arg, sp));
    if (arg === '') throw new AlertRuleError(rule, argAt, `${key} needs a value`);
    if (key === 'name') out.name = arg;
    else if (key === 'cooldown') out.cooldownMs = duration(arg, rule, argAt);
    else if (key === 'snapshot') out.snapshotSeconds = duration(arg, rule, argAt) / 1000;
    else if (key === 'command') out.command = arg;
    else if (key === 'webhook') {
      let url: URL;
      try {
        url = new URL(arg);
      } catch {
        throw new AlertRuleError(rule, argAt, `"${arg}" is not a URL: write e.g. https://example.org/hook`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:')
        throw new AlertRuleError(rule, argAt, 'webhooks are http: or https: URLs');
      out.webhook = arg;
    } else
      throw new AlertRuleError(
        rule,
        at,
        `unknown option "${key}": use name, cooldown, webhook, snapshot or command`,
      );
  }
  return out;
}
