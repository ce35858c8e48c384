/**
 * Passive traceroute: rebuilds the paths that traceroute, mtr, tracepath or `ping -t` runs took, from the ICMP
 * they caused, without sending anything.
 *
 * - ICMP probes (traceroute -I, mtr, ping -t): the outgoing echo request is captured with its TTL. A Time
 *   Exceeded quoting (source, destination, identifier, sequence) is matched to it: the hop is the request's
 *   TTL, the RTT the time between them. The destination's echo reply for a probe ends the path at that TTL.
 *   Exact.
 * - UDP/TCP probes (traceroute, tracepath, traceroute -T): the probes themselves are not ICMP, so they are not
 *   captured; the errors quote them. Traceroute tools raise the destination port (or for TCP the source
 *   port) by one per probe and send TTLs in ascending order, so hops are ordered by the quoted port, and the
 *   destination (its Port Unreachable, or any error from the destination itself) closes the path. Such a
 *   path is marked `inferred`: hop numbers count the routers that answered, a silent hop is not seen.
 *
 *   const paths = new PathBuilder();
 *   for (const r of records) paths.add(r);
 *   paths.paths();   // [{ destination, protocol, inferred, hops: [{ ttl, addresses, sent, answered, rttMs }] }]
 */
import { decodeError, type MplsEntry } from './flows.js';
import type { DecodedRecord } from '../record.js';

export interface Hop {
  /** TTL of the probes (exact paths), or the position among the answering hops (inferred paths). */
  ttl: number;
  /** Addresses that answered at this hop, in the order first seen (several: load balancing). */
  addresses: string[];
  /** Probes sent with this TTL (exact paths only; null when the probes were not captured). */
  sent: number | null;
  answered: number;
  /** Loss in percent (exact paths only). */
  lossPct: number | null;
  /** RTT of each answered probe, ms (exact paths only). */
  rttMs: number[];
  mpls: MplsEntry[];
  /** This hop is the destination (it answered with an echo reply or an unreachable of its own). */
  destination: boolean;
}

export interface TracedPath {
  family: 4 | 6;
  source: string;
  destination: string;
  protocol: 'icmp' | 'icmpv6' | 'udp' | 'tcp';
  /** Hops ordered from the quoted probes, not from probes seen leaving: no RTT, no loss, no silent hops. */
  inferred: boolean;
  /** Whether the destination answered. */
  reached: boolean;
  hops: Hop[];
}

interface Probe {
  tsNs: bigint;
  ttl: number;
  answered: boolean;
}

interface ExactRun {
  family: 4 | 6;
  source: string;
  destination: string;
  echoId: number;
  /** Probes by sequence number (the newest one for a reused number). */
  probes: Map<number, Probe>;
  /** Every TTL a probe was sent with, and how many. */
  sentByTtl: Map<number, number>;
  hops: Map<number, Hop>;
  /** Time Exceeded seen: a plain ping that got replies is not a traceroute. */
  traced: boolean;
}

interface InferredRun {
  family: 4 | 6;
  source: string;
  destination: string;
  protocol: 'udp' | 'tcp';
  /** Per answering router: the lowest probe port it answered, its answers and labels. */
  routers: Map<string, { port: number; answered: number; mpls: MplsEntry[] }>;
  reached: { port: number; answered: number } | null;
  lowPort: number;
  highPort: number;
  lastNs: bigint;
}

/** Errors of one UDP/TCP traceroute run: at most this far apart in time, and in ports. */
const RUN_GAP_NS = 5_000_000_000n;
const PORT_BAND = 256;
const MAX_RTT_SAMPLES = 1024;

function newHop(ttl: number): Hop {
  return {
    ttl,
    addresses: [],
    sent: null,
    answered: 0,
    lossPct: null,
    rttMs: [],
    mpls: [],
    destination: false,
  };
}

function isEchoRequest(r: DecodedRecord): boolean {
  return r.hasEcho && (r.family === 4 ? r.type === 8 : r.type === 128);
}

function isEchoReply(r: DecodedRecord): boolean {
  return r.hasEcho && (r.family === 4 ? r.type === 0 : r.type === 129);
}

export class PathBuilder {
  private readonly exact = new Map<string, ExactRun>();
  private readonly inferred = new Map<string, InferredRun[]>();
  /** The run of the last echo seen: a flood's records all belong to one, found without a key string. */
  private lastRun: ExactRun | null = null;

