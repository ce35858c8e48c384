/**
 * ICMP errors turned into the flows they report, and grouped into "problems".
 *
 * Every ICMP/ICMPv6 error quotes the start of the datagram that caused it. The field extractor
 * (../fields/extract.ts, the one dissector behind `-T fields` and display filters) already decodes that quote
 * as layer 2 (`ip.dst#2`, `udp.dstport`, `icmp.ident#2`) and the RFC 4884 extensions (MPLS label stack,
 * RFC 5837 interface information); this module reads those fields into a `ReportedFlow` and says in plain
 * words what happened to it.
 *
 *   const report = decodeError(record);      // null unless the record is an ICMP/ICMPv6 error
 *   const problems = new ProblemTable();
 *   problems.add(record);                     // any record; non-errors are ignored
 *   problems.list();                          // grouped by flow, most recent last
 */
import { formatAddress, formatIpv6 } from '../../common/address.js';
import { codeLabel, typeLabel } from '../../common/icmp.js';
import { extractFields, type FieldMap, type FieldValue } from '../fields/extract.js';
import { parseQuoted } from '../proc/quoted.js';
import type { AddressText, DecodedRecord } from '../record.js';

export type FlowProtocol = 'udp' | 'tcp' | 'icmp' | 'icmpv6' | 'other';

/** The flow an error reports, from its quoted datagram: what this host (or whoever sent it) sent. */
export interface ReportedFlow {
  family: 4 | 6;
  protocol: FlowProtocol;
  /** IP protocol / next header number of the quoted datagram. */
  protocolNumber: number;
  src: string;
  dst: string;
  srcPort: number | null;
  dstPort: number | null;
  /** Echo identifier and sequence when the quoted datagram is an echo request. */
  echoId: number | null;
  echoSeq: number | null;
  /** TTL / hop limit the quoted header carried when the reporter received it. */
  quotedTtl: number;
}

export type ErrorKind =
  | 'unreachable'
  | 'too-big'
  | 'time-exceeded'
  | 'reassembly-timeout'
  | 'parameter-problem'
  | 'redirect'
  | 'source-quench';

export interface MplsEntry {
  label: number;
  exp: number;
  bottom: boolean;
  ttl: number;
}

export interface InterfaceInfo {
  role: 'incoming' | 'sub-ip' | 'outgoing' | 'next-hop';
  ifindex: number | null;
  address: string | null;
  name: string | null;
  mtu: number | null;
}

export interface ErrorReport {
  family: 4 | 6;
  type: number;
  code: number;
  kind: ErrorKind;
  /** Who sent the error (the router or host that reports), and to whom. */
  reporter: string;
  to: string;
  tsNs: bigint;
  /** Plain words: "port unreachable", "TTL exceeded in transit at 10.0.0.1", "packet too big: MTU 1280". */
  what: string;
  /** The MTU a Fragmentation Needed / Packet Too Big offers. */
  mtu: number | null;
  flow: ReportedFlow | null;
  mpls: MplsEntry[];
  interfaces: InterfaceInfo[];
}

const V4_KINDS: Readonly<Record<number, ErrorKind>> = {
  3: 'unreachable',
  4: 'source-quench',
  5: 'redirect',
  11: 'time-exceeded',
  12: 'parameter-problem',
};
const V6_KINDS: Readonly<Record<number, ErrorKind>> = {
  1: 'unreachable',
  2: 'too-big',
  3: 'time-exceeded',
  4: 'parameter-problem',
};
const ROLES = ['incoming', 'sub-ip', 'outgoing', 'next-hop'] as const;

function at(fields: FieldMap, name: string, layer: number): FieldValue | undefined {
  return fields.occurrences(name).find((o) => o.layer === layer)?.value;
}

function num(v: FieldValue | undefined): number | null {
  return typeof v === 'number' ? v : null;
}

