/** Alert rules over the record stream, and what their firings do. See ./rule.ts for the rule form. */
import { postWebhook, redactUrl, runCommand, SnapshotRecorder } from './actions.js';
import { AlertEngine, type AlertEvent, type RuleMatcherFactory } from './engine.js';
import type { AlertRule } from './rule.js';
import { commandSpawner } from './spawner.js';
import type { NeighbourOptions } from '../neighbours/health.js';
import type { DecodedRecord } from '../record.js';

export { AlertRuleError, parseAlertRule, type AlertRule } from './rule.js';
export { eventJson, redactUrl } from './actions.js';
export type { AlertEvent } from './engine.js';

export interface AlertRunnerOptions {
  /** Where snapshots go (required when a rule asks for one). */
  snapshotDir?: string;
  /** Commands run only when this is true (`--alert-commands`). */
  allowCommands?: boolean;
  linkBase?: string;
  neighbours?: NeighbourOptions;
  webhookBackoffMs?: number;
  log?: (line: string) => void;
  onEvent?: (event: AlertEvent) => void;
  /** Rule filters on the capture's index (records observed with their store index): engine.ts. */
  matcher?: RuleMatcherFactory;
}

export class AlertRunner {
  readonly events: AlertEvent[] = [];
  readonly engine: AlertEngine;
  private readonly snapshots: SnapshotRecorder | null;
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly log: (line: string) => void;

  constructor(
    readonly rules: readonly AlertRule[],
    private readonly opts: AlertRunnerOptions = {},
  ) {
    this.log = opts.log ?? ((l) => process.stderr.write(`${l}\n`));
    const keep = Math.max(0, ...rules.map((r) => r.snapshotSeconds ?? 0));
    if (keep > 0 && opts.snapshotDir === undefined)
      throw new Error('alert snapshots need a directory to write to');
    this.snapshots =
      keep > 0 && opts.snapshotDir !== undefined
        ? new SnapshotRecorder(opts.snapshotDir, keep, (path, n) =>
            this.log(`icmpcap alerts: snapshot ${path} (${n} packets)`),
          )
        : null;
    // The command helper starts now, while rules are read, not at the first firing (see spawner.ts).
    if (opts.allowCommands && rules.some((r) => r.command !== null)) commandSpawner.start();
    const byText = new Map(rules.map((r) => [r.text, r]));
    this.engine = new AlertEngine(rules, (ev) => this.fired(byText.get(ev.text)!, ev), {
      ...(opts.neighbours ? { neighbours: opts.neighbours } : {}),
      ...(opts.linkBase ? { linkBase: opts.linkBase } : {}),
      ...(opts.matcher ? { matcher: opts.matcher } : {}),
    });
  }

  /** One record; `index`: its store index, when it was stored (rule filters then read the index). */
  observe(record: DecodedRecord, frame: number, link: string, index?: number): void {
    this.snapshots?.observe(record, frame, link);
    this.engine.observe(record, frame, link, index);
  }

  /** Writes pending snapshots and waits for webhooks and commands in flight. */
  async flush(): Promise<void> {
    if (this.snapshots) await this.snapshots.flush();
    await Promise.all([...this.inflight]);
  }

  private track(p: Promise<unknown>): void {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  private fired(rule: AlertRule, ev: AlertEvent): void {
    this.events.push(ev);
    const v = ev.figures.value;
    this.log(
      `icmpcap alert: ${rule.name}: ${ev.figures.metric} ${Number.isInteger(v) ? v : v.toFixed(2)} at ${ev.time}`,
    );
    this.opts.onEvent?.(ev);
    this.snapshots?.fired(rule, ev);
    if (rule.webhook !== null) {
      const url = rule.webhook;
      this.track(
        postWebhook(url, ev, {
          log: this.log,
          ...(this.opts.webhookBackoffMs ? { backoffMs: this.opts.webhookBackoffMs } : {}),
        }).then((ok) => ok || this.log(`icmpcap alerts: webhook ${redactUrl(url)} gave up`)),
      );
    }
    if (rule.command !== null) {
      if (this.opts.allowCommands) this.track(runCommand(rule.command, ev));
      else
        this.log(`icmpcap alerts: rule "${rule.name}" has a command; run with --alert-commands to allow it`);
    }
  }
}