  private runOf(family: 4 | 6, source: string, destination: string, echoId: number): ExactRun | undefined {
    const last = this.lastRun;
    if (
      last !== null &&
      last.echoId === echoId &&
      last.source === source &&
      last.destination === destination &&
      last.family === family
    )
      return last;
    const run = this.exact.get(`${family}|${source}|${destination}|${echoId}`);
    if (run !== undefined) this.lastRun = run;
    return run;
  }

  add(r: DecodedRecord): void {
    if (isEchoRequest(r)) {
      // Only requests this capture saw leaving (or of unknown direction, as from some files) are probes.
      if (r.dir === 0 || r.dir === 2) return;
      let run = this.runOf(r.family, r.src, r.dst, r.id);
      if (run === undefined) {
        run = {
          family: r.family,
          source: r.src,
          destination: r.dst,
          echoId: r.id,
          probes: new Map(),
          sentByTtl: new Map(),
          hops: new Map(),
          traced: false,
        };
        this.exact.set(`${r.family}|${r.src}|${r.dst}|${r.id}`, run);
        this.lastRun = run;
      }
      run.probes.set(r.seq, { tsNs: r.tsNs, ttl: r.ttl, answered: false });
      run.sentByTtl.set(r.ttl, (run.sentByTtl.get(r.ttl) ?? 0) + 1);
      return;
    }
    if (isEchoReply(r)) {
      const run = this.runOf(r.family, r.dst, r.src, r.id);
      const probe = run?.probes.get(r.seq);
      if (run === undefined || probe === undefined || probe.answered) return;
      this.answer(run, probe, r.src, r.tsNs, [], true);
      return;
    }
    const report = decodeError(r);
    const flow = report?.flow;
    if (report == null || flow == null) return;
    // Only errors back to the prober describe its path.
    if (report.to !== flow.src) return;
    const fromDestination = report.reporter === flow.dst;
    if (report.kind !== 'time-exceeded' && !(fromDestination && report.kind === 'unreachable')) return;
    if ((flow.protocol === 'icmp' || flow.protocol === 'icmpv6') && flow.echoId !== null) {
      const run = this.exact.get(`${flow.family}|${flow.src}|${flow.dst}|${flow.echoId}`);
      const probe = flow.echoSeq === null ? undefined : run?.probes.get(flow.echoSeq);
      if (run === undefined || probe === undefined || probe.answered) return;
      if (report.kind === 'time-exceeded') run.traced = true;
      this.answer(run, probe, report.reporter, r.tsNs, report.mpls, fromDestination);
      return;
    }
    if (
      (flow.protocol === 'udp' || flow.protocol === 'tcp') &&
      flow.dstPort !== null &&
      flow.srcPort !== null
    ) {
      // traceroute -T (TCP) keeps the port 80 and varies the source port; UDP tools vary the destination port.
      const port = flow.protocol === 'tcp' ? flow.srcPort : flow.dstPort;
      const key = `${flow.family}|${flow.src}|${flow.dst}|${flow.protocol}`;
      let runs = this.inferred.get(key);
      if (runs === undefined) {
        runs = [];
        this.inferred.set(key, runs);
      }
      // One run of a tool uses a narrow band of consecutive ports within seconds; another run (or another
      // tool, as tracepath's 44444 after traceroute's 33434) starts a new path.
      let run = runs.find(
        (x) =>
          r.tsNs - x.lastNs < RUN_GAP_NS && port >= x.lowPort - PORT_BAND && port <= x.highPort + PORT_BAND,
      );
      if (run === undefined) {
        run = {
          family: flow.family,
          source: flow.src,
          destination: flow.dst,
          protocol: flow.protocol,
          routers: new Map(),
          reached: null,
          lowPort: port,
          highPort: port,
          lastNs: r.tsNs,
        };
        runs.push(run);
      }
      run.lowPort = Math.min(run.lowPort, port);
      run.highPort = Math.max(run.highPort, port);
      run.lastNs = r.tsNs;
      if (fromDestination) {
        run.reached = {
          port: Math.min(port, run.reached?.port ?? port),
          answered: (run.reached?.answered ?? 0) + 1,
        };
        return;
      }
      const seen = run.routers.get(report.reporter);
      if (seen === undefined) run.routers.set(report.reporter, { port, answered: 1, mpls: report.mpls });
      else {
        seen.port = Math.min(seen.port, port);
        seen.answered++;
      }
    }
  }