function ipv4Text(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 0xff}.${(v >>> 8) & 0xff}.${v & 0xff}`;
}

function addrText(v: FieldValue | undefined): string | null {
  if (typeof v === 'number') return ipv4Text(v);
  if (v instanceof Uint8Array && v.length === 16) return formatIpv6(v);
  return null;
}

function quotedFlow(fields: FieldMap, family: 4 | 6): ReportedFlow | null {
  // The outer header is layer 1 of its family; the quoted one is layer 2 (an IPv4 error always quotes IPv4,
  // an ICMPv6 error IPv6).
  const ipName = family === 4 ? 'ip' : 'ipv6';
  const src = addrText(at(fields, `${ipName}.src`, 2));
  const dst = addrText(at(fields, `${ipName}.dst`, 2));
  if (src === null || dst === null) return null;
  const flow: ReportedFlow = {
    family,
    protocol: 'other',
    protocolNumber: num(at(fields, family === 4 ? 'ip.proto' : 'ipv6.nxt', 2)) ?? 0,
    src,
    dst,
    srcPort: null,
    dstPort: null,
    echoId: null,
    echoSeq: null,
    quotedTtl: num(at(fields, family === 4 ? 'ip.ttl' : 'ipv6.hlim', 2)) ?? 0,
  };
  // The outer packet is ICMP, so a UDP or TCP layer can only be the quoted one (layer 1 of its kind).
  for (const proto of ['udp', 'tcp'] as const) {
    const sp = num(at(fields, `${proto}.srcport`, 1));
    if (sp !== null) {
      flow.protocol = proto;
      flow.protocolNumber = proto === 'udp' ? 17 : 6;
      flow.srcPort = sp;
      flow.dstPort = num(at(fields, `${proto}.dstport`, 1));
      return flow;
    }
  }
  if (family === 4 && num(at(fields, 'icmp.type', 2)) !== null) {
    flow.protocol = 'icmp';
    flow.protocolNumber = 1;
    flow.echoId = num(at(fields, 'icmp.ident', 2));
    flow.echoSeq = num(at(fields, 'icmp.seq', 2));
  } else if (family === 6 && num(at(fields, 'icmpv6.type', 2)) !== null) {
    flow.protocol = 'icmpv6';
    flow.protocolNumber = 58;
    flow.echoId = num(at(fields, 'icmpv6.echo.identifier', 2));
    flow.echoSeq = num(at(fields, 'icmpv6.echo.sequence_number', 2));
  }
  return flow;
}

function extensions(fields: FieldMap): { mpls: MplsEntry[]; interfaces: InterfaceInfo[] } {
  const labels = fields.get('icmp.mpls.label');
  const exps = fields.get('icmp.mpls.exp');
  const bottoms = fields.get('icmp.mpls.s');
  const ttls = fields.get('icmp.mpls.ttl');
  const mpls = labels.map((l, i) => ({
    label: Number(l),
    exp: Number(exps[i] ?? 0),
    bottom: bottoms[i] === true,
    ttl: Number(ttls[i] ?? 0),
  }));
  // One interface information object per role. With one object its sub-objects are its own; with several
  // (rare) only the roles are kept, as the flat field list cannot tell whose sub-object is whose.
  const roles = fields.get('icmp.int_info.role');
  const interfaces: InterfaceInfo[] = roles.map((r) => ({
    role: ROLES[Number(r) & 3]!,
    ifindex: null,
    address: null,
    name: null,
    mtu: null,
  }));
  const only = interfaces.length === 1 ? interfaces[0]! : null;
  if (only !== null) {
    only.ifindex = num(fields.get('icmp.int_info.index')[0]);
    only.address =
      addrText(fields.get('icmp.int_info.ipv4')[0]) ?? addrText(fields.get('icmp.int_info.ipv6')[0]);
    const name = fields.get('icmp.int_info.name')[0];
    only.name = typeof name === 'string' ? name : null;
    only.mtu = num(fields.get('icmp.int_info.mtu')[0]);
  }
  return { mpls, interfaces };
}

function describe(
  kind: ErrorKind,
  family: 4 | 6,
  type: number,
  code: number,
  reporter: string,
  mtu: number | null,
): string {
  switch (kind) {
    case 'too-big':
      return `${family === 4 ? 'fragmentation needed' : 'packet too big'} at ${reporter}: MTU ${mtu ?? '?'}`;
    case 'time-exceeded':
      return code === 1 ? `fragment reassembly time exceeded at ${reporter}` : `TTL exceeded at ${reporter}`;
    case 'unreachable':
      return `${codeLabel(family, type, code).toLowerCase()} (from ${reporter})`;
    default:
      return `${typeLabel(family, type).toLowerCase()}${code ? `: ${codeLabel(family, type, code).toLowerCase()}` : ''} (from ${reporter})`;
  }
}

/**
 * The error `record` reports, or null when it is not an ICMP/ICMPv6 error. `full`: always through the field
 * dissector (tests compare the two readers). `text`: formats the quoted addresses (the insights pass their
 * cache: an error quotes the same few flows again and again, and formatting an IPv6 address is most of what
 * decoding an error allocates).
 */
export function decodeError(
  record: DecodedRecord,
  full = false,
  text: AddressText = quotedText,
): ErrorReport | null {
  const kinds = record.family === 4 ? V4_KINDS : V6_KINDS;
  let kind = kinds[record.type];
  if (kind === undefined) return null;
  if (record.family === 4 && record.type === 11 && record.code === 1) kind = 'reassembly-timeout';
  if (record.family === 4 && record.type === 3 && record.code === 4) kind = 'too-big';
  // The usual shapes straight from the bytes (proc/quoted.ts); the dissector, every field of the packet, for
  // the rest (RFC 4884 extensions, extension headers, fragments, quotes cut short, errors quoting errors).
  const shape = full
    ? undefined
    : parseQuoted(record.data, 0, record.data.length, record.family, record.type);
  if (shape !== undefined) {
    const flow: ReportedFlow = {
      family: record.family,
      protocol: shape.protocol,
      protocolNumber: shape.protocolNumber,
      src: text(record.data, shape.srcAt, record.family),
      dst: text(record.data, shape.dstAt, record.family),
      srcPort: shape.srcPort,
      dstPort: shape.dstPort,
      echoId: shape.echoId,
      echoSeq: shape.echoSeq,
      quotedTtl: shape.quotedTtl,
    };
    return report(record, kind, shape.mtu, flow, [], []);
  }
  const fields = extractFields(record, null);
  const mtu = record.family === 4 ? num(at(fields, 'icmp.mtu', 1)) : num(at(fields, 'icmpv6.mtu', 1));
  const { mpls, interfaces } = extensions(fields);
  return report(record, kind, mtu, quotedFlow(fields, record.family), mpls, interfaces);
}

function report(
  record: DecodedRecord,
  kind: ErrorKind,
  mtu: number | null,
  flow: ReportedFlow | null,
  mpls: MplsEntry[],
  interfaces: InterfaceInfo[],
): ErrorReport {
  return {
    family: record.family,
    type: record.type,
    code: record.code,
    kind,
    reporter: record.src,
    to: record.dst,
    tsNs: record.tsNs,
    what: describe(kind, record.family, record.type, record.code, record.src, mtu),
    mtu: kind === 'too-big' ? mtu : null,
    flow,
    mpls,
    interfaces,
  };
}

/** "udp 10.0.0.2:40000 > 10.0.9.1:53", "icmp 10.0.0.2 > 10.0.9.1 id=7". */
export function flowText(f: ReportedFlow | null): string {
  if (f === null) return '(quoted datagram not captured)';
  const host = (a: string): string => (f.family === 6 ? `[${a}]` : a);
  if (f.protocol === 'udp' || f.protocol === 'tcp')
    return `${f.protocol} ${host(f.src)}:${f.srcPort} > ${host(f.dst)}:${f.dstPort}`;
  if (f.protocol === 'icmp' || f.protocol === 'icmpv6')
    return `${f.protocol} ${f.src} > ${f.dst}${f.echoId !== null ? ` id=${f.echoId}` : ''}`;
  return `proto ${f.protocolNumber} ${f.src} > ${f.dst}`;
}

export function flowKey(f: ReportedFlow | null): string {
  if (f === null) return '?';
  // As [...].join('|') wrote it (null as nothing), without the array.
  return `${f.family}|${f.protocolNumber}|${f.src}|${f.dst}|${f.srcPort ?? ''}|${f.dstPort ?? ''}|${f.echoId ?? ''}`;
}

/** The quoted addresses' text when the caller has no cache of its own. */
const quotedText: AddressText = (bytes, at, family) => formatAddress(bytes.subarray(at, at + 16), family);

export interface ProblemEvent {
  what: string;
  kind: ErrorKind;
  type: number;
  code: number;
  reporter: string;
  /** Whom the error was sent to. */
  to: string;
  mtu: number | null;
  count: number;
  firstNs: bigint;
  lastNs: bigint;
}

export interface Problem {
  flow: ReportedFlow | null;
  flowText: string;
  count: number;
  firstNs: bigint;
  lastNs: bigint;
  /** What happened to the flow, one entry per (error, reporter, MTU), in the order first seen. */
  events: ProblemEvent[];
}

/**
 * ICMP errors grouped by the flow they report. The flows are kept in the order last seen (a flow seen again
 * moves to the end): the newest are the last, and past `maxFlows` the one seen longest ago is forgotten
 * (`onForget` gets its key). Unbounded by default (a file's report); the live Problems view bounds it, since
 * a scan makes a flow per port.
 */
export class ProblemTable {
  private readonly byFlow = new Map<string, Problem>();
  /** The key of the flow seen last (already at the end: no move). */
  private lastKey = '';

  constructor(
    private readonly maxFlows = Infinity,
    private readonly onForget?: (key: string) => void,
  ) {}

  /** The key (`flowKey`) of the flow the last report added went to. */
  get lastFlowKey(): string {
    return this.lastKey;
  }

  /**
   * Takes any record; returns its error report (null for non-errors, which are ignored). `report`: the record's
   * `decodeError`, when the caller has it already.
   */
  add(record: DecodedRecord, report: ErrorReport | null = decodeError(record)): ErrorReport | null {
    if (report === null) return null;
    const key = flowKey(report.flow);
    let p = this.byFlow.get(key);
    if (p === undefined) {
      p = {
        flow: report.flow,
        flowText: flowText(report.flow),
        count: 0,
        firstNs: report.tsNs,
        lastNs: report.tsNs,
        events: [],
      };
      this.byFlow.set(key, p);
      if (this.byFlow.size > this.maxFlows) {
        const oldest = this.byFlow.keys().next().value!;
        this.byFlow.delete(oldest);
        this.onForget?.(oldest);
      }
    } else if (key !== this.lastKey) {
      // Seen again: to the end, with the newest.
      this.byFlow.delete(key);
      this.byFlow.set(key, p);
    }
    this.lastKey = key;
    p.count++;
    p.lastNs = report.tsNs > p.lastNs ? report.tsNs : p.lastNs;
    let e = p.events.find(
      (x) =>
        x.type === report.type &&
        x.code === report.code &&
        x.reporter === report.reporter &&
        x.to === report.to &&
        x.mtu === report.mtu,
    );
    if (e === undefined) {
      e = {
        what: report.what,
        kind: report.kind,
        type: report.type,
        code: report.code,
        reporter: report.reporter,
        to: report.to,
        mtu: report.mtu,
        count: 0,
        firstNs: report.tsNs,
        lastNs: report.tsNs,
      };
      p.events.push(e);
    }
    e.count++;
    if (report.tsNs > e.lastNs) e.lastNs = report.tsNs;
    return report;
  }

  list(): Problem[] {
    return [...this.byFlow.values()];
  }

  /**
   * The `n` problems seen last, newest first (by their last time): the view shows what happens now, twice a
   * second, so this walks the table once and sorts only those `n`, not every problem (a scan makes thousands).
   */
  newest(n: number): Problem[] {
    if (n <= 0) return [];
    const last: Problem[] = new Array<Problem>(Math.min(n, this.byFlow.size));
    let k = 0;
    for (const p of this.byFlow.values()) last[k++ % last.length] = p;
    return last.sort((a, b) => (a.lastNs < b.lastNs ? 1 : a.lastNs > b.lastNs ? -1 : 0));
  }
}

function timeText(ns: bigint): string {
  return `${ns / 1_000_000_000n}.${((ns % 1_000_000_000n) / 1000n).toString().padStart(6, '0')}`;
}

/** The `-z icmpcap,problems` table. */
export function formatProblems(
  problems: readonly Problem[],
  notes: ReadonlyMap<Problem, string> = new Map(),
): string {
  const lines = [
    '',
    '===================================================================',
    'ICMP problems by flow',
  ];
  if (problems.length === 0) lines.push('(no ICMP errors)');
  for (const p of problems) {
    lines.push(`${p.flowText}: ${p.count} error${p.count === 1 ? '' : 's'}`);
    for (const e of p.events)
      lines.push(`  ${e.what}: ${e.count}x, first ${timeText(e.firstNs)}, last ${timeText(e.lastNs)}`);
    const note = notes.get(p);
    if (note !== undefined) lines.push(note);
  }
  lines.push('===================================================================', '');
  return lines.join('\n');
}
