/**
 * The flow an incoming ICMP or ICMPv6 error quotes, read straight from the record's bytes, for process
 * attribution. decodeError (the field dissector behind `icmp.*` filters and the details pane) reads the same
 * flow, but builds every field of the packet to do it: 2-4 µs an error, the largest single cost of a live
 * capture's ingest when errors are frequent (a traceroute storm, an unreachable host flooded). This reads
 * the usual shapes only and leaves every other one to decodeError, so the two cannot disagree: an
 * unfragmented outer header with no IPv6 extension headers, a type that quotes a datagram, no RFC 4884 length,
 * a whole quoted IP header of the same family, and after it a UDP or TCP header (8 bytes) or an echo
 * request or reply header (8 bytes). The test compares it with decodeError on every shape it answers.
 */
import { formatAddress } from '../../common/address.js';
import { OFF } from '../record.js';

export interface QuotedFlow {
  family: 4 | 6;
  protocol: 'udp' | 'tcp' | 'icmp' | 'icmpv6';
  /** UDP or TCP ports; null for echo. */
  srcPort: number | null;
  dstPort: number | null;
  /** The echo identifier; null for UDP or TCP. */
  echoId: number | null;
  /** The quoted source and destination as text (formatted when asked). */
  src: () => string;
  dst: () => string;
}

/** ICMP types whose message quotes the datagram it is about (and that decodeError knows). */
const V4_QUOTING = new Set([3, 4, 5, 11, 12]);
const V6_QUOTING = new Set([1, 2, 3, 4]);
/** ICMP (v4) types the dissector reads an identifier of. */
const V4_ECHOLIKE = new Set([0, 8, 13, 14, 15, 16, 17, 18]);

/**
 * The flow the error record at `o` of `view` quotes, when its source is the address the error was sent to
 * (an error about what this host sent). null: not such an error (another type, or about someone else's
 * datagram); undefined: a shape this does not read (decodeError does).
 */
export function quotedFlowOf(view: DataView, o: number): QuotedFlow | null | undefined {
  const family = view.getUint8(o + OFF.family) === 6 ? 6 : 4;
  const capLen = view.getUint16(o + OFF.capLen, true);
  const p = o + OFF.data; // the packet, from its outer IP header
  const type = view.getUint8(o + OFF.type);
  let q: number; // the quoted IP header
  if (family === 4) {
    if (capLen < 20 || view.getUint8(p) >> 4 !== 4) return undefined;
    const ihl = (view.getUint8(p) & 15) * 4;
    if (ihl < 20 || view.getUint8(p + 9) !== 1 || (view.getUint16(p + 6) & 0x1fff) !== 0) return undefined;
    if (ihl + 8 > capLen || view.getUint8(p + ihl) !== type) return undefined;
    if (!V4_QUOTING.has(type)) return null;
    if ((type === 3 || type === 11 || type === 12) && view.getUint8(p + ihl + 5) !== 0) return undefined;
    q = ihl + 8;
    if (q + 20 > capLen || view.getUint8(p + q) >> 4 !== 4) return undefined;
    // Only errors about what this host sent: the quoted source is the address the error was sent to.
    if (view.getUint32(p + q + 12) !== view.getUint32(o + OFF.daddr)) return null;
  } else {
    if (capLen < 48 || view.getUint8(p) >> 4 !== 6 || view.getUint8(p + 6) !== 58) return undefined;
    if (view.getUint8(p + 40) !== type) return undefined;
    if (!V6_QUOTING.has(type)) return null;
    if ((type === 1 || type === 3) && view.getUint8(p + 44) !== 0) return undefined;
    q = 48;
    if (q + 40 > capLen || view.getUint8(p + q) >> 4 !== 6) return undefined;
    for (let k = 0; k < 16; k += 4) {
      if (view.getUint32(p + q + 8 + k) !== view.getUint32(o + OFF.daddr + k)) return null;
    }
  }
  // The quoted header and what follows it.
  let proto: number;
  let t: number; // the quoted transport header
  if (family === 4) {
    const qihl = (view.getUint8(p + q) & 15) * 4;
    if (qihl < 20 || (view.getUint16(p + q + 6) & 0x1fff) !== 0) return undefined;
    proto = view.getUint8(p + q + 9);
    t = q + qihl;
  } else {
    proto = view.getUint8(p + q + 6);
    t = q + 40;
  }
  if (t + 8 > capLen) return undefined;
  const srcAt = family === 4 ? p + q + 12 : p + q + 8;
  const dstAt = family === 4 ? p + q + 16 : p + q + 24;
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  const flow: QuotedFlow = {
    family,
    protocol: 'udp',
    srcPort: null,
    dstPort: null,
    echoId: null,
    src: () => formatAddress(bytes.subarray(srcAt, srcAt + 16), family),
    dst: () => formatAddress(bytes.subarray(dstAt, dstAt + 16), family),
  };
  if (proto === 17 || proto === 6) {
    flow.protocol = proto === 17 ? 'udp' : 'tcp';
    flow.srcPort = view.getUint16(p + t);
    flow.dstPort = view.getUint16(p + t + 2);
    return flow;
  }
  const quotedType = view.getUint8(p + t);
  if (family === 4 && proto === 1 && V4_ECHOLIKE.has(quotedType)) {
    flow.protocol = 'icmp';
    flow.echoId = view.getUint16(p + t + 4);
    return flow;
  }
  if (family === 6 && proto === 58 && (quotedType === 128 || quotedType === 129)) {
    flow.protocol = 'icmpv6';
    flow.echoId = view.getUint16(p + t + 4);
    return flow;
  }
  return undefined;
}
