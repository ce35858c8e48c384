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

/** 32-bit words over the buffer of the last `bytes` summed (a batch's records come in the same array). */
let wordsOf: Uint8Array | null = null;
let words: Int32Array<ArrayBufferLike> = new Int32Array(0);
let wordsBase = 0;

/**
 * The same sum with every 16-bit word's bytes swapped (RFC 1071 2(B): the folded sum of swapped words is the
 * swapped folded sum), read a 32-bit little-endian word at a time where `bytes[start]` is 4-byte aligned in
 * its buffer: half the loads of `sum16`. A sum is all ones in either order, so checks compare it as it is.
 */
function sum16Swapped(bytes: Uint8Array, start: number, end: number): number {
  if (wordsOf !== bytes) {
    wordsOf = bytes;
    wordsBase = bytes.byteOffset;
    words = new Int32Array(bytes.buffer, 0, (bytes.byteOffset + bytes.length) >>> 2);
  }
  const at = wordsBase + start;
  if ((at & 3) !== 0) return swap16Sum(sum16(bytes, start, end));
  let sum = 0;
  const n = (end - start) >>> 2;
  for (let k = at >>> 2, stop = (at >>> 2) + n; k < stop; k++) {
    const w = words[k]!;
    sum += (w & 0xffff) + ((w >>> 16) & 0xffff);
  }
  let i = start + n * 4;
  for (; i + 1 < end; i += 2) sum += bytes[i]! | (bytes[i + 1]! << 8);
  if (i < end) sum += bytes[i]!;
  return sum;
}

/** A big-endian word sum as the swapped-order sum: folded, then its two bytes swapped. */
function swap16Sum(sum: number): number {
  return swap16(fold(sum));
}

function swap16(word: number): number {
  return ((word & 0xff) << 8) | (word >>> 8);
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
    return fold(sum16Swapped(bytes, at + ihl, end)) === 0xffff;
  }
  if (length < 48) return true;
  const payloadLength = (bytes[at + 4]! << 8) | bytes[at + 5]!;
  if (payloadLength !== 0) end = Math.min(end, at + 40 + payloadLength);
  const icmpAt = icmpv6Offset(bytes, at, end);
  if (icmpAt < 0 || icmpAt + 8 > end) return true;
  // The pseudo-header: addresses, upper-layer length (32 bits) and next header 58, its words swapped too.
  const upper = end - icmpAt;
  const pseudo =
    sum16Swapped(bytes, at + 8, at + 40) + swap16(upper & 0xffff) + swap16(upper >>> 16) + 0x3a00;
  return fold(pseudo + sum16Swapped(bytes, icmpAt, end)) === 0xffff;
}
