/**
 * The one-line summary of a packet, as Wireshark's Info column: "Echo (ping) request id=0x1281,
 * seq=1/256, ttl=64 (reply in 70)", "Port unreachable for UDP 10.0.0.2:40000 → 198.51.100.7:33434",
 * "Fragment off=1480 id=0x6c6d". Reads the captured bytes (from the IP header on) and the row's
 * matching (reply in / request in / no response found). Plain data in, text out: no Node, no DOM.
 */
import { formatAddress } from './address.js';
import { codeLabel, typeLabel } from './icmp.js';

export interface InfoInput {
  family: 4 | 6;
  type: number;
  code: number;
  ttl: number;
  replyIn?: number;
  requestIn?: number;
  noResponse?: true;
}

const PROTO: Readonly<Record<number, string>> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6', 132: 'SCTP' };
const hex = (n: number, width: number) => `0x${n.toString(16).padStart(width, '0')}`;

interface IpView {
  family: 4 | 6;
  proto: number;
  /** Offset of the payload (the transport header) in the bytes. */
  payload: number;
  src: string;
  dst: string;
  /** Fragment offset in bytes, and whether more fragments follow; id as on the wire. */
  fragOffset: number;
  moreFragments: boolean;
  fragId: number | null;
}

/** The IP header (and IPv6 extension headers) at `at`, or null when too few bytes were captured. */
function ipAt(b: Uint8Array, at: number): IpView | null {
  if (b.length < at + 1) return null;
  const version = b[at]! >> 4;
  if (version === 4) {
    const ihl = (b[at]! & 15) * 4;
    if (b.length < at + 20) return null;
    const frag = (b[at + 6]! << 8) | b[at + 7]!;
    return {
      family: 4,
      proto: b[at + 9]!,
      payload: at + ihl,
      src: formatAddress(b.subarray(at + 12, at + 16), 4),
      dst: formatAddress(b.subarray(at + 16, at + 20), 4),
      fragOffset: (frag & 0x1fff) * 8,
      moreFragments: (frag & 0x2000) !== 0,
      fragId: frag & 0x3fff ? (b[at + 4]! << 8) | b[at + 5]! : null,
    };
  }
  if (version !== 6 || b.length < at + 40) return null;
  const ip: IpView = {
    family: 6,
    proto: b[at + 6]!,
    payload: at + 40,
    src: formatAddress(b.subarray(at + 8, at + 24), 6),
    dst: formatAddress(b.subarray(at + 24, at + 40), 6),
    fragOffset: 0,
    moreFragments: false,
    fragId: null,
  };
  // Hop-by-hop, routing, destination options, fragment: walk to the upper layer.
  for (let hops = 0; hops < 8 && [0, 43, 44, 60].includes(ip.proto); hops++) {
    const o = ip.payload;
    if (b.length < o + 8) return ip;
    if (ip.proto === 44) {
      const off = (b[o + 2]! << 8) | b[o + 3]!;
      ip.fragOffset = off & 0xfff8;
      ip.moreFragments = (off & 1) !== 0;
      ip.fragId = ((b[o + 4]! << 24) | (b[o + 5]! << 16) | (b[o + 6]! << 8) | b[o + 7]!) >>> 0;
      ip.proto = b[o]!;
      ip.payload = o + 8;
    } else {
      ip.proto = b[o]!;
      ip.payload = o + (b[o + 1]! + 1) * 8;
    }
  }
  return ip;
}

