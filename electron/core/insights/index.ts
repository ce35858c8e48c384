/**
 * Problems, Paths, Neighbours and Alerts for the UI: the answers, neighbour health and alert engines fed
 * from the service's record tap, their results served over the contract (electron/common/insights.ts) and
 * pushed at most twice a second while they change, as the service pushes its aggregates.
 *
 *   const insights = attachInsights(service, { alerts: flagValues });   // serve, the Electron main process
 *
 * A capture that starts again (new capture, Clear, an opened file: frame numbers start over at 1) starts
 * every engine over.
 */
import { mkdirSync } from 'node:fs';
import type { z } from 'zod';
import {
  type AlertFiring,
  type InsightRequestName,
  type InsightRequestSchemas,
  MAX_FIRINGS,
  type NeighboursSnapshot,
} from '../../common/insights.js';
import { decodeError } from '../answers/flows.js';
import { PathBuilder } from '../answers/traceroute.js';
import { AlertRunner, type AlertEvent } from '../alerts/index.js';
import { snapshotName } from '../alerts/actions.js';
import { type AlertFlagValues, alertsFile, snapshotDir } from '../alerts/cli.js';
import { NeighbourHealth, type NeighbourOptions } from '../neighbours/health.js';
import { Direction, OFF, REC_F_HAS_ECHO, REC_F_HAS_PID, forEachRecord } from '../record.js';
import { CachedDecoder } from './decode.js';
import type { CaptureService } from '../service.js';
import { AlertRuleStore, checkRule } from './alert-rules.js';
import { findingInfo, firingInfo, hostInfo, pathInfo, routerInfo } from './convert.js';
import { GatewayTable } from './gateways.js';
import { ProblemTracker, routeGet } from './problems.js';

export interface InsightsOptions {
  /** The alert flags of the command line (`--alert`, `--no-alert-file`, `--alert-dir`, `--alert-commands`). */
  alerts?: AlertFlagValues;
  /** How often changes are pushed, ms (default 500). */
  pushMs?: number;
  /** Learning period of neighbour health, s (default 30). */
  learnSeconds?: number;
  /** Where the rules file is (default $XDG_CONFIG_HOME/icmpcap/alerts.conf). */
  rulesFile?: string;
  log?: (line: string) => void;
}

const MAX_FINDINGS = 1000;
const MAX_PATHS = 200;
const MAX_HOSTS = 1000;

/** ICMP types the answer engines look at; the rest of a flood is skipped without decoding. */
const V4_TYPES = new Set([0, 3, 4, 5, 8, 9, 11, 12]);
const V6_TYPES = new Set([1, 2, 3, 4, 128, 129, 133, 134, 135, 136]);

type Params<M extends InsightRequestName> = z.output<(typeof InsightRequestSchemas)[M]>;

export class Insights {
  private problems!: ProblemTracker;
  private paths!: PathBuilder;
  private health!: NeighbourHealth;
  private healthOptions: NeighbourOptions;
  private findingIds = 0;
  private firings: AlertFiring[] = [];
  private firingIds = 0;
  private runner: AlertRunner | null = null;
  private readonly rules: AlertRuleStore;
  private readonly gateways = new GatewayTable();
  private readonly decoder = new CachedDecoder();
  private lastNo = 0;
  private dirty = { problems: false, paths: false, neighbours: false };
  private readonly timer: NodeJS.Timeout;
  private readonly offTap: () => void;
  private readonly offEvents: () => void;
  private readonly log: (line: string) => void;

