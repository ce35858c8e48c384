/**
 * Echo service response time (SRT) statistics, as `tshark -z icmp,srt[,filter]` and
 * `-z icmpv6,srt[,filter]` compute and print them (ui/cli/tap-icmpstat.c, tap-icmpv6stat.c), plus
 * icmpcap's own per-peer figures.
 *
 * tshark's numbers, exactly: every echo request the dissector tracks is a request (so a repeated
 * request counts again); every reply matched by Wireshark's matcher (EchoMatcher: same address pair,
 * identifier, sequence and checksum-derived key, first reply only, however late) is a reply with its
 * response time; lost = requests - replies; loss % = 100 * lost / requests; minimum and maximum (and
 * the reply frames that set them first), mean, median (the middle one, or the mean of the middle two)
 * and the sample standard deviation (n - 1) of the response times in ms. Requests to an IPv4
 * broadcast address are requests whose replies never match (they come from other addresses), as in
 * tshark. A filter restricts which packets feed the table, as tshark's tap filter does.
 *
 * Our own per peer (`peerStats`), with replies to broadcast and multicast echo counted per responder:
 * - requests: unicast requests to the peer, plus group (broadcast/multicast) requests from the first
 *   one the peer answered on; replies: first reply per request and responder; lost = requests -
 *   replies (judged at the end, or by `now` against the timeout, see `peerStats`);
 * - duplicates: further replies to an answered request from the same responder;
 * - late: replies that came after `lateAfterMs` (default 1000, ping's default wait); they still give
 *   an RTT and count as replies, as tshark counts them;
 * - reordered: replies to a lower sequence number than one already answered by the peer;
 * - RTT min/mean/median/max/sdev as tshark, p95 by nearest rank;
 * - jitter: RFC 3550's smoothed interarrival estimate applied to RTTs in reply order,
 *   J += (|D| - J) / 16 with D = RTT_i - RTT_(i-1); `jitterLast` is mtr's `jitter` (the last |D|),
 *   `jitterAvg` mtr's `javg` (the running mean of |D|), `jitterMax` mtr's `jworst`.
 */
import { EchoMatcher } from '../fields/extract.js';
import type { DecodedRecord } from '../record.js';

export interface SrtTable {
  family: 4 | 6;
  /** The filter text as given (`null`: none). */
  filter: string | null;
  requests: number;
  replies: number;
  /** Response times (ms) in the order the replies came. */
  times: number[];
  minMs: number;
  maxMs: number;
  totMs: number;
  minFrame: number;
  maxFrame: number;
}

export interface SrtFigures {
  requests: number;
  replies: number;
  lost: number;
  lossPercent: number;
  minMs: number;
  maxMs: number;
  meanMs: number;
  medianMs: number;
  sdevMs: number;
  minFrame: number;
  maxFrame: number;
}

/** A tap: one table, fed by the packets `accept` lets through (all when absent). */
export interface SrtTap {
  family: 4 | 6;
  filter?: string | null;
  accept?: (record: DecodedRecord, frame: number) => boolean;
}

const UINT_MAX = 4294967295;

function newTable(family: 4 | 6, filter: string | null): SrtTable {
  return {
    family,
    filter,
    requests: 0,
    replies: 0,
    times: [],
    minMs: UINT_MAX,
    maxMs: 0,
    totMs: 0,
    minFrame: 0,
    maxFrame: 0,
  };
}

export interface PeerSrt extends SrtFigures {
  peer: string;
  family: 4 | 6;
  p95Ms: number;
  jitterMs: number;
  jitterLastMs: number;
  jitterAvgMs: number;
  jitterMaxMs: number;
  duplicates: number;
  late: number;
  reordered: number;
}

