/**
 * The answer engines behind Problems, Paths and Neighbours (problems, passive traceroute, neighbour health),
 * fed with record batches as the service ingests them. They run in the insights worker (worker.ts), off the
 * thread that takes the capture in; index.ts forwards the batches and serves their lists.
 *
 *   const engines = new InsightEngines({ learnSeconds: 30 });
 *   engines.onBatch(batch, firstNo, (ifindex) => name, 0, batch.byteLength);
 *   engines.problemList(); engines.pathList(); engines.neighbours();
 */
import type { NeighboursSnapshot, PathInfo, ProblemInfo } from '../../common/insights.js';
import { decodeError } from '../answers/flows.js';
import { PathBuilder } from '../answers/traceroute.js';
import { NeighbourHealth, type NeighbourOptions } from '../neighbours/health.js';
import { Direction, OFF, REC_F_HAS_ECHO, REC_F_HAS_PID, forEachRecord } from '../record.js';
import { CachedDecoder } from './decode.js';
import { findingInfo, hostInfo, pathInfo, routerInfo } from './convert.js';
import { GatewayTable } from './gateways.js';
import { ProblemTracker, routeGet } from './problems.js';

const MAX_FINDINGS = 1000;
const MAX_PATHS = 200;
const MAX_HOSTS = 1000;

/** ICMP types the answer engines look at; the rest of a flood is skipped without decoding. */
const V4_TYPES = new Set([0, 3, 4, 5, 8, 9, 11, 12]);
const V6_TYPES = new Set([1, 2, 3, 4, 128, 129, 133, 134, 135, 136]);

/** What neighbours.configure sets: an allow list of routers, or a learning period. */
export interface HealthSettings {
  learnSeconds?: number | undefined;
  allowRouters?: string[] | undefined;
}

/** The neighbour health options of `settings` (an allow list wins over learning), routed through `gateways`. */
export function healthOptions(
  settings: HealthSettings,
  defaultLearnSeconds: number,
  gateways: GatewayTable,
): NeighbourOptions {
  return {
    gatewayFor: (d) => gateways.gatewayFor(d),
    ...(settings.allowRouters && settings.allowRouters.length > 0
      ? { allowRouters: settings.allowRouters }
      : { learnSeconds: settings.learnSeconds ?? defaultLearnSeconds }),
  };
}

export interface EngineOptions {
  /** Learning period of neighbour health, s (default 30). */
  learnSeconds?: number;
}

/** Which lists changed since `takeChanges` was last asked. */
export interface Changes {
  problems: boolean;
  paths: boolean;
  neighbours: boolean;
}

export class InsightEngines {
  private problems!: ProblemTracker;
  private paths!: PathBuilder;
  private health!: NeighbourHealth;
  private settings: HealthSettings = {};
  private readonly gateways = new GatewayTable();
  private readonly decoder = new CachedDecoder();
  private lastNo = 0;
  private dirty: Changes = { problems: false, paths: false, neighbours: false };
  /** Whether the capture is read from a file (its problems are not checked against this host's routes). */
  fromFile = false;

  constructor(private readonly opts: EngineOptions = {}) {
    this.reset();
  }

  /** Every engine starts over (a new capture, Clear, an opened file). */
  reset(): void {
    this.problems = new ProblemTracker(
      (dst) => (this.fromFile ? Promise.reject(new Error('file')) : routeGet(dst)),
      () => (this.dirty.problems = true),
    );
    this.paths = new PathBuilder();
    this.health = new NeighbourHealth(this.healthOptions());
    this.lastNo = 0;
    this.dirty = { problems: true, paths: true, neighbours: true };
  }

  private healthOptions(): NeighbourOptions {
    return healthOptions(this.settings, this.opts.learnSeconds ?? 30, this.gateways);
  }