  constructor(
    private readonly service: CaptureService,
    private readonly opts: InsightsOptions = {},
  ) {
    this.log = opts.log ?? ((l) => process.stderr.write(`${l}\n`));
    const flags = opts.alerts ?? {};
    this.rules = new AlertRuleStore(
      opts.rulesFile ?? alertsFile(),
      flags.alert ?? [],
      !flags['no-alert-file'],
    );
    this.healthOptions = {
      learnSeconds: opts.learnSeconds ?? 30,
      gatewayFor: (d) => this.gateways.gatewayFor(d),
    };
    this.reset();
    this.rebuildRunner();
    this.offTap = service.tapRecords((batch, firstNo, ifname, byteOffset, byteLength, firstIndex) =>
      this.onBatch(batch, firstNo, ifname, byteOffset, byteLength, firstIndex),
    );
    // Clear empties the capture without a new batch: the answers go with it.
    this.offEvents = service.on((event, data) => {
      if (event === 'counts' && (data as { total: number }).total === 0 && this.lastNo > 0) this.reset();
    });
    service.serveRequests({
      'problems.list': () => this.problems.list(),
      'paths.list': () => this.pathList(),
      'neighbours.get': () => this.neighbours(),
      'neighbours.configure': (p) => this.configure(p as Params<'neighbours.configure'>),
      'alerts.rules': () => this.rules.info(),
      'alerts.check': (p) => (p as Params<'alerts.check'>).rules.map((t) => checkRule(t).check),
      'alerts.setRules': (p) => this.setRules(p as Params<'alerts.setRules'>),
      'alerts.firings': () => this.firings,
    });
    this.timer = setInterval(() => service.loopWork(() => this.push()), opts.pushMs ?? 500);
    this.timer.unref();
  }

  /** Every engine starts over (a new capture, Clear, an opened file). Firings stay: they happened. */
  private reset(): void {
    this.problems = new ProblemTracker(
      (dst) =>
        this.service.captureState.source === 'file' ? Promise.reject(new Error('file')) : routeGet(dst),
      () => (this.dirty.problems = true),
    );
    this.paths = new PathBuilder();
    this.health = new NeighbourHealth(this.healthOptions);
    this.findingIds = 0;
    this.lastNo = 0;
    this.dirty = { problems: true, paths: true, neighbours: true };
    if (this.runner) this.rebuildRunner();
  }

  private rebuildRunner(): void {
    const rules = this.rules.rules();
    if (rules.length === 0) {
      this.runner = null;
      return;
    }
    const flags = this.opts.alerts ?? {};
    const needsDir = rules.some((r) => r.snapshotSeconds !== null);
    const dir = flags['alert-dir'] ?? snapshotDir();
    let snapshots = needsDir;
    if (needsDir) {
      try {
        mkdirSync(dir, { recursive: true });
      } catch (err) {
        snapshots = false;
        this.log(
          `icmpcap alerts: no snapshots: cannot create ${dir} (${String(err)}); give one with --alert-dir`,
        );
      }
    }
    const byText = new Map(rules.map((r) => [r.text, r]));
    this.runner = new AlertRunner(snapshots ? rules : rules.map((r) => ({ ...r, snapshotSeconds: null })), {
      ...(snapshots ? { snapshotDir: dir } : {}),
      allowCommands: flags['alert-commands'] === true,
      neighbours: this.healthOptions,
      log: this.log,
      matcher: (filter, fields) => this.service.ruleMatcher(filter, fields),
      onEvent: (ev: AlertEvent) => {
        const rule = byText.get(ev.text);
        const snapshot = snapshots && rule && rule.snapshotSeconds !== null ? snapshotName(rule, ev) : null;
        const firing = firingInfo(ev, ++this.firingIds, snapshot);
        this.firings.push(firing);
        if (this.firings.length > MAX_FIRINGS) this.firings.shift();
        this.service.publish('alert.fired', firing);
      },
    });
  }