interface PeerState {
  peer: string;
  family: 4 | 6;
  requests: number;
  replies: number;
  times: number[];
  minMs: number;
  maxMs: number;
  totMs: number;
  minFrame: number;
  maxFrame: number;
  duplicates: number;
  late: number;
  reordered: number;
  maxSeq: number;
  jitter: number;
  jitterLast: number;
  jitterSum: number;
  jitterMax: number;
  lastRtt: number | null;
  /** Requests still unanswered by this peer: send time (ns) by request key. */
  open: Map<string, bigint>;
}

interface SentRequest {
  tsNs: bigint;
  group: boolean;
  target: string;
  /** Responders that answered it. */
  answered: Set<string>;
}

/** A broadcast or multicast destination: every host there may answer (IPv4 x.x.x.255 is taken as a broadcast). */
export function isGroup(family: 4 | 6, dst: string, broadcasts: ReadonlySet<string> = new Set()): boolean {
  if (family === 6) return dst.startsWith('ff');
  const first = Number(dst.split('.')[0]);
  return (
    (first >= 224 && first <= 239) || dst === '255.255.255.255' || dst.endsWith('.255') || broadcasts.has(dst)
  );
}

export interface SrtOptions {
  /** Replies later than this are counted late (they still count as replies with their RTT). */
  lateAfterMs?: number;
  /** Extra IPv4 broadcast addresses (besides x.x.x.255 and 255.255.255.255). */
  broadcasts?: readonly string[];
}

/** Feeds records in capture order; tables and per-peer figures at any time. */
export class SrtCollector {
  private readonly matcher = new EchoMatcher();
  private readonly tables: { tap: SrtTap; table: SrtTable }[];
  private readonly peers = new Map<string, PeerState>();
  private readonly sent = new Map<string, SentRequest>();
  private readonly groupAnswerers = new Map<string, Set<string>>();
  private readonly lateAfterNs: bigint;
  private readonly broadcasts: ReadonlySet<string>;
  private frame = 0;

  constructor(taps: readonly SrtTap[] = [{ family: 4 }, { family: 6 }], options: SrtOptions = {}) {
    this.tables = taps.map((tap) => ({ tap, table: newTable(tap.family, tap.filter ?? null) }));
    this.lateAfterNs = BigInt(Math.round((options.lateAfterMs ?? 1000) * 1e6));
    this.broadcasts = new Set(options.broadcasts ?? []);
  }

  /** One record (frame numbers count every record, echo or not, from 1). */
  add(record: DecodedRecord): void {
    const frame = ++this.frame;
    const m = this.matcher.match(record, frame);
    if (m === null) return;
    for (const { tap, table } of this.tables) {
      if (tap.family !== m.family || (tap.accept !== undefined && !tap.accept(record, frame))) continue;
      if (m.request) table.requests++;
      else if (m.resptimeMs !== undefined) {
        const t = m.resptimeMs;
        table.times.push(t);
        table.replies++;
        if (table.minMs > t) {
          table.minMs = t;
          table.minFrame = frame;
        }
        if (table.maxMs < t) {
          table.maxMs = t;
          table.maxFrame = frame;
        }
        table.totMs += t;
      }
    }
    this.ownMatch(record, m.request, m.family, m.src, m.dst, m.id, m.seq);
  }

  private peer(family: 4 | 6, address: string): PeerState {
    let p = this.peers.get(address);
    if (p === undefined) {
      p = {
        peer: address,
        family,
        requests: 0,
        replies: 0,
        times: [],
        minMs: UINT_MAX,
        maxMs: 0,
        totMs: 0,
        minFrame: 0,
        maxFrame: 0,
        duplicates: 0,
        late: 0,
        reordered: 0,
        maxSeq: -1,
        jitter: 0,
        jitterLast: 0,
        jitterSum: 0,
        jitterMax: 0,
        lastRtt: null,
        open: new Map(),
      };
      this.peers.set(address, p);
    }
    return p;
  }

