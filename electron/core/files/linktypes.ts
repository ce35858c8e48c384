/**
 * Link-layer headers of the capture files we open: where the IP header starts and, when the link says so,
 * which direction the packet went. Numbers are LINKTYPE_* values from tcpdump.org/linktypes.html.
 */
import { Direction } from '../record.js';

export const LINKTYPE = {
  NULL: 0,
  ETHERNET: 1,
  RAW_DLT12: 12,
  RAW_DLT14: 14,
  RAW: 101,
  LOOP: 108,
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const;

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100;
const ETHERTYPE_QINQ = 0x88a8;
const ETHERTYPE_QINQ_OLD = 0x9100;
/** sll_pkttype PACKET_OUTGOING: the packet was sent by this host. */
const PACKET_OUTGOING = 4;
const AF_INET = 2;
/** AF_INET6 differs by OS: Linux 10, BSDs 24, FreeBSD 28, macOS 30. */
const AF_INET6_VALUES = new Set([10, 24, 28, 30]);

export interface LinkResult {
  /** Offset of the IP header in the buffer. */
  ipStart: number;
  /** A direction the link header itself states (SLL), or Direction.Unknown. */
  dir: number;
}

export function isSupportedLinkType(linkType: number): boolean {
  return Object.values(LINKTYPE).includes(linkType as never);
}

/**
 * Finds the IP header of a frame `bytes[start, end)`. Returns false when the frame does not carry IPv4 or
 * IPv6 (ARP, other ethertypes, unknown link types, frames cut inside the link header).
 */
export function locateIpHeader(
  linkType: number,
  bytes: Uint8Array,
  start: number,
  end: number,
  out: LinkResult,
): boolean {
  out.dir = Direction.Unknown;
  switch (linkType) {
    case LINKTYPE.ETHERNET:
      return locateAfterEthernet(bytes, start, end, out);
    case LINKTYPE.RAW:
    case LINKTYPE.RAW_DLT12:
    case LINKTYPE.RAW_DLT14:
    case LINKTYPE.IPV4:
    case LINKTYPE.IPV6:
      out.ipStart = start;
      return end > start;
    case LINKTYPE.LINUX_SLL: {
      if (end - start < 16 || !isIpEthertype(readU16(bytes, start + 14))) return false;
      if (readU16(bytes, start) === PACKET_OUTGOING) out.dir = Direction.Out;
      else out.dir = Direction.In;
      out.ipStart = start + 16;
      return true;
    }
    case LINKTYPE.LINUX_SLL2: {
      if (end - start < 20 || !isIpEthertype(readU16(bytes, start))) return false;
      out.dir = bytes[start + 10] === PACKET_OUTGOING ? Direction.Out : Direction.In;
      out.ipStart = start + 20;
      return true;
    }
    case LINKTYPE.NULL: {
      if (end - start < 4) return false;
      // The AF value is in the byte order of the machine that captured; accept either.
      const little = bytes[start]! | (bytes[start + 1]! << 8) | (bytes[start + 2]! << 16);
      const big = (bytes[start + 1]! << 16) | (bytes[start + 2]! << 8) | bytes[start + 3]!;
      const family = bytes[start + 3] === 0 && little !== 0 ? little : big;
      if (family !== AF_INET && !AF_INET6_VALUES.has(family)) return false;
      out.ipStart = start + 4;
      return true;
    }
    case LINKTYPE.LOOP: {
      if (end - start < 4) return false;
      const family = readU16(bytes, start + 2) | (readU16(bytes, start) << 16);
      if (family !== AF_INET && !AF_INET6_VALUES.has(family)) return false;
      out.ipStart = start + 4;
      return true;
    }
    default:
      return false;
  }
}

function locateAfterEthernet(bytes: Uint8Array, start: number, end: number, out: LinkResult): boolean {
  let at = start + 12;
  // Skip any number of 802.1Q / 802.1ad tags; each is 4 bytes, so the loop ends at the frame's end.
  for (;;) {
    if (at + 2 > end) return false;
    const ethertype = readU16(bytes, at);
    if (ethertype === ETHERTYPE_VLAN || ethertype === ETHERTYPE_QINQ || ethertype === ETHERTYPE_QINQ_OLD) {
      at += 4;
      continue;
    }
    if (!isIpEthertype(ethertype)) return false;
    out.ipStart = at + 2;
    return true;
  }
}

function isIpEthertype(ethertype: number): boolean {
  return ethertype === ETHERTYPE_IPV4 || ethertype === ETHERTYPE_IPV6;
}

function readU16(bytes: Uint8Array, at: number): number {
  return (bytes[at]! << 8) | bytes[at + 1]!;
}