/** What an ICMP error quotes: "UDP 10.0.0.2:40000 → 198.51.100.7:33434" (as much as was captured). */
function quoted(b: Uint8Array, at: number): string | null {
  const ip = ipAt(b, at);
  if (!ip) return null;
  const name = PROTO[ip.proto] ?? `protocol ${ip.proto}`;
  const p = ip.payload;
  if ((ip.proto === 6 || ip.proto === 17 || ip.proto === 132) && ip.fragOffset === 0 && b.length >= p + 4) {
    const sport = (b[p]! << 8) | b[p + 1]!;
    const dport = (b[p + 2]! << 8) | b[p + 3]!;
    const host = (a: string, port: number) => (ip.family === 6 ? `[${a}]:${port}` : `${a}:${port}`);
    return `${name} ${host(ip.src, sport)} → ${host(ip.dst, dport)}`;
  }
  if ((ip.proto === 1 || ip.proto === 58) && ip.fragOffset === 0 && b.length >= p + 8) {
    const t = b[p]!;
    const echo = ip.proto === 1 ? t === 8 : t === 128;
    const what = echo ? 'echo request' : typeLabel(ip.family, t).toLowerCase();
    const idSeq = echo
      ? ` id=${hex((b[p + 4]! << 8) | b[p + 5]!, 4)}, seq=${(b[p + 6]! << 8) | b[p + 7]!}`
      : '';
    return `${name} ${what} ${ip.src} → ${ip.dst}${idSeq}`;
  }
  return `${name} ${ip.src} → ${ip.dst}`;
}

function isError(family: 4 | 6, type: number): boolean {
  return family === 4 ? [3, 4, 5, 11, 12].includes(type) : type >= 1 && type <= 4;
}

export function packetInfo(bytes: Uint8Array, row: InfoInput): string {
  const ip = ipAt(bytes, 0);
  if (ip && ip.fragOffset > 0) {
    return `Fragment off=${ip.fragOffset} id=${hex(ip.fragId ?? 0, ip.family === 6 ? 8 : 4)}${ip.moreFragments ? ', more follow' : ''}`;
  }
  const frag =
    ip && ip.moreFragments ? ` [first fragment, id=${hex(ip.fragId ?? 0, ip.family === 6 ? 8 : 4)}]` : '';
  const p = ip?.payload ?? 0;
  const echoReq = row.family === 4 ? row.type === 8 : row.type === 128;
  const echoRep = row.family === 4 ? row.type === 0 : row.type === 129;
  if ((echoReq || echoRep) && bytes.length >= p + 8) {
    const id = (bytes[p + 4]! << 8) | bytes[p + 5]!;
    const seq = (bytes[p + 6]! << 8) | bytes[p + 7]!;
    // Wireshark shows the sequence number both ways round (big/little endian).
    const seqLe = ((seq & 0xff) << 8) | (seq >> 8);
    const ttl = row.family === 4 ? `ttl=${row.ttl}` : `hop limit=${row.ttl}`;
    const link = echoReq
      ? row.replyIn !== undefined
        ? ` (reply in ${row.replyIn})`
        : row.noResponse
          ? ' (no response found!)'
          : ''
      : row.requestIn !== undefined
        ? ` (request in ${row.requestIn})`
        : '';
    return `Echo (ping) ${echoReq ? 'request' : 'reply'} id=${hex(id, 4)}, seq=${seq}/${seqLe}, ${ttl}${link}${frag}`;
  }
  if (isError(row.family, row.type)) {
    const label = codeLabel(row.family, row.type, row.code);
    const what = /^\d+$/.test(label) ? typeLabel(row.family, row.type) : label;
    const inner = bytes.length > p + 8 ? quoted(bytes, p + 8) : null;
    const mtu =
      row.family === 6 && row.type === 2 && bytes.length >= p + 8
        ? `, MTU ${((bytes[p + 4]! << 24) | (bytes[p + 5]! << 16) | (bytes[p + 6]! << 8) | bytes[p + 7]!) >>> 0}`
        : row.family === 4 && row.type === 3 && row.code === 4 && bytes.length >= p + 8
          ? `, next-hop MTU ${(bytes[p + 6]! << 8) | bytes[p + 7]!}`
          : '';
    return `${what}${mtu}${inner ? ` for ${inner}` : ''}${frag}`;
  }
  const code = codeLabel(row.family, row.type, row.code);
  const type = typeLabel(row.family, row.type);
  return `${type}${/^\d+$/.test(code) && code === '0' ? '' : ` (${code})`}${frag}`;
}