  private ownMatch(
    record: DecodedRecord,
    request: boolean,
    family: 4 | 6,
    src: string,
    dst: string,
    id: number,
    seq: number,
  ): void {
    if (request) {
      const key = `${family} ${src} ${id} ${seq}`;
      const group = isGroup(family, dst, this.broadcasts);
      this.sent.set(key, { tsNs: record.tsNs, group, target: dst, answered: new Set() });
      const targets = group ? [...(this.groupAnswerers.get(`${src} ${dst}`) ?? [])] : [dst];
      for (const t of targets) {
        const p = this.peer(family, t);
        p.requests++;
        p.open.set(key, record.tsNs);
      }
      return;
    }
    // A reply: the requester is its destination.
    const key = `${family} ${dst} ${id} ${seq}`;
    const req = this.sent.get(key);
    if (req === undefined || (!req.group && req.target !== src)) return;
    const p = this.peer(family, src);
    if (req.answered.has(src)) {
      p.duplicates++;
      return;
    }
    if (req.group) {
      const gk = `${dst} ${req.target}`;
      let set = this.groupAnswerers.get(gk);
      if (set === undefined) {
        set = new Set();
        this.groupAnswerers.set(gk, set);
      }
      if (!set.has(src)) {
        set.add(src);
        p.requests++; // the first group request this responder answered counts for it too
      }
    }
    req.answered.add(src);
    p.open.delete(key);
    const rttNs = record.tsNs - req.tsNs;
    const t = Number(rttNs) / 1e6;
    if (rttNs > this.lateAfterNs) p.late++;
    if (seq < p.maxSeq) p.reordered++;
    p.maxSeq = Math.max(p.maxSeq, seq);
    p.replies++;
    p.times.push(t);
    if (p.minMs > t) {
      p.minMs = t;
      p.minFrame = this.frame;
    }
    if (p.maxMs < t) {
      p.maxMs = t;
      p.maxFrame = this.frame;
    }
    p.totMs += t;
    if (p.lastRtt !== null) {
      const d = Math.abs(t - p.lastRtt);
      p.jitter += (d - p.jitter) / 16;
      p.jitterLast = d;
      p.jitterSum += d;
      p.jitterMax = Math.max(p.jitterMax, d);
    }
    p.lastRtt = t;
  }

  /** The tables, in the order of the taps given. */
  srtTables(): SrtTable[] {
    return this.tables.map((t) => t.table);
  }

  /**
   * Our per-peer figures. `nowNs` (wall clock, ns since the epoch): requests unanswered for longer
   * than the late threshold count as lost now; without it (at stop) every unanswered one does.
   * With `nowNs`, a request still within its wait is neither answered nor lost yet.
   */
  peerStats(nowNs?: bigint): PeerSrt[] {
    return [...this.peers.values()].map((p) => {
      let pending = 0;
      if (nowNs !== undefined)
        for (const ts of p.open.values()) if (nowNs - ts <= this.lateAfterNs) pending++;
      const base = figures({ ...p, requests: p.requests - pending });
      const sorted = [...p.times].sort((a, b) => a - b);
      return {
        ...base,
        peer: p.peer,
        family: p.family,
        p95Ms: sorted.length === 0 ? 0 : sorted[Math.ceil(0.95 * sorted.length) - 1]!,
        jitterMs: p.jitter,
        jitterLastMs: p.jitterLast,
        jitterAvgMs: p.times.length > 1 ? p.jitterSum / (p.times.length - 1) : 0,
        jitterMaxMs: p.jitterMax,
        duplicates: p.duplicates,
        late: p.late,
        reordered: p.reordered,
      };
    });
  }
}