  private answer(
    run: ExactRun,
    probe: Probe,
    from: string,
    tsNs: bigint,
    mpls: MplsEntry[],
    destination: boolean,
  ): void {
    probe.answered = true;
    let hop = run.hops.get(probe.ttl);
    if (hop === undefined) {
      hop = newHop(probe.ttl);
      run.hops.set(probe.ttl, hop);
    }
    if (!hop.addresses.includes(from)) hop.addresses.push(from);
    hop.answered++;
    hop.rttMs.push(Number(tsNs - probe.tsNs) / 1e6);
    // A long ping keeps answering at one hop: its RTT figures come from the newest samples.
    if (hop.rttMs.length > MAX_RTT_SAMPLES) hop.rttMs.shift();
    if (mpls.length > 0 && hop.mpls.length === 0) hop.mpls = mpls;
    if (destination) hop.destination = true;
  }

  /** Every path seen so far (ICMP runs that met at least one Time Exceeded, and every UDP/TCP run). */
  paths(): TracedPath[] {
    const out: TracedPath[] = [];
    for (const run of this.exact.values()) {
      if (!run.traced) continue;
      // The path ends at the lowest TTL the destination answered (traceroute -I sends past it in parallel).
      let end = Infinity;
      for (const h of run.hops.values()) if (h.destination) end = Math.min(end, h.ttl);
      const maxTtl = Number.isFinite(end) ? end : Math.max(...run.hops.keys());
      const hops: Hop[] = [];
      for (let ttl = 1; ttl <= maxTtl; ttl++) {
        const sent = run.sentByTtl.get(ttl) ?? 0;
        const hop = run.hops.get(ttl) ?? newHop(ttl);
        if (sent === 0 && hop.answered === 0) continue;
        hop.sent = sent;
        hop.lossPct =
          sent > 0 ? Math.round((1000 * (sent - Math.min(hop.answered, sent))) / sent) / 10 : null;
        hops.push(hop);
      }
      out.push({
        family: run.family,
        source: run.source,
        destination: run.destination,
        protocol: run.family === 4 ? 'icmp' : 'icmpv6',
        inferred: false,
        reached: Number.isFinite(end),
        hops,
      });
    }
    for (const run of [...this.inferred.values()].flat()) {
      const routers = [...run.routers.entries()]
        .filter(([, v]) => run.reached === null || v.port < run.reached.port)
        .sort((a, b) => a[1].port - b[1].port);
      const hops: Hop[] = routers.map(([address, v], i) => ({
        ...newHop(i + 1),
        addresses: [address],
        answered: v.answered,
        mpls: v.mpls,
      }));
      if (run.reached !== null)
        hops.push({
          ...newHop(hops.length + 1),
          addresses: [run.destination],
          answered: run.reached.answered,
          destination: true,
        });
      out.push({
        family: run.family,
        source: run.source,
        destination: run.destination,
        protocol: run.protocol,
        inferred: true,
        reached: run.reached !== null,
        hops,
      });
    }
    return out;
  }
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The `-z icmpcap,paths` table. */
export function formatPaths(paths: readonly TracedPath[]): string {
  const lines = [
    '',
    '===================================================================',
    'Traced paths (passive)',
  ];
  if (paths.length === 0) lines.push('(no traceroute, mtr, tracepath or ping -t runs seen)');
  for (const p of paths) {
    lines.push(
      `${p.source} > ${p.destination} (${p.protocol}${p.inferred ? ', inferred from quoted probes' : ''}): ` +
        `${p.hops.length} hop${p.hops.length === 1 ? '' : 's'}${p.reached ? '' : ', destination not reached'}`,
    );
    for (const h of p.hops) {
      const rtt = median(h.rttMs);
      const parts = [
        `${String(h.ttl).padStart(3)}  ${h.addresses.length ? h.addresses.join(' ') : '*'}`,
        h.sent !== null
          ? `sent ${h.sent} answered ${h.answered} loss ${h.lossPct ?? 0}%`
          : `answered ${h.answered}`,
      ];
      if (rtt !== null) parts.push(`rtt ${rtt.toFixed(3)} ms`);
      if (h.mpls.length) parts.push(`mpls ${h.mpls.map((m) => `L=${m.label}`).join('/')}`);
      if (h.destination) parts.push('destination');
      lines.push(parts.join('  '));
    }
  }
  lines.push('===================================================================', '');
  return lines.join('\n');
}