  private onBatch(
    batch: ArrayBuffer,
    firstNo: number,
    ifname: (ifindex: number) => string,
    byteOffset: number,
    byteLength: number,
    firstIndex?: number,
  ): void {
    if (firstNo <= this.lastNo) this.reset();
    let no = firstNo;
    const runner = this.runner;
    forEachRecord(
      batch,
      (view, offset) => {
        const frame = no++;
        // Its store index (rule filters read the index's columns there).
        const index = firstIndex === undefined ? undefined : firstIndex + (frame - firstNo);
        const family = view.getUint8(offset + OFF.family) === 6 ? 6 : 4;
        const type = view.getUint8(offset + OFF.type);
        let wanted = (family === 6 ? V6_TYPES : V4_TYPES).has(type);
        // Echo requests that came in or passed through are nobody's probes here (passive traceroute skips them).
        if (wanted && (type === 8 || type === 128)) {
          const dir = view.getUint8(offset + OFF.dir);
          wanted = dir === Direction.Out || dir === Direction.Unknown;
        }
        if (!wanted && runner === null) return;
        // Echo requests and replies (a flood's every record) only feed the paths, and the senders' pids: read
        // from the bytes, without a decoded record (alert rules, when set, still get every record decoded).
        const flags = view.getUint16(offset + OFF.flags, true);
        if (isEcho(family, type) && flags & REC_F_HAS_ECHO) {
          if (wanted) {
            const run = this.paths.echoAt(view, offset);
            this.dirty.paths = true;
            if (run !== null && flags & REC_F_HAS_PID && (type === 8 || type === 128)) {
              const pid = view.getUint32(offset + OFF.pid, true);
              if (run.pid !== pid) {
                run.pid = pid;
                this.problems.echoSender(run.family, run.source, run.destination, run.echoId, pid);
              }
            }
          }
          if (runner === null) return;
          const record = this.decoder.decode(view, offset);
          runner.observe(record, frame, ifname(record.ifindex), index);
          return;
        }
        const record = this.decoder.decode(view, offset);
        const link = ifname(record.ifindex);
        runner?.observe(record, frame, link, index);
        if (!wanted) return;
        const pid = flags & REC_F_HAS_PID ? view.getUint32(offset + OFF.pid, true) : null;
        // One decode of an error for both engines (each decoding it was a third of what the tap allocated).
        const report = decodeError(record, false, this.decoder.address);
        if (this.problems.add(record, frame, pid, report)) this.dirty.problems = true;
        if (isNeighbourMessage(family, type)) {
          this.health.observe(record, frame, link);
          this.dirty.neighbours = true;
        } else {
          this.paths.add(record, report);
          this.dirty.paths = true;
        }
      },
      byteOffset,
      byteLength,
    );
    this.lastNo = no - 1;
  }

  /** The newest MAX_PATHS paths. */
  private pathList() {
    return this.paths.paths().slice(-MAX_PATHS).map(pathInfo);
  }

  private neighbours(): NeighboursSnapshot {
    const findings = this.health.findings;
    const from = Math.max(0, findings.length - MAX_FINDINGS);
    return {
      routers: this.health.routerList().map(routerInfo),
      hosts: this.health.hostList().slice(-MAX_HOSTS).map(hostInfo),
      findings: findings.slice(from).map((f, i) => findingInfo(f, from + i + 1)),
      learningUntilNs: this.health.learningUntilNs?.toString() ?? null,
      allowRouters: this.healthOptions.allowRouters ?? null,
    };
  }

  private configure(p: Params<'neighbours.configure'>): NeighboursSnapshot {
    this.healthOptions = {
      gatewayFor: (d) => this.gateways.gatewayFor(d),
      ...(p.allowRouters && p.allowRouters.length > 0
        ? { allowRouters: p.allowRouters }
        : { learnSeconds: p.learnSeconds ?? this.opts.learnSeconds ?? 30 }),
    };
    this.health = new NeighbourHealth(this.healthOptions);
    this.rebuildRunner();
    this.dirty.neighbours = true;
    return this.neighbours();
  }

  private setRules(p: Params<'alerts.setRules'>) {
    const { saved, info } = this.rules.set(p.rules);
    if (saved) {
      this.rebuildRunner();
      this.service.publish('alert.rules', info);
    }
    return info;
  }

  private push(): void {
    if (this.problems.waitingForRouteCheck) this.dirty.problems = true;
    const d = this.dirty;
    this.dirty = { problems: false, paths: false, neighbours: false };
    if (d.problems) this.service.publish('problems', this.problems.list());
    if (d.paths) this.service.publish('paths', this.pathList());
    if (d.neighbours) this.service.publish('neighbours', this.neighbours());
  }

  /** Waits for the alert actions in flight (webhooks, snapshots). */
  flush(): Promise<void> {
    return this.runner?.flush() ?? Promise.resolve();
  }

  close(): void {
    clearInterval(this.timer);
    this.offTap();
    this.offEvents();
  }
}

function isEcho(family: 4 | 6, type: number): boolean {
  return family === 6 ? type === 128 || type === 129 : type === 8 || type === 0;
}

/** ND (ICMPv6 133-136), ICMPv4 router discovery (9) and redirects (5): the neighbour health engine's. */
function isNeighbourMessage(family: 4 | 6, type: number): boolean {
  return family === 6 ? type >= 133 && type <= 136 : type === 9 || type === 5;
}

export function attachInsights(service: CaptureService, opts: InsightsOptions = {}): Insights {
  return new Insights(service, opts);
}
