/**
 * The ICMP/ICMPv6 checksum of a captured record, checked at ingest so the table can flag a bad one. Only
 * whole, unfragmented messages are checked: a fragment's checksum covers bytes in other packets, and a
 * message cut by the snap length cannot be summed.
 */

/** One's-complement sum of bytes[start, end) as 16-bit big-endian words (RFC 1071), not yet folded. */
function sum16(bytes: Uint8Array, start: number, end: number): number {
  let sum = 0;
  let i = start;
  for (; i + 1 < end; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (i < end) sum += bytes[i]! << 8;
  return sum;
}

function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/** Where the ICMPv6 header starts after extension headers, or -1 (other protocol, a fragment, cut short). */
function icmpv6Offset(bytes: Uint8Array, at: number, end: number): number {
  let next = bytes[at + 6]!;
  let p = at + 40;
  for (let hops = 0; hops < 8; hops++) {
    if (next === 58) return p;
    if (p + 8 > end) return -1;
    if (next === 0 || next === 43 || next === 60) {
      next = bytes[p]!;
      p += (bytes[p + 1]! + 1) * 8;
    } else if (next === 51) {
      next = bytes[p]!;
      p += (bytes[p + 1]! + 2) * 4;
    } else return -1; // a Fragment header (the caller skips fragments) or something we do not walk
  }
  return -1;
}

/**
 * False when the IP packet at bytes[at, at + length) (captured whole, not a fragment) carries an ICMP or
 * ICMPv6 message whose checksum is wrong; true when it is right or cannot be checked.
 */
export function icmpChecksumOk(bytes: Uint8Array, at: number, length: number, family: 4 | 6): boolean {
  let end = at + length;
  if (family === 4) {
    const ihl = (bytes[at]! & 0x0f) * 4;
    // Link-layer padding after the datagram is not part of the message.
    end = Math.min(end, at + ((bytes[at + 2]! << 8) | bytes[at + 3]!));
    if (ihl < 20 || at + ihl + 8 > end) return true;
    return fold(sum16(bytes, at + ihl, end)) === 0xffff;
  }
  if (length < 48) return true;
  const payloadLength = (bytes[at + 4]! << 8) | bytes[at + 5]!;
  if (payloadLength !== 0) end = Math.min(end, at + 40 + payloadLength);
  const icmpAt = icmpv6Offset(bytes, at, end);
  if (icmpAt < 0 || icmpAt + 8 > end) return true;
  // The pseudo-header: addresses, upper-layer length and next header 58.
  const pseudo = sum16(bytes, at + 8, at + 40) + (end - icmpAt) + 58;
  return fold(pseudo + sum16(bytes, icmpAt, end)) === 0xffff;
}