/** tap-icmpstat.c's compute_stats and draw arithmetic. */
export function figures(t: {
  requests: number;
  replies: number;
  times: readonly number[];
  minMs: number;
  maxMs: number;
  totMs: number;
  minFrame: number;
  maxFrame: number;
}): SrtFigures {
  const lost = t.requests - t.replies;
  const n = t.replies;
  let mean = 0;
  let med = 0;
  let sdev = 0;
  if (n > 0 && t.times.length > 0) {
    const sorted = [...t.times].sort((a, b) => a - b);
    mean = t.totMs / n;
    med = n & 1 ? sorted[n >>> 1]! : (sorted[(n - 1) >>> 1]! + sorted[n >>> 1]!) / 2;
    let sq = 0;
    for (const x of sorted) sq += (x - mean) * (x - mean);
    sdev = n > 1 ? Math.sqrt(sq / (n - 1)) : 0;
  }
  return {
    requests: t.requests,
    replies: t.replies,
    lost,
    lossPercent: t.requests > 0 ? (100 * lost) / t.requests : 0,
    minMs: t.minMs >= UINT_MAX ? 0 : t.minMs,
    maxMs: t.maxMs,
    meanMs: mean,
    medianMs: med,
    sdevMs: sdev,
    minFrame: t.minFrame,
    maxFrame: t.maxFrame,
  };
}

/**
 * C's `%.<digits>f`: the exact binary value rounded half to even (JavaScript's toFixed rounds exact
 * ties up, so 0.0625 would print 0.063 where printf prints 0.062).
 */
export function cFixed(x: number, digits: number): string {
  const s = x.toFixed(digits);
  const exact = Math.abs(x).toFixed(Math.min(100, digits + 60));
  const tail = exact.slice(exact.indexOf('.') + 1 + digits);
  if (!/^50*$/.test(tail)) return s;
  // An exact tie: round to even.
  const down = (Math.sign(x) * Math.trunc(Math.abs(x) * 10 ** digits)) / 10 ** digits;
  const lastDigit = Number(down.toFixed(digits).slice(-1));
  return lastDigit % 2 === 0 ? down.toFixed(digits) : s;
}

const pad = (s: string, width: number): string => s.padEnd(width, ' ');
const padStart = (s: string, width: number): string => s.padStart(width, ' ');

/** One table exactly as tshark prints it. */
export function formatSrtTable(t: SrtTable): string {
  const f = figures(t);
  const lines = [
    '',
    '='.repeat(74),
    `ICMP${t.family === 6 ? 'v6' : ''} Service Response Time (SRT) Statistics (all times in ms):`,
    `Filter: ${t.filter ?? '<none>'}`,
    '',
    'Requests  Replies   Lost      % Loss',
  ];
  if (t.requests > 0) {
    lines.push(
      `${pad(String(f.requests), 10)}${pad(String(f.replies), 10)}${pad(String(f.lost), 10)}${padStart(cFixed(f.lossPercent, 1), 5)}%`,
      '',
    );
    lines.push('Minimum   Maximum   Mean      Median    SDeviation     Min Frame Max Frame');
    const ms = [f.minMs, f.maxMs, f.meanMs, f.medianMs, f.sdevMs].map((v) => pad(cFixed(v, 3), 10)).join('');
    lines.push(`${ms}     ${pad(String(f.minFrame), 10)}${pad(String(f.maxFrame), 10)}`);
  } else {
    lines.push('0         0         0           0.0%', '');
    lines.push('Minimum   Maximum   Mean      Median    SDeviation     Min Frame Max Frame');
    lines.push('0.000     0.000     0.000     0.000     0.000          0         0');
  }
  lines.push('='.repeat(74));
  return lines.join('\n') + '\n';
}

/** Several tables as tshark prints them at exit: the last one asked for first. */
export function formatSrtReport(tables: readonly SrtTable[]): string {
  return [...tables].reverse().map(formatSrtTable).join('');
}

/** `-z icmp,srt[,filter]` / `-z icmpv6,srt[,filter]` parsed; null when it is not one of those. */
export function parseSrtArg(arg: string): { family: 4 | 6; filter: string | null } | null {
  const m = /^(icmp|icmpv6),srt(?:,(.*))?$/.exec(arg);
  if (m === null) return null;
  return { family: m[1] === 'icmpv6' ? 6 : 4, filter: m[2] ?? null };
}