  /** The records of `batch` from `byteOffset`, numbered from `firstNo` (a number not above the last seen
   * starts every engine over: frame numbers start at 1 again in a new capture). */
  onBatch(
    batch: ArrayBuffer,
    firstNo: number,
    ifname: (ifindex: number) => string,
    byteOffset: number,
    byteLength: number,
  ): void {
    if (firstNo <= this.lastNo) this.reset();
    let no = firstNo;
    forEachRecord(
      batch,
      (view, offset) => {
        const frame = no++;
        const family = view.getUint8(offset + OFF.family) === 6 ? 6 : 4;
        const type = view.getUint8(offset + OFF.type);
        if (!(family === 6 ? V6_TYPES : V4_TYPES).has(type)) return;
        // Echo requests that came in or passed through are nobody's probes here (passive traceroute skips them).
        if (type === 8 || type === 128) {
          const dir = view.getUint8(offset + OFF.dir);
          if (dir !== Direction.Out && dir !== Direction.Unknown) return;
        }
        // Echo requests and replies (a flood's every record) only feed the paths, and the senders' pids: read
        // from the bytes, without a decoded record.
        const flags = view.getUint16(offset + OFF.flags, true);
        if (isEcho(family, type) && flags & REC_F_HAS_ECHO) {
          const run = this.paths.echoAt(view, offset);
          this.dirty.paths = true;
          if (run !== null && flags & REC_F_HAS_PID && (type === 8 || type === 128)) {
            const pid = view.getUint32(offset + OFF.pid, true);
            if (run.pid !== pid) {
              run.pid = pid;
              this.problems.echoSender(run.family, run.source, run.destination, run.echoId, pid);
            }
          }
          return;
        }
        const record = this.decoder.decode(view, offset);
        const pid = flags & REC_F_HAS_PID ? view.getUint32(offset + OFF.pid, true) : null;
        // One decode of an error for both engines (each decoding it was a third of what the tap allocated).
        const report = decodeError(record, false, this.decoder.address);
        if (this.problems.add(record, frame, pid, report)) this.dirty.problems = true;
        if (isNeighbourMessage(family, type)) {
          this.health.observe(record, frame, ifname(record.ifindex));
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

  problemList(): ProblemInfo[] {
    return this.problems.list();
  }

  /** The newest MAX_PATHS paths. */
  pathList(): PathInfo[] {
    return this.paths.paths().slice(-MAX_PATHS).map(pathInfo);
  }

  neighbours(): NeighboursSnapshot {
    const findings = this.health.findings;
    const from = Math.max(0, findings.length - MAX_FINDINGS);
    return {
      routers: this.health.routerList().map(routerInfo),
      hosts: this.health.hostList().slice(-MAX_HOSTS).map(hostInfo),
      findings: findings.slice(from).map((f, i) => findingInfo(f, from + i + 1)),
      learningUntilNs: this.health.learningUntilNs?.toString() ?? null,
      allowRouters: this.settings.allowRouters?.length ? this.settings.allowRouters : null,
    };
  }

  /** Neighbour health starts over with an allow list of routers, or with a learning period. */
  configure(settings: HealthSettings): NeighboursSnapshot {
    this.settings = settings;
    this.health = new NeighbourHealth(this.healthOptions());
    this.dirty.neighbours = true;
    return this.neighbours();
  }

  /** The lists changed since the last call (a problem waiting for its route check counts as changing). */
  takeChanges(): Changes {
    if (this.problems.waitingForRouteCheck) this.dirty.problems = true;
    const d = this.dirty;
    this.dirty = { problems: false, paths: false, neighbours: false };
    return d;
  }
}

function isEcho(family: 4 | 6, type: number): boolean {
  return family === 6 ? type === 128 || type === 129 : type === 8 || type === 0;
}

/** ND (ICMPv6 133-136), ICMPv4 router discovery (9) and redirects (5): the neighbour health engine's. */
function isNeighbourMessage(family: 4 | 6, type: number): boolean {
  return family === 6 ? type >= 133 && type <= 136 : type === 9 || type === 5;
}
