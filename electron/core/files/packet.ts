/**
 * Turns one IP packet into one record of the format in `../record.ts`, exactly as the live sources do, so a
 * capture file opened in icmpcap looks like the same traffic captured live.
 */
import {
  alignRecord,
  Hook,
  OFF,
  RECORD_HEADER_SIZE,
  REC_F_FRAGMENT,
  REC_F_HAS_ECHO,
  REC_F_NOT_FIRST,
  REC_F_SHORT,
  REC_F_TRUNCATED,
} from '../record.js';

/** A record never carries more than this many packet bytes: `cap_len` is 16 bits wide. */
export const MAX_RECORD_DATA = 0xffff;
/** The most bytes `encodeRecord` can write for one packet, alignment included. */
export const MAX_RECORD_SIZE = alignRecord(RECORD_HEADER_SIZE + MAX_RECORD_DATA);

const IPPROTO_ICMP = 1;
const IPPROTO_ICMPV6 = 58;
const IPV6_HOP_BY_HOP = 0;
const IPV6_ROUTING = 43;
const IPV6_FRAGMENT = 44;
const IPV6_AUTH = 51;
const IPV6_DEST_OPTS = 60;
/** Every ICMP and ICMPv6 message starts with an 8-byte header; shorter ones are not decodable. */
const ICMP_HEADER_SIZE = 8;

export interface RecordMeta {
  tsNs: bigint;
  ifindex: number;
  dir: number;
  /** Length of the packet from the IP header on, as it was on the wire. */
  origLen: number;
}

/**
 * Parses `ipPacket` (IPv4 with options, or IPv6 with extension headers) and writes one record at `offset`.
 * Returns the record's aligned size (the next record starts at `offset + size`), or null when the packet is
 * not ICMP/ICMPv6 (or its IP header is cut short). Fragments and packets too short for an ICMP header are
 * recorded with the flags the live sources set (FRAGMENT, NOT_FIRST, SHORT; uapi icmpcap.h).
 * `out` must have room for `MAX_RECORD_SIZE` bytes or the record size, whichever is smaller.
 */
export function encodeRecord(
  ipPacket: Uint8Array,
  meta: RecordMeta,
  out: DataView | Uint8Array,
  offset: number,
): number | null {
  const view = out instanceof DataView ? out : new DataView(out.buffer, out.byteOffset, out.byteLength);
  const bytes = out instanceof Uint8Array ? out : new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  const ts = BigInt.asUintN(64, meta.tsNs);
  return encodeRecordInto(
    ipPacket,
    0,
    ipPacket.length,
    meta.origLen,
    Number(ts >> 32n),
    Number(ts & 0xffffffffn),
    meta.ifindex,
    meta.dir,
    view,
    bytes,
    offset,
  );
}

/**
 * The hot-path form of `encodeRecord` used by the file reader: the packet is `src[start, end)`, the timestamp
 * comes as two 32-bit halves (no BigInt per record) and `view`/`bytes` are two views of the same buffer.
 */
