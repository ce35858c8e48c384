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
import { decodeError, type ErrorReport, type MplsEntry } from './flows.js';
import { RunKeys } from './run-keys.js';
import { formatAddress } from '../../common/address.js';
import { type DecodedRecord, OFF, REC_F_HAS_ECHO } from '../record.js';

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

/**
 * An echo flow this host sent: (family, source, destination, identifier). Its newest probes sit in typed
 * arrays, at `seq & (capacity - 1)`: a ping or traceroute in flight is found there, and a flood keeps a
 * bounded window (at most MAX_PROBES per run) instead of an object per request.
 */
export interface ExactRun {
  readonly family: 4 | 6;
  readonly source: string;
  readonly destination: string;
  readonly echoId: number;
  /** The pid of the sender, as the newest request that carried one said (null: none said). */
  pid: number | null;
  /**
   * Four numbers per slot, so that a record touches one cache line of them: the probe's capture time (ns after
   * the builder's first timestamp); its sequence number and TTL (seq + ttl * 65536; -1: an empty slot); its
   * state (WAITING, IN_HOPS, or REPLIED: answered by the destination while the run was not traced, not in
   * `hops` yet, since a plain ping's replies make no path); and a REPLIED probe's reply time.
   */
  probes: Float64Array;
  /** Probes sent with each TTL: while every probe had one TTL (a plain ping), that TTL and their count, and no
   * table (`sentByTtl` null); the table from the second TTL on. Read with `sentAt`. */
  soleTtl: number;
  soleCount: number;
  sentByTtl: Uint32Array | null;
  probesSent: number;
  hops: Map<number, Hop>;
  /** Time Exceeded seen: a plain ping that got replies is not a traceroute. */
  traced: boolean;
  /** The hash it has in `byKey` (the table keeps its key words); null until a record read from its bytes
   * found the run. */
  keyHash: number | null;
}

