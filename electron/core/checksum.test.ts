import { describe, expect, it } from 'vitest';
import { icmpChecksumOk } from './checksum.js';

/** RFC 1071 a byte pair at a time, as the checksum was first written here: the reference. */
function referenceOk(bytes: Uint8Array, at: number, length: number, family: 4 | 6): boolean {
  const sum16 = (start: number, end: number): number => {
    let sum = 0;
    let i = start;
    for (; i + 1 < end; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
    if (i < end) sum += bytes[i]! << 8;
    return sum;
  };
  const fold = (sum: number): number => {
    while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
    return sum;
  };
  let end = at + length;
  if (family === 4) {
    const ihl = (bytes[at]! & 0x0f) * 4;
    end = Math.min(end, at + ((bytes[at + 2]! << 8) | bytes[at + 3]!));
    if (ihl < 20 || at + ihl + 8 > end) return true;
    return fold(sum16(at + ihl, end)) === 0xffff;
  }
  if (length < 48) return true;
  const payloadLength = (bytes[at + 4]! << 8) | bytes[at + 5]!;
  if (payloadLength !== 0) end = Math.min(end, at + 40 + payloadLength);
  if (bytes[at + 6] !== 58) return true; // (these packets have no extension headers)
  const icmpAt = at + 40;
  if (icmpAt + 8 > end) return true;
  return fold(sum16(at + 8, at + 40) + (end - icmpAt) + 58 + sum16(icmpAt, end)) === 0xffff;
}

/** A seeded generator (xorshift32), so a failure names its packet. */
function rng(seed: number): () => number {
  let x = seed | 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

/** Writes an IPv4 or IPv6 ICMP packet of `payload` bytes at `at`, its checksum right or one bit off. */
function packet(
  bytes: Uint8Array,
  at: number,
  family: 4 | 6,
  payload: number,
  right: boolean,
  r: () => number,
) {
  const header = family === 4 ? 20 : 40;
  const icmp = at + header;
  for (let i = at; i < icmp + payload; i++) bytes[i] = Math.floor(r() * 256);
  const total = header + payload;
  if (family === 4) {
    bytes[at] = 0x45;
    bytes[at + 2] = total >>> 8;
    bytes[at + 3] = total & 0xff;
  } else {
    bytes[at] = 0x60;
    bytes[at + 4] = payload >>> 8;
    bytes[at + 5] = payload & 0xff;
    bytes[at + 6] = 58;
  }
  bytes[icmp + 2] = 0;
  bytes[icmp + 3] = 0;
  let sum = family === 6 ? payload + 58 : 0;
  if (family === 6) for (let i = at + 8; i < at + 40; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  for (let i = icmp; i < icmp + payload; i += 2)
    sum += (bytes[i]! << 8) | (i + 1 < icmp + payload ? bytes[i + 1]! : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  const check = ~sum & 0xffff;
  bytes[icmp + 2] = check >>> 8;
  bytes[icmp + 3] = check & 0xff;
  if (!right) bytes[icmp + 4 + Math.floor(r() * (payload - 4))]! ^= 1 << Math.floor(r() * 8);
  return total;
}

describe('ICMP checksum', () => {
  it('judges packets of every length and alignment as RFC 1071 a byte pair at a time does', () => {
    const r = rng(7);
    const buffer = new ArrayBuffer(4096);
    let wrong = 0;
    let checked = 0;
    for (let n = 0; n < 20_000; n++) {
      // Views at any offset of the buffer (a batch's records are 8-byte aligned, a slice of one need not be).
      const shift = Math.floor(r() * 8);
      const bytes = new Uint8Array(buffer, shift);
      const at = Math.floor(r() * 64);
      const family = r() < 0.5 ? 4 : 6;
      const payload = 8 + Math.floor(r() * 1200);
      const right = r() < 0.5;
      const total = packet(bytes, at, family, payload, right, r);
      // Captured whole, cut by a snap length, or with padding after the datagram.
      const x = r();
      const length = x < 0.6 ? total : x < 0.8 ? Math.floor(total * r()) : total + Math.floor(r() * 16);
      const got = icmpChecksumOk(bytes, at, length, family);
      expect(got, `packet ${n}: family ${family}, ${payload} bytes at ${shift}+${at}, length ${length}`).toBe(
        referenceOk(bytes, at, length, family),
      );
      if (length >= total) {
        checked++;
        if (!got) wrong++;
        expect(got).toBe(right);
      }
    }
    // Both answers came up often (a check that always says "right" would fail above).
    expect(checked).toBeGreaterThan(10_000);
    expect(wrong).toBeGreaterThan(4_000);
  });
});
