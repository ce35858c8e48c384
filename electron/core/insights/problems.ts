/**
 * The Problems view's model: the answers engine's ProblemTable (errors grouped by the flow they report) plus
 * what the view shows beside it: the error frames, the local process behind the flow when the capture
 * recorded one, and the path-MTU check against the kernel's route (asked asynchronously, never on the
 * ingest path).
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { PmtuInfo, ProblemInfo } from '../../common/insights.js';
import { decodeError, type ErrorReport, flowKey, type Problem, ProblemTable } from '../answers/flows.js';
import { loadNative } from '../native.js';
import type { DecodedRecord } from '../record.js';

const MAX_EVIDENCE = 32;
/** Problems listed (and pushed), newest first. */
export const MAX_LISTED = 500;
/** Flows kept with their problems: past this the one seen longest ago is forgotten (a scan makes a flow per
 * port; the view lists the newest MAX_LISTED). */
export const MAX_PROBLEMS = 10_000;
/** The kernel handles a too-big right after the capture point; ask the route only after this long. */
const SETTLE_MS = 300;
/** Ask again for a flow that keeps receiving too-big errors at most this often. */
const RECHECK_MS = 2000;
/** Route checks per list() (one push): each is an rtnetlink round trip of about 10 µs, and hundreds of flows
 * may wait; the rest are asked on the next push. */
const MAX_CHECKS_PER_LIST = 32;

export interface RouteAnswer {
  mtu: number | null;
  dev: string | null;
}

/**
 * The kernel's route to `destination` (what `ip route get` shows): its MTU, a cached path-MTU exception's
 * included, and its device. Asked in process through rtnetlink (the native addon), never by starting `ip`:
 * forking the service's process (gigabytes resident during a large capture) holds its event loop about 50 ms
 * per gigabyte, and a capture with path-MTU trouble asks for every flow. Rejects when the addon cannot be
 * loaded or the kernel has no route.
 */
