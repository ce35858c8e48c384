/**
 * The ND fields that neighbour health reads, parsed from a record's bytes (records start at the IP header).
 *
 * The field extractor (electron/core/fields/extract.ts) builds every field of a packet: about 40 values,
 * address text and copies, some 6 KB of garbage per message. Neighbour health needs a dozen of them on
 * every ND message it sees, so this reads just those, by the extractor's rules: the same extension headers,
 * bounds and option checks, and the same values (`nd.test.ts` holds the two equal over generated and
 * corrupted messages). Byte values are views into the record's data, not copies.
 */

export interface NdPrefix {
  prefix: Uint8Array;
  length: number;
}

export interface NdFields {
  /** `icmpv6.opt.src_linkaddr`, `icmpv6.opt.target_linkaddr`: the first of each (6 bytes). */
  srcLinkaddr: Uint8Array | null;
  targetLinkaddr: Uint8Array | null;
  /** `icmpv6.opt.prefix` with its `icmpv6.opt.prefix.length`, in option order. */
  prefixes: NdPrefix[];
  /** `icmpv6.opt.mtu`: the first. */
  mtu: number | null;
  /** `icmpv6.opt.rdnss`: every address of every RDNSS option. */
  rdnss: Uint8Array[];
  /** Router advertisement: `icmpv6.nd.ra.flag.m`, `.o`, `icmpv6.nd.ra.router_lifetime` (null: not an RA). */
  managed: boolean;
  other: boolean;
  routerLifetime: number | null;
  /** `icmpv6.nd.ns.target_address`, `icmpv6.nd.na.target_address` (16 bytes). */
  nsTarget: Uint8Array | null;
  naTarget: Uint8Array | null;
  /** `icmpv6.nd.na.flag.r`, `icmpv6.nd.na.flag.o`. */
  naRouter: boolean;
  naOverride: boolean;
}

function emptyFields(): NdFields {
  return {
    srcLinkaddr: null,
    targetLinkaddr: null,
    prefixes: [],
    mtu: null,
    rdnss: [],
    managed: false,
    other: false,
    routerLifetime: null,
    nsTarget: null,
    naTarget: null,
    naRouter: false,
    naOverride: false,
  };
}

function u16(b: Uint8Array, at: number): number {
  return ((b[at] ?? 0) << 8) | (b[at + 1] ?? 0);
}

function u32(b: Uint8Array, at: number): number {
  return (((b[at] ?? 0) << 24) | ((b[at + 1] ?? 0) << 16) | ((b[at + 2] ?? 0) << 8) | (b[at + 3] ?? 0)) >>> 0;
}

/**
 * The ND fields of one packet (IPv6 header first). A packet that is not ICMPv6, is cut short or is a later
 * fragment gives the fields it has (none at all: every field empty), as the extractor does.
 */
export function ndFields(b: Uint8Array): NdFields {
  const out = emptyFields();
  const has = (at: number, n: number): boolean => at >= 0 && at + n <= b.length;
  if (!has(0, 40) || b[0]! >> 4 !== 6) return out;
  // Extension headers up to the upper layer (hop-by-hop, routing, destination options, fragment).
  let next = b[6]!;
  let p = 40;
  let firstFragment = true;
  for (let hops = 0; hops < 16; hops++) {
    if (next === 0 || next === 43 || next === 60) {
      if (!has(p, 2)) break;
      next = b[p]!;
      p += (b[p + 1]! + 1) * 8;
    } else if (next === 44) {
      if (!has(p, 8)) break;
      firstFragment = u16(b, p + 2) >> 3 === 0;
      next = b[p]!;
      p += 8;
    } else break;
  }
  const at = p;
  if (next !== 58 || !firstFragment || !has(at, 4)) return out;
  const end = Math.min(40 + u16(b, 4), b.length);
  const type = b[at]!;
  if (type === 134 && has(at, 16)) {
    const fl = b[at + 5]!;
    out.managed = (fl & 0x80) !== 0;
    out.other = (fl & 0x40) !== 0;
    out.routerLifetime = u16(b, at + 6);
    options(b, at + 16, end, out);
  } else if (type === 133) {
    options(b, at + 8, end, out);
  } else if (type === 135 && has(at, 24)) {
    out.nsTarget = b.subarray(at + 8, at + 24);
    options(b, at + 24, end, out);
  } else if (type === 136 && has(at, 24)) {
    const fl = u32(b, at + 4);
    out.naRouter = (fl & 0x80000000) !== 0;
    out.naOverride = (fl & 0x20000000) !== 0;
    out.naTarget = b.subarray(at + 8, at + 24);
    options(b, at + 24, end, out);
  } else if (type === 137 && has(at, 40)) {
    options(b, at + 40, end, out);
  }
  return out;
}

/** ND options (RFC 4861 section 4.6, RFC 8106 RDNSS), by the extractor's `dissectNdOptions` rules. */
function options(b: Uint8Array, at: number, end: number, out: NdFields): void {
  const has = (x: number, n: number): boolean => x >= 0 && x + n <= b.length;
  let p = at;
  while (p + 2 <= end && has(p, 2)) {
    const type = b[p]!;
    const units = b[p + 1]!;
    if (units === 0) break;
    const len = units * 8;
    if ((type === 1 || type === 2) && len >= 8 && has(p + 2, 6)) {
      const mac = b.subarray(p + 2, p + 8);
      if (type === 1) out.srcLinkaddr ??= mac;
      else out.targetLinkaddr ??= mac;
    } else if (type === 3 && len >= 32 && has(p, 32)) {
      out.prefixes.push({ prefix: b.subarray(p + 16, p + 32), length: b[p + 2]! });
    } else if (type === 5 && len >= 8 && has(p, 8)) {
      out.mtu ??= u32(b, p + 4);
    } else if (type === 25 && len >= 24 && has(p, len)) {
      for (let a = p + 8; a + 16 <= p + len; a += 16) out.rdnss.push(b.subarray(a, a + 16));
    }
    p += len;
  }
}
