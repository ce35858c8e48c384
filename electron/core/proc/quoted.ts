/**
 * The datagram an ICMP or ICMPv6 error quotes, read straight from the packet's bytes. The field dissector
 * (../fields/extract.ts, behind `icmp.*` filters and the details pane) reads the same, but builds every field
 * of the packet to do it: 18-41 µs an error, more than the rest of a record's ingest, paid by process
 * attribution and the insights' problem table for every error a live capture sees. `parseQuoted` reads the
 * usual shapes only and leaves every other one to the dissector, so the two cannot disagree: an unfragmented
 * outer header with no IPv6 extension headers, a type that quotes a datagram, no RFC 4884 length (so no
 * extensions), a whole quoted IP header of the same family without fragment offset or extension headers, and
 * after it a UDP or TCP header (8 bytes), an echo request or reply header (8 bytes) or another protocol.
 * The tests compare both readers on every shape this one answers.
 */
import { V4_ECHOLIKE, V4_ERRORS, V6_ERRORS } from '../fields/extract.js';
import { OFF } from '../record.js';

/** What an error's bytes say, where parseQuoted answers. */
export interface QuotedShape {
  /** The MTU a Fragmentation Needed (3/4) or Packet Too Big offers, else null. */
  mtu: number | null;
  protocol: 'udp' | 'tcp' | 'icmp' | 'icmpv6' | 'other';
  /** IP protocol / next header of the quoted datagram. */
  protocolNumber: number;
  /** Offsets of the quoted source and destination addresses in the bytes given. */
  srcAt: number;
  dstAt: number;
  srcPort: number | null;
  dstPort: number | null;
  echoId: number | null;
  echoSeq: number | null;
  quotedTtl: number;
}

/** ICMP types whose message quotes the datagram it is about, as the dissector reads them. */
const V4_QUOTING = V4_ERRORS;
const V6_QUOTING = V6_ERRORS;

const u16 = (b: Uint8Array, at: number): number => (b[at]! << 8) | b[at + 1]!;

/**
 * Reads the error of `family` whose packet (from its outer IP header) is `bytes[p, p + capLen)` and whose
 * record says `type`. undefined: not an error that quotes, or a shape this does not read.
 */
export function parseQuoted(
  bytes: Uint8Array,
  p: number,
  capLen: number,
  family: 4 | 6,
  type: number,
): QuotedShape | undefined {
  let icmp: number; // the outer ICMP header
  if (family === 4) {
    if (capLen < 20 || bytes[p]! >> 4 !== 4) return undefined;
    icmp = (bytes[p]! & 15) * 4;
    if (icmp < 20 || bytes[p + 9] !== 1 || (u16(bytes, p + 6) & 0x1fff) !== 0) return undefined;
    if (icmp + 8 > capLen || bytes[p + icmp] !== type || !V4_QUOTING.has(type)) return undefined;
    if ((type === 3 || type === 11 || type === 12) && bytes[p + icmp + 5] !== 0) return undefined;
  } else {
    if (capLen < 48 || bytes[p]! >> 4 !== 6 || bytes[p + 6] !== 58) return undefined;
    icmp = 40;
    if (bytes[p + icmp] !== type || !V6_QUOTING.has(type)) return undefined;
    if ((type === 1 || type === 3) && bytes[p + icmp + 4] !== 0) return undefined;
  }
  const code = bytes[p + icmp + 1]!;
  const q = icmp + 8; // the quoted IP header
  let proto: number;
  let t: number; // the quoted transport header
  let ttl: number;
  if (family === 4) {
    if (q + 20 > capLen || bytes[p + q]! >> 4 !== 4) return undefined;
    const qihl = (bytes[p + q]! & 15) * 4;
    if (qihl < 20 || (u16(bytes, p + q + 6) & 0x1fff) !== 0) return undefined;
    proto = bytes[p + q + 9]!;
    ttl = bytes[p + q + 8]!;
    t = q + qihl;
  } else {
    if (q + 40 > capLen || bytes[p + q]! >> 4 !== 6) return undefined;
    proto = bytes[p + q + 6]!;
    if (proto === 0 || proto === 43 || proto === 44 || proto === 60) return undefined; // extension headers
    ttl = bytes[p + q + 7]!;
    t = q + 40;
  }
  const shape: QuotedShape = {
    mtu: null,
    protocol: 'other',
    protocolNumber: proto,
    srcAt: family === 4 ? p + q + 12 : p + q + 8,
    dstAt: family === 4 ? p + q + 16 : p + q + 24,
    srcPort: null,
    dstPort: null,
    echoId: null,
    echoSeq: null,
    quotedTtl: ttl,
  };
  if (family === 4 && type === 3 && code === 4) shape.mtu = u16(bytes, p + icmp + 6);
  if (family === 6 && type === 2) shape.mtu = u16(bytes, p + icmp + 4) * 65536 + u16(bytes, p + icmp + 6);
  const whole = t + 8 <= capLen;
  if (proto === 17 || proto === 6) {
    if (!whole) return undefined;
    shape.protocol = proto === 17 ? 'udp' : 'tcp';
    shape.srcPort = u16(bytes, p + t);
    shape.dstPort = u16(bytes, p + t + 2);
  } else if (family === 4 && proto === 1) {
    // Only echo-like quoted messages: a quoted error quotes another datagram, which the dissector reads too.
    if (!whole || !V4_ECHOLIKE.has(bytes[p + t]!)) return undefined;
    shape.protocol = 'icmp';
    shape.echoId = u16(bytes, p + t + 4);
    shape.echoSeq = u16(bytes, p + t + 6);
  } else if (family === 6 && proto === 58) {
    if (!whole || (bytes[p + t] !== 128 && bytes[p + t] !== 129)) return undefined;
    shape.protocol = 'icmpv6';
    shape.echoId = u16(bytes, p + t + 4);
    shape.echoSeq = u16(bytes, p + t + 6);
  }
  return shape;
}

export interface QuotedFlow {
  family: 4 | 6;
  protocol: 'udp' | 'tcp' | 'icmp' | 'icmpv6' | 'other';
  srcPort: number | null;
  dstPort: number | null;
  echoId: number | null;
  /** Where the quoted source and destination are in `bytes` (formatted only when a lookup needs them). */
  bytes: Uint8Array;
  srcAt: number;
  dstAt: number;
}

/**
 * The flow the error record at `o` of `view` quotes, when its source is the address the error was sent to
 * (an error about what this host sent): process attribution. null: not an error, or one about someone
 * else's datagram; undefined: a shape parseQuoted does not read (decodeError does).
 */
export function quotedFlowOf(view: DataView, o: number): QuotedFlow | null | undefined {
  const family = view.getUint8(o + OFF.family) === 6 ? 6 : 4;
  if (!(family === 4 ? V4_QUOTING : V6_QUOTING).has(view.getUint8(o + OFF.type))) return null; // no error
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  const shape = parseQuoted(
    bytes,
    o + OFF.data,
    view.getUint16(o + OFF.capLen, true),
    family,
    view.getUint8(o + OFF.type),
  );
  if (shape === undefined) return undefined;
  const { srcAt, dstAt } = shape;
  const to = o + OFF.daddr;
  for (let k = 0; k < (family === 4 ? 4 : 16); k++) if (bytes[srcAt + k] !== bytes[to + k]) return null;
  return {
    family,
    protocol: shape.protocol,
    srcPort: shape.srcPort,
    dstPort: shape.dstPort,
    echoId: shape.echoId,
    bytes,
    srcAt,
    dstAt,
  };
}