export function routeGet(destination: string): Promise<RouteAnswer> {
  if (isIP(destination) === 0) return Promise.reject(new Error(`not an IP address: ${destination}`));
  try {
    const { mtu, dev } = loadNative().routeGet(destination);
    return Promise.resolve({ mtu, dev });
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

function interfaceMtu(dev: string | null): number | null {
  if (dev === null || !/^[\w.@-]+$/.test(dev)) return null;
  try {
    return Number(readFileSync(`/sys/class/net/${dev}/mtu`, 'utf8').trim()) || null;
  } catch {
    return null;
  }
}

function processName(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() || null;
  } catch {
    return null;
  }
}

interface Extra {
  evidence: number[];
  pmtu: PmtuInfo | null;
  /** lastNs of the too-big errors when the route was last asked. */
  checkedLastNs: bigint;
  checking: boolean;
}

export class ProblemTracker {
  private readonly table = new ProblemTable(MAX_PROBLEMS, (key) => this.extras.delete(key));
  private readonly extras = new Map<string, Extra>();
  /** Local senders of echo flows: `family|src|dst|id` -> pid (records that carry one). */
  private readonly echoPids = new Map<string, number>();
  private readonly names = new Map<number, string | null>();
  /** A too-big error waits for its route check: list() must run again even if nothing new arrives. */
  private unchecked = false;
  /** Route checks this list() may still start (the others wait for the next one). */
  private checksLeft = 0;

  get waitingForRouteCheck(): boolean {
    return this.unchecked;
  }

  constructor(
    /** Asks the kernel's route; null: no route checks (a file read back, not this host's traffic). */
    private readonly route: ((destination: string) => Promise<RouteAnswer>) | null,
    private readonly onChange: () => void,
  ) {}

  /**
   * Any record; `pid` when the record carries its sender's; `report` its `decodeError` when the caller has it.
   * Returns whether it changed the problems.
   */
  add(
    record: DecodedRecord,
    frame: number,
    pid: number | null,
    report: ErrorReport | null = decodeError(record),
  ): boolean {
    if (pid !== null && record.hasEcho && (record.type === 8 || record.type === 128))
      this.echoSender(record.family, record.src, record.dst, record.id, pid);
    if (report === null || this.table.add(record, report) === null) return false;
    const key = this.table.lastFlowKey;
    let extra = this.extras.get(key);
    if (extra === undefined) {
      extra = { evidence: [], pmtu: null, checkedLastNs: -1n, checking: false };
      this.extras.set(key, extra);
    }
    if (report.kind === 'too-big' && this.route !== null) this.unchecked = true;
    extra.evidence.push(frame);
    if (extra.evidence.length > MAX_EVIDENCE) extra.evidence.shift();
    return true;
  }

  /** The local process `pid` sends the echo flow (family, src, dst, id): named in the flow's problems. */
  echoSender(family: 4 | 6, src: string, dst: string, id: number, pid: number): void {
    const key = `${family}|${src}|${dst}|${id}`;
    if (this.echoPids.get(key) === pid) return;
    this.echoPids.set(key, pid);
    if (!this.names.has(pid)) this.names.set(pid, processName(pid));
  }

  list(): ProblemInfo[] {
    const now = Date.now();
    this.unchecked = false;
    // The newest flows: a scan makes a flow per port, and the view shows what is happening now.
    const newest = this.table.newest(MAX_LISTED);
    this.checksLeft = MAX_CHECKS_PER_LIST;
    return newest.map((p) => {
      const key = flowKey(p.flow);
      const extra = this.extras.get(key);
      if (extra) this.maybeCheck(p, extra, now);
      const f = p.flow;
      const pid =
        f && f.echoId !== null ? this.echoPids.get(`${f.family}|${f.src}|${f.dst}|${f.echoId}`) : undefined;
      return {
        key,
        flow: f && {
          family: f.family,
          protocol: f.protocol,
          protocolNumber: f.protocolNumber,
          src: f.src,
          dst: f.dst,
          srcPort: f.srcPort,
          dstPort: f.dstPort,
          echoId: f.echoId,
          echoSeq: f.echoSeq,
        },
        flowText: p.flowText,
        count: p.count,
        firstNs: p.firstNs.toString(),
        lastNs: p.lastNs.toString(),
        events: p.events.map((e) => ({
          ...e,
          firstNs: e.firstNs.toString(),
          lastNs: e.lastNs.toString(),
        })),
        pmtu: extra?.pmtu ?? null,
        process: pid === undefined ? null : { pid, name: this.names.get(pid) ?? null },
        evidence: extra ? [...extra.evidence] : [],
      };
    });
  }

  /** Too-big errors sent to the flow's source (this host, when it is the sender) ask the kernel's route. */
  private maybeCheck(p: Problem, extra: Extra, nowMs: number): void {
    const route = this.route;
    const flow = p.flow;
    if (route === null || flow === null || extra.checking) return;
    const tooBig = p.events.filter((e) => e.kind === 'too-big' && e.mtu !== null && e.to === flow.src);
    if (tooBig.length === 0) return;
    const lastNs = tooBig.reduce((m, e) => (e.lastNs > m ? e.lastNs : m), 0n);
    if (lastNs === extra.checkedLastNs) return;
    const sinceMs = nowMs - Number(lastNs / 1_000_000n);
    if (
      sinceMs < SETTLE_MS ||
      (extra.pmtu && nowMs - extra.pmtu.checkedAtMs < RECHECK_MS) ||
      this.checksLeft <= 0
    ) {
      this.unchecked = true;
      return;
    }
    this.checksLeft--;
    const offered = Math.min(...tooBig.map((e) => e.mtu!));
    const count = tooBig.reduce((n, e) => n + e.count, 0);
    extra.checking = true;
    route(flow.dst).then(
      ({ mtu, dev }) => {
        const taken = mtu !== null && mtu <= offered;
        extra.pmtu = {
          destination: flow.dst,
          offered,
          interfaceMtu: interfaceMtu(dev),
          interfaceName: dev,
          routeMtu: mtu,
          taken,
          blackHole: !taken,
          count,
          checkedAtMs: Date.now(),
        };
        extra.checkedLastNs = lastNs;
        extra.checking = false;
        this.onChange();
      },
      () => {
        // No route lookup here (no iproute2, no route): say nothing rather than guess.
        extra.checkedLastNs = lastNs;
        extra.checking = false;
      },
    );
  }
}