export function encodeRecordInto(
  src: Uint8Array,
  start: number,
  end: number,
  origLen: number,
  tsHi: number,
  tsLo: number,
  ifindex: number,
  dir: number,
  view: DataView,
  bytes: Uint8Array,
  offset: number,
): number | null {
  const available = end - start;
  if (available < 1) return null;
  const version = src[start]! >> 4;
  let icmpAt: number;
  let ttl: number;
  let wireLen: number;
  let flags = 0;
  if (version === 4) {
    const ihl = (src[start]! & 0x0f) * 4;
    if (ihl < 20 || available < 20) return null;
    if (src[start + 9] !== IPPROTO_ICMP) return null;
    const fragment = ((src[start + 6]! << 8) | src[start + 7]!) & 0x3fff; // MF and the offset
    if (fragment !== 0) flags |= REC_F_FRAGMENT;
    // A non-first fragment carries the middle of a datagram, not an ICMP header.
    if ((fragment & 0x1fff) !== 0) flags |= REC_F_NOT_FIRST;
    icmpAt = start + ihl;
    ttl = src[start + 8]!;
    wireLen = (src[start + 2]! << 8) | src[start + 3]!;
  } else if (version === 6) {
    if (available < 40) return null;
    ttl = src[start + 7]!;
    const payloadLen = (src[start + 4]! << 8) | src[start + 5]!;
    wireLen = payloadLen === 0 ? 0 : 40 + payloadLen; // 0: jumbogram, length unknown here
    const walk = skipIpv6ExtensionHeaders(src, start, end);
    if (walk < 0) return null;
    icmpAt = walk & WALK_OFFSET_MASK;
    flags |=
      walk >= WALK_NOT_FIRST ? REC_F_FRAGMENT | REC_F_NOT_FIRST : walk >= WALK_FRAGMENT ? REC_F_FRAGMENT : 0;
  } else {
    return null;
  }
  // Headers that run past the captured bytes: nothing says where the ICMP message is.
  if (icmpAt > end) return null;

  // The kernel trims link-layer padding before the hooks see the packet; do the same when the link said more.
  let packetLen = origLen;
  if (wireLen >= icmpAt - start && wireLen < packetLen) packetLen = wireLen;
  const capLen = Math.min(available, packetLen, MAX_RECORD_DATA);
  if (capLen < packetLen) flags |= REC_F_TRUNCATED;
  let type = 0;
  let code = 0;
  let isEcho = false;
  if ((flags & REC_F_NOT_FIRST) === 0) {
    if (packetLen - (icmpAt - start) < ICMP_HEADER_SIZE) flags |= REC_F_SHORT;
    const icmpCaptured = start + capLen - icmpAt;
    if (icmpCaptured >= 1) type = src[icmpAt]!;
    if (icmpCaptured >= 2) code = src[icmpAt + 1]!;
    isEcho =
      icmpCaptured >= ICMP_HEADER_SIZE &&
      (version === 4 ? type === 0 || type === 8 : type === 128 || type === 129);
  }
  if (isEcho) flags |= REC_F_HAS_ECHO;
  const family = version;

  const len = RECORD_HEADER_SIZE + capLen;
  const size = alignRecord(len);
  if (offset + size > bytes.length) throw new RangeError(`no room for a ${size}-byte record at ${offset}`);
  view.setUint32(offset + OFF.len, len, true);
  view.setUint16(offset + OFF.flags, flags, true);
  bytes[offset + OFF.hook] = Hook.None;
  bytes[offset + OFF.dir] = dir;
  view.setUint32(offset + OFF.tsNs, tsLo, true);
  view.setUint32(offset + OFF.tsNs + 4, tsHi, true);
  view.setUint32(offset + OFF.ifindex, ifindex, true);
  view.setUint32(offset + OFF.origLen, packetLen, true);
  view.setUint16(offset + OFF.capLen, capLen, true);
  bytes[offset + OFF.family] = family;
  bytes[offset + OFF.ttl] = ttl;
  bytes[offset + OFF.type] = type;
  bytes[offset + OFF.code] = code;
  view.setUint16(offset + OFF.id, isEcho ? (src[icmpAt + 4]! << 8) | src[icmpAt + 5]! : 0, true);
  view.setUint16(offset + OFF.seq, isEcho ? (src[icmpAt + 6]! << 8) | src[icmpAt + 7]! : 0, true);
  view.setUint16(offset + 34, 0, true);
  view.setUint32(offset + 36, 0, true);
  if (version === 4) {
    for (let i = 0; i < 4; i++) {
      bytes[offset + OFF.saddr + i] = src[start + 12 + i]!;
      bytes[offset + OFF.daddr + i] = src[start + 16 + i]!;
    }
    for (let i = 4; i < 16; i += 4) {
      view.setUint32(offset + OFF.saddr + i, 0);
      view.setUint32(offset + OFF.daddr + i, 0);
    }
  } else {
    for (let i = 0; i < 16; i++) {
      bytes[offset + OFF.saddr + i] = src[start + 8 + i]!;
      bytes[offset + OFF.daddr + i] = src[start + 24 + i]!;
    }
  }
  // A short packet (most ICMP) byte by byte: a subarray a record was most of what opening a file allocated.
  const dataAt = offset + OFF.data;
  if (capLen <= SMALL_COPY) for (let i = 0; i < capLen; i++) bytes[dataAt + i] = src[start + i]!;
  else bytes.set(src.subarray(start, start + capLen), dataAt);
  // Zero the alignment tail so equal packets give byte-identical batches.
  for (let i = offset + len; i < offset + size; i++) bytes[i] = 0;
  return size;
}

/** Packets up to this many bytes are copied in a loop, larger ones with TypedArray.set (see encodeRecordInto). */
const SMALL_COPY = 256;

/** skipIpv6ExtensionHeaders packs the ICMPv6 offset with what it saw of a Fragment header. */
const WALK_OFFSET_MASK = 0x3fffffff;
const WALK_FRAGMENT = 0x40000000;
const WALK_NOT_FIRST = 0x80000000;

/**
 * Walks hop-by-hop, routing, fragment, destination options and AH headers. Returns the offset of the
 * ICMPv6 header (for a non-first fragment: of its fragment data), plus WALK_FRAGMENT when a Fragment header
 * was on the way and WALK_NOT_FIRST when its offset is not 0; or -1 when the packet is not ICMPv6 or its
 * headers run past the captured bytes.
 */
function skipIpv6ExtensionHeaders(src: Uint8Array, start: number, end: number): number {
  let next = src[start + 6]!;
  let at = start + 40;
  let fragment = 0;
  // Every extension header is at least 8 bytes long, so this loop ends within the packet.
  for (;;) {
    if (next === IPPROTO_ICMPV6) return at + fragment;
    if (at + 8 > end) return -1;
    switch (next) {
      case IPV6_HOP_BY_HOP:
      case IPV6_ROUTING:
      case IPV6_DEST_OPTS:
        next = src[at]!;
        at += (src[at + 1]! + 1) * 8;
        break;
      case IPV6_AUTH:
        next = src[at]!;
        at += (src[at + 1]! + 2) * 4;
        break;
      case IPV6_FRAGMENT:
        next = src[at]!;
        if ((((src[at + 2]! << 8) | src[at + 3]!) & 0xfff8) !== 0) {
          // The rest is the middle of the datagram; its first header says whether the datagram is ICMPv6.
          return next === IPPROTO_ICMPV6 ? at + 8 + WALK_NOT_FIRST : -1;
        }
        fragment = WALK_FRAGMENT;
        at += 8;
        break;
      default:
        return -1;
    }
  }
}