/** Probes sent with `ttl`. */
function sentAt(run: ExactRun, ttl: number): number {
  if (run.sentByTtl !== null) return run.sentByTtl[ttl] ?? 0;
  return ttl === run.soleTtl ? run.soleCount : 0;
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
/** Probes remembered per echo run: the newest, by sequence number (a reply or error later than this many
 * probes of the same run is not matched). */
const MAX_PROBES = 256;
const FIRST_PROBES = 16;
const WAITING = 0;
const IN_HOPS = 1;
const REPLIED = 2;
/** Echo runs kept; past this the oldest that met no Time Exceeded (plain pings) are forgotten. */
const MAX_RUNS = 4096;

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

const NO_MPLS: MplsEntry[] = [];

function wordsHash(family: 4 | 6, echoId: number, words: Int32Array): number {
  let h = Math.imul(echoId | (family << 16), 0x9e3779b1);
  for (let i = 0; i < 8; i++) {
    h = Math.imul(h ^ words[i]!, 0x85ebca6b);
    h ^= h >>> 13;
  }
  // A small integer: a Map keyed by it hashes it as is (a wider one would be a heap number).
  return h & 0x3fffffff;
}

function growProbes(run: ExactRun, capacity: number): void {
  const old = run.probes;
  const probes = new Float64Array(capacity * 4);
  for (let k = 0; k < capacity; k++) probes[k * 4 + 1] = -1;
  for (let k = 0; k < old.length; k += 4) {
    const tag = old[k + 1]!;
    if (tag < 0) continue;
    // Element by element: a subarray per slot was most of what the insights allocated on a ping flood.
    const at = (tag & 0xffff & (capacity - 1)) * 4;
    probes[at] = old[k]!;
    probes[at + 1] = tag;
    probes[at + 2] = old[k + 2]!;
    probes[at + 3] = old[k + 3]!;
  }
  run.probes = probes;
}

export class PathBuilder {
  private readonly exact = new Map<string, ExactRun>();
  private readonly inferred = new Map<string, InferredRun[]>();
  /** Echo runs by (family, source, destination, identifier) as numbers: the fast path (`echoAt`) finds its
   * run without formatting an address or building a key. */
  private readonly byKey = new RunKeys<ExactRun>();
  /** Runs made from decoded records (not hashed yet): while there are any, a miss in `byKey` also looks up
   * the text key. */
  private unhashed = 0;
  /** The run of the last echo seen: a flood's records all belong to one, found without a key string. */
  private lastRun: ExactRun | null = null;
  /** The first timestamp seen (probe times are ns after it, exact as doubles for 104 days). */
  private baseHi = -1;
  private baseLo = 0;
  private baseNs = 0n;
  /** Scratch: the source and destination words of the record at hand. */
  private readonly words = new Int32Array(8);

  private relNs(tsNs: bigint): number {
    if (this.baseHi < 0) this.setBase(Number(tsNs >> 32n), Number(tsNs & 0xffffffffn));
    return Number(tsNs - this.baseNs);
  }

  private relNsOf(hi: number, lo: number): number {
    if (this.baseHi < 0) this.setBase(hi, lo);
    return (hi - this.baseHi) * 4294967296 + (lo - this.baseLo);
  }

  private setBase(hi: number, lo: number): void {
    this.baseHi = hi;
    this.baseLo = lo;
    this.baseNs = (BigInt(hi) << 32n) | BigInt(lo);
  }

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

  private newRun(
    family: 4 | 6,
    source: string,
    destination: string,
    echoId: number,
    words: Int32Array | null,
  ): ExactRun {
    const run: ExactRun = {
      family,
      source,
      destination,
      echoId,
      pid: null,
      probes: new Float64Array(FIRST_PROBES * 4),
      soleTtl: -1,
      soleCount: 0,
      sentByTtl: null,
      probesSent: 0,
      hops: new Map(),
      traced: false,
      keyHash: null,
    };
    for (let k = 1; k < run.probes.length; k += 4) run.probes[k] = -1;
    this.exact.set(`${family}|${source}|${destination}|${echoId}`, run);
    if (words === null) this.unhashed++;
    else this.hash(run, words);
    this.lastRun = run;
    if (this.exact.size > MAX_RUNS) this.forgetPings();
    return run;
  }

  /** Puts `run` in `byKey` under `words` (the table copies them). */
  private hash(run: ExactRun, words: Int32Array): void {
    run.keyHash = wordsHash(run.family, run.echoId, words);
    this.byKey.insert(run, run.keyHash, (run.family << 16) | run.echoId, words);
  }

  /** Forgets the oldest runs that met no Time Exceeded (plain pings), down to 3/4 of MAX_RUNS. */
  private forgetPings(): void {
    for (const [key, run] of this.exact) {
      if (this.exact.size <= (MAX_RUNS * 3) / 4) break;
      if (run.traced) continue;
      this.exact.delete(key);
      if (this.lastRun === run) this.lastRun = null;
      if (run.keyHash === null) {
        this.unhashed--;
        continue;
      }
      this.byKey.remove(run, run.keyHash);
    }
  }

  /** A probe sent: it takes the slot of its sequence number (the window grows up to MAX_PROBES). */
  private sent(run: ExactRun, seq: number, ttl: number, ns: number): void {
    run.probesSent++;
    const capacity = run.probes.length >> 2;
    if (run.probesSent > capacity && capacity < MAX_PROBES) growProbes(run, capacity * 2);
    const p = run.probes;
    const k = (seq & ((p.length >> 2) - 1)) << 2;
    p[k] = ns;
    p[k + 1] = seq + ttl * 65536;
    p[k + 2] = WAITING;
    if (run.sentByTtl === null) {
      if (run.soleTtl === ttl || run.soleTtl < 0) {
        run.soleTtl = ttl;
        run.soleCount++;
        return;
      }
      run.sentByTtl = new Uint32Array(256);
      run.sentByTtl[run.soleTtl] = run.soleCount;
    }
    run.sentByTtl[ttl]!++;
  }

  /** The slot (index into `probes`) of probe `seq` while it waits for its answer, else -1. */
  private waiting(run: ExactRun, seq: number): number {
    const p = run.probes;
    const k = (seq & ((p.length >> 2) - 1)) << 2;
    const tag = p[k + 1]!;
    return tag >= 0 && (tag & 0xffff) === seq && p[k + 2] === WAITING ? k : -1;
  }

  /** The destination's echo reply to the probe in `slot`. */
  private replied(run: ExactRun, slot: number, ns: number): void {
    if (run.traced) return this.answer(run, slot, run.destination, ns, NO_MPLS, true);
    run.probes[slot + 2] = REPLIED;
    run.probes[slot + 3] = ns;
  }

  /** The run met its first Time Exceeded: it is a path, and the replies it had go into its hops. */
  private traced(run: ExactRun): void {
    run.traced = true;
    const p = run.probes;
    for (let k = 0; k < p.length; k += 4)
      if (p[k + 1]! >= 0 && p[k + 2] === REPLIED)
        this.answer(run, k, run.destination, p[k + 3]!, NO_MPLS, true);
  }

  /**
   * The echo request or reply at `offset` of a record batch, read from its bytes: the insights tap's path,
   * with no decoded record and no address text unless the run is new. The same as `add` with the decoded
   * record. Returns the run the record belongs to (null: none, or not an echo request or reply).
   */
  echoAt(view: DataView, offset: number): ExactRun | null {
    const flags = view.getUint16(offset + OFF.flags, true);
    if ((flags & REC_F_HAS_ECHO) === 0) return null;
    const family = view.getUint8(offset + OFF.family) === 6 ? 6 : 4;
    const type = view.getUint8(offset + OFF.type);
    const request = type === (family === 4 ? 8 : 128);
    if (!request && type !== (family === 4 ? 0 : 129)) return null;
    if (request) {
      // Only requests this capture saw leaving (or of unknown direction, as from some files) are probes.
      const dir = view.getUint8(offset + OFF.dir);
      if (dir === 0 || dir === 2) return null;
    }
    // The run's source is the request's source, the reply's destination.
    const from = offset + (request ? OFF.saddr : OFF.daddr);
    const to = offset + (request ? OFF.daddr : OFF.saddr);
    const w = this.words;
    const n = family === 4 ? 1 : 4;
    for (let i = 0; i < 4; i++) {
      w[i] = i < n ? view.getInt32(from + 4 * i) : 0;
      w[4 + i] = i < n ? view.getInt32(to + 4 * i) : 0;
    }
    const id = view.getUint16(offset + OFF.id, true);
    let run: ExactRun | null | undefined = this.byKey.find(wordsHash(family, id, w), (family << 16) | id, w);
    if (run === null) {
      if (!request && this.unhashed === 0) return null;
      const bytes = new Uint8Array(view.buffer, view.byteOffset);
      const source = formatAddress(bytes.subarray(from, from + 16), family);
      const destination = formatAddress(bytes.subarray(to, to + 16), family);
      run = this.runOf(family, source, destination, id);
      if (run !== undefined && run.keyHash === null) {
        this.unhashed--;
        this.hash(run, w);
      }
      if (run === undefined) {
        if (!request) return null;
        run = this.newRun(family, source, destination, id, w);
      }
    }
    const ns = this.relNsOf(
      view.getUint32(offset + OFF.tsNs + 4, true),
      view.getUint32(offset + OFF.tsNs, true),
    );
    const seq = view.getUint16(offset + OFF.seq, true);
    if (request) this.sent(run, seq, view.getUint8(offset + OFF.ttl), ns);
    else {
      const slot = this.waiting(run, seq);
      if (slot >= 0) this.replied(run, slot, ns);
    }
    return run;
  }

  /** Any record (`errorReport`: its `decodeError`, when the caller has it). */
  add(r: DecodedRecord, errorReport?: ErrorReport | null): void {
    if (isEchoRequest(r)) {
      // Only requests this capture saw leaving (or of unknown direction, as from some files) are probes.
      if (r.dir === 0 || r.dir === 2) return;
      const run = this.runOf(r.family, r.src, r.dst, r.id) ?? this.newRun(r.family, r.src, r.dst, r.id, null);
      this.sent(run, r.seq, r.ttl, this.relNs(r.tsNs));
      return;
    }
    if (isEchoReply(r)) {
      const run = this.runOf(r.family, r.dst, r.src, r.id);
      const slot = run === undefined ? -1 : this.waiting(run, r.seq);
      if (slot >= 0) this.replied(run!, slot, this.relNs(r.tsNs));
      return;
    }
    const report = errorReport === undefined ? decodeError(r) : errorReport;
    const flow = report?.flow;
    if (report == null || flow == null) return;
    // Only errors back to the prober describe its path.
    if (report.to !== flow.src) return;
    const fromDestination = report.reporter === flow.dst;
    if (report.kind !== 'time-exceeded' && !(fromDestination && report.kind === 'unreachable')) return;
    if ((flow.protocol === 'icmp' || flow.protocol === 'icmpv6') && flow.echoId !== null) {
      const run = this.exact.get(`${flow.family}|${flow.src}|${flow.dst}|${flow.echoId}`);
      const slot = run === undefined || flow.echoSeq === null ? -1 : this.waiting(run, flow.echoSeq);
      if (slot < 0) return;
      if (report.kind === 'time-exceeded' && !run!.traced) this.traced(run!);
      this.answer(run!, slot, report.reporter, this.relNs(r.tsNs), report.mpls, fromDestination);
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
    slot: number,
    from: string,
    ns: number,
    mpls: MplsEntry[],
    destination: boolean,
  ): void {
    const p = run.probes;
    p[slot + 2] = IN_HOPS;
    const ttl = p[slot + 1]! >>> 16;
    let hop = run.hops.get(ttl);
    if (hop === undefined) {
      hop = newHop(ttl);
      run.hops.set(ttl, hop);
    }
    if (!hop.addresses.includes(from)) hop.addresses.push(from);
    hop.answered++;
    hop.rttMs.push((ns - p[slot]!) / 1e6);
    // A long ping keeps answering at one hop: its RTT figures come from the newest samples (trimmed in halves,
    // not one shift per sample).
    if (hop.rttMs.length >= 2 * MAX_RTT_SAMPLES) hop.rttMs.splice(0, hop.rttMs.length - MAX_RTT_SAMPLES);
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
        const sent = sentAt(run, ttl);
        const seen = run.hops.get(ttl);
        if (sent === 0 && (seen === undefined || seen.answered === 0)) continue;
        const hop = seen ?? newHop(ttl);
        if (hop.rttMs.length > MAX_RTT_SAMPLES) hop.rttMs.splice(0, hop.rttMs.length - MAX_RTT_SAMPLES);
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
