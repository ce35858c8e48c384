/** Address text parsing for filters: IPv4 dotted quads, IPv6 (RFC 4291 text forms), CIDR prefixes. */

/** Parses `a.b.c.d` to an unsigned 32-bit number, or null. */
export function parseIpv4(text: string): number | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let value = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    value = value * 256 + n;
  }
  return value;
}

/** Parses an IPv6 address (with `::` and an optional dotted IPv4 tail) to 16 bytes, or null. */
export function parseIpv6(text: string): Uint8Array | null {
  if (text.length < 2 || !/^[0-9A-Fa-f:.]+$/.test(text)) return null;
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const groups = (part: string): number[] | null => {
    if (part === '') return [];
    const out: number[] = [];
    const items = part.split(':');
    for (let k = 0; k < items.length; k++) {
      const item = items[k]!;
      if (k === items.length - 1 && item.includes('.')) {
        const v4 = parseIpv4(item);
        if (v4 === null) return null;
        out.push(Math.floor(v4 / 65536), v4 % 65536);
      } else {
        if (!/^[0-9A-Fa-f]{1,4}$/.test(item)) return null;
        out.push(parseInt(item, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (head === null || tail === null) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const all = [...head, ...new Array<number>(missing).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  all.forEach((g, k) => {
    bytes[2 * k] = g >> 8;
    bytes[2 * k + 1] = g & 0xff;
  });
  return bytes;
}

/** One address or prefix of a filter term, for one family. */
export interface AddressTerm {
  family: 4 | 6;
  /** The 4 or 16 address bytes. */
  bytes: Uint8Array;
  prefix: number;
}

function v4Bytes(v: number): Uint8Array {
  return new Uint8Array([v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]);
}

/** Parses `addr` or `addr/len`; null when the text is not an address of either family. */
export function parseAddressTerm(text: string): AddressTerm | { error: string } | null {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const v4 = parseIpv4(addr);
  const v6 = v4 === null ? parseIpv6(addr) : null;
  if (v4 === null && v6 === null) return null;
  const family = v4 !== null ? 4 : 6;
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) {
      return { error: `bad prefix length '/${p}': an IPv${family} prefix is /0 to /${max}` };
    }
    prefix = Number(p);
  }
  return { family, bytes: v4 !== null ? v4Bytes(v4) : v6!, prefix };
}

export function termMatches(term: AddressTerm, bytes: Uint8Array): boolean {
  const full = term.prefix >>> 3;
  for (let k = 0; k < full; k++) if (bytes[k] !== term.bytes[k]) return false;
  const rest = term.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((bytes[full]! ^ term.bytes[full]!) & mask) === 0;
}

/** The bytes of an address as AddressTable formats it (record.ts `formatAddress`). */
export function addressBytes(text: string, family: number): Uint8Array | null {
  if (family === 4) {
    const v = parseIpv4(text);
    return v === null ? null : v4Bytes(v);
  }
  return parseIpv6(text);
}
