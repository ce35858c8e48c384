/**
 * Test support: capture files of every ICMP and ICMPv6 message kind, built byte by byte, for comparing
 * our fields, filters and statistics with tshark's on the same bytes. Raw-IP pcap (LINKTYPE_RAW), ns
 * timestamps. Deterministic for a given seed.
 */
import fs from 'node:fs';
import { formatIpv6 } from '../../../common/address.js';
import type { DecodedRecord } from '../../record.js';

export interface Packet {
  tsNs: bigint;
  data: Uint8Array;
}

function sum16(b: Uint8Array, start: number, end: number, initial = 0): number {
  let s = initial;
  for (let i = start; i < end; i += 2) s += (b[i]! << 8) | (i + 1 < end ? b[i + 1]! : 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

const put16 = (b: Uint8Array, at: number, v: number): void => {
  b[at] = (v >> 8) & 255;
  b[at + 1] = v & 255;
};
const put32 = (b: Uint8Array, at: number, v: number): void => {
  put16(b, at, v >>> 16);
  put16(b, at + 2, v & 0xffff);
};

export function v4(text: string): number[] {
  return text.split('.').map(Number);
}

export function v6(text: string): number[] {
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t].map((g) =>
    parseInt(g, 16),
  );
  return groups.flatMap((g) => [g >> 8, g & 255]);
}

export interface V4Options {
  src: string;
  dst: string;
  ttl?: number;
  tos?: number;
  id?: number;
  /** flags << 13 | offset/8 */
  flagsOffset?: number;
  proto?: number;
  /** Total length to declare (default: the real length). */
  totalLength?: number;
}

export function ipv4(o: V4Options, payload: Uint8Array): Uint8Array {
  const p = new Uint8Array(20 + payload.length);
  p[0] = 0x45;
  p[1] = o.tos ?? 0;
  put16(p, 2, o.totalLength ?? p.length);
  put16(p, 4, o.id ?? 0x1c46);
  put16(p, 6, o.flagsOffset ?? 0x4000);
  p[8] = o.ttl ?? 64;
  p[9] = o.proto ?? 1;
  p.set(v4(o.src), 12);
  p.set(v4(o.dst), 16);
  put16(p, 10, ~sum16(p, 0, 20) & 0xffff);
  p.set(payload, 20);
  return p;
}

export interface V6Options {
  src: string;
  dst: string;
  hlim?: number;
  tclass?: number;
  flow?: number;
  /** Extension headers before the upper layer: [type, bytes]. */
  ext?: [number, number[]][];
  nxt?: number;
}

export function ipv6(o: V6Options, payload: Uint8Array, upper = 58): Uint8Array {
  const ext = o.ext ?? [];
  const extLen = ext.reduce((n, [, b]) => n + b.length, 0);
  const p = new Uint8Array(40 + extLen + payload.length);
  put32(p, 0, ((6 << 28) | ((o.tclass ?? 0) << 20) | (o.flow ?? 0)) >>> 0);
  put16(p, 4, extLen + payload.length);
  p[6] = ext[0]?.[0] ?? o.nxt ?? upper;
  p[7] = o.hlim ?? 64;
  p.set(v6(o.src), 8);
  p.set(v6(o.dst), 24);
  let at = 40;
  ext.forEach(([, b], i) => {
    p.set(b, at);
    p[at] = ext[i + 1]?.[0] ?? o.nxt ?? upper;
    at += b.length;
  });
  p.set(payload, at);
  return p;
}

/** ICMP message with a correct checksum (v6: over the pseudo header of src/dst). */
export function icmp(
  type: number,
  code: number,
  rest: number[] | Uint8Array,
  body: Uint8Array,
  v6addr?: { src: string; dst: string },
): Uint8Array {
  const m = new Uint8Array(8 + body.length);
  m[0] = type;
  m[1] = code;
  m.set(Array.from(rest).slice(0, 4), 4);
  m.set(body, 8);
  let initial = 0;
  if (v6addr) {
    const ph = new Uint8Array(40);
    ph.set(v6(v6addr.src), 0);
    ph.set(v6(v6addr.dst), 16);
    put32(ph, 32, m.length);
    ph[39] = 58;
    initial = sum16(ph, 0, 40);
  }
  put16(m, 2, ~sum16(m, 0, m.length, initial) & 0xffff);
  return m;
}

export function payload(n: number, seed = 0x10): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (seed + i) & 255);
}

const idSeq = (id: number, seq: number): number[] => [id >> 8, id & 255, seq >> 8, seq & 255];

export function echo4(
  src: string,
  dst: string,
  type: 0 | 8,
  id: number,
  seq: number,
  o: Partial<V4Options> = {},
  size = 56,
): Uint8Array {
  return ipv4({ src, dst, ...o }, icmp(type, 0, idSeq(id, seq), payload(size)));
}

export function echo6(
  src: string,
  dst: string,
  type: 128 | 129,
  id: number,
  seq: number,
  o: Partial<V6Options> = {},
  size = 56,
): Uint8Array {
  return ipv6({ src, dst, ...o }, icmp(type, 0, idSeq(id, seq), payload(size), { src, dst }));
}

export function udp4(src: string, dst: string, sport: number, dport: number, ttl = 1): Uint8Array {
  const u = new Uint8Array(8 + 32);
  put16(u, 0, sport);
  put16(u, 2, dport);
  put16(u, 4, u.length);
  u.set(payload(32, 0x40), 8);
  return ipv4({ src, dst, ttl, proto: 17, flagsOffset: 0 }, u);
}

export function tcp4(src: string, dst: string, sport: number, dport: number): Uint8Array {
  const t = new Uint8Array(20);
  put16(t, 0, sport);
  put16(t, 2, dport);
  put32(t, 4, 0x11223344);
  t[12] = 0x50;
  t[13] = 0x02;
  put16(t, 14, 64240);
  return ipv4({ src, dst, proto: 6 }, t);
}

/** An ICMPv4 error from `router` quoting the first 28 bytes (or `quoteLen`) of `quoted`. */
export function error4(
  router: string,
  type: number,
  code: number,
  quoted: Uint8Array,
  rest: number[] = [0, 0, 0, 0],
  quoteLen = 28,
  o: Partial<V4Options> = {},
): Uint8Array {
  const inner = quoted.subarray(0, Math.min(quoteLen, quoted.length));
  const dst = `${quoted[12]}.${quoted[13]}.${quoted[14]}.${quoted[15]}`;
  return ipv4({ src: router, dst, flagsOffset: 0, ttl: 254, ...o }, icmp(type, code, rest, inner));
}

function v6text(b: Uint8Array, at: number): string {
  const g: string[] = [];
  for (let i = 0; i < 16; i += 2) g.push(((b[at + i]! << 8) | b[at + i + 1]!).toString(16));
  return g.join(':');
}

export function error6(
  router: string,
  type: number,
  code: number,
  quoted: Uint8Array,
  rest: number[] = [0, 0, 0, 0],
  quoteLen = 1232,
): Uint8Array {
  const inner = quoted.subarray(0, Math.min(quoteLen, quoted.length));
  const dst = v6text(quoted, 8);
  return ipv6({ src: router, dst, hlim: 255 }, icmp(type, code, rest, inner, { src: router, dst }));
}

export function udp6(src: string, dst: string, sport: number, dport: number): Uint8Array {
  const u = new Uint8Array(8 + 24);
  put16(u, 0, sport);
  put16(u, 2, dport);
  put16(u, 4, u.length);
  return ipv6({ src, dst, hlim: 1 }, u, 17);
}

/** Writes a raw-IP pcap with ns timestamps. */
export function writePcap(path: string, packets: readonly Packet[]): void {
  const total = 24 + packets.reduce((n, p) => n + 16 + p.data.length, 0);
  const buf = Buffer.alloc(total);
  buf.writeUInt32LE(0xa1b23c4d, 0);
  buf.writeUInt16LE(2, 4);
  buf.writeUInt16LE(4, 6);
  buf.writeUInt32LE(262144, 16);
  buf.writeUInt32LE(101, 20);
  let at = 24;
  for (const p of packets) {
    buf.writeUInt32LE(Number(p.tsNs / 1_000_000_000n), at);
    buf.writeUInt32LE(Number(p.tsNs % 1_000_000_000n), at + 4);
    buf.writeUInt32LE(p.data.length, at + 8);
    buf.writeUInt32LE(p.data.length, at + 12);
    Buffer.from(p.data.buffer, p.data.byteOffset, p.data.length).copy(buf, at + 16);
    at += 16 + p.data.length;
  }
  fs.writeFileSync(path, buf);
}

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Every ICMP/ICMPv6 message kind we know of, errors quoting UDP/TCP/ICMP, fragments, RFC 4884
 * extensions, ND with options, echo in both byte orders (Linux: BE ident; Windows: LE), broadcast
 * and multicast echo with several responders, lost, late and duplicate replies.
 */
export function everyKind(seed = 1, start = 1_700_000_000_000_000_000n): Packet[] {
  const rnd = prng(seed);
  const out: Packet[] = [];
  let t = start;
  const push = (data: Uint8Array, gapNs = 1_000_000n): void => {
    t += gapNs;
    out.push({ tsNs: t, data });
  };
  const rttNs = (): bigint => BigInt(Math.floor(200_000 + rnd() * 40_000_000));
  // Echo: Linux-style (BE) and Windows-style (ident 1, seq in LE) exchanges, some lost.
  const peers4 = ['10.1.0.5', '8.8.8.8', '192.168.1.1', '172.16.3.4', '100.64.0.1'];
  for (let k = 0; k < 40; k++) {
    const peer = peers4[k % peers4.length]!;
    const windows = k % 5 === 3;
    const id = windows ? 1 : 0x1234 + (k % 3);
    const seq = windows ? ((k & 255) << 8) | (k >> 8) : k;
    push(
      echo4(
        '10.0.0.2',
        peer,
        8,
        id,
        seq,
        { ttl: 64, id: 0x100 + k, tos: k % 7 === 0 ? 0xb8 : 0 },
        8 + (k % 4) * 20,
      ),
    );
    if (k % 9 === 4) continue; // lost
    push(
      echo4(peer, '10.0.0.2', 0, id, seq, { ttl: 50 + (k % 10), id: 0x900 + k }, 8 + (k % 4) * 20),
      rttNs(),
    );
    if (k % 13 === 6)
      push(echo4(peer, '10.0.0.2', 0, id, seq, { ttl: 50, id: 0x990 + k }, 8 + (k % 4) * 20), 300_000n);
  }
  // A late reply (3 s after its request) and an unanswered one at the end of the exchange.
  push(echo4('10.0.0.2', '9.9.9.9', 8, 0x77, 1));
  push(echo4('9.9.9.9', '10.0.0.2', 0, 0x77, 1), 3_000_000_000n);
  // Broadcast echo answered by three hosts.
  push(echo4('10.0.0.2', '10.0.0.255', 8, 0x55, 1, { flagsOffset: 0 }));
  for (const r of ['10.0.0.7', '10.0.0.8', '10.0.0.9']) push(echo4(r, '10.0.0.2', 0, 0x55, 1), 150_000n);
  // Errors quoting UDP (traceroute), TCP, ICMP.
  const probe = udp4('10.0.0.2', '198.51.100.7', 40000, 33434);
  push(error4('10.0.0.1', 11, 0, probe));
  push(error4('203.0.113.9', 3, 3, udp4('10.0.0.2', '198.51.100.7', 40001, 33435)));
  push(error4('203.0.113.9', 3, 13, tcp4('10.0.0.2', '198.51.100.7', 50000, 443)));
  push(error4('203.0.113.1', 3, 4, tcp4('10.0.0.2', '198.51.100.8', 50001, 443), [0, 0, 0x05, 0xdc]));
  push(error4('203.0.113.1', 11, 0, echo4('10.0.0.2', '198.51.100.7', 8, 0x1234, 99, { ttl: 1 })));
  push(error4('10.0.0.1', 12, 0, udp4('10.0.0.2', '198.51.100.9', 40002, 53), [20, 0, 0, 0]));
  push(error4('10.0.0.1', 5, 1, echo4('10.0.0.2', '198.51.100.10', 8, 0x42, 1), v4('10.0.0.254')));
  push(error4('10.0.0.1', 4, 0, udp4('10.0.0.2', '198.51.100.11', 40003, 9)));
  for (let code = 0; code < 16; code++) {
    if (code === 4) continue;
    push(error4('203.0.113.2', 3, code, udp4('10.0.0.2', `198.51.100.${20 + code}`, 41000 + code, 33434)));
  }
  // RFC 4884: time exceeded with a 128-byte original datagram field and an MPLS extension object.
  {
    const orig = udp4('10.0.0.2', '198.51.100.30', 40010, 33440);
    const quoted = new Uint8Array(128);
    quoted.set(orig.subarray(0, Math.min(128, orig.length)));
    const ext = new Uint8Array(4 + 8);
    ext[0] = 0x20;
    put16(ext, 4, 8);
    ext[6] = 1;
    ext[7] = 1;
    put32(ext, 8, (16000 << 12) | (1 << 8) | 1);
    put16(ext, 2, ~sum16(ext, 0, ext.length) & 0xffff);
    const body = new Uint8Array(128 + ext.length);
    body.set(quoted);
    body.set(ext, 128);
    push(ipv4({ src: '203.0.113.3', dst: '10.0.0.2', flagsOffset: 0 }, icmp(11, 0, [0, 32, 0, 0], body)));
  }
  // Other ICMPv4 types.
  push(ipv4({ src: '10.0.0.2', dst: '10.0.0.1' }, icmp(13, 0, idSeq(7, 1), new Uint8Array(12))));
  push(ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }, icmp(14, 0, idSeq(7, 1), new Uint8Array(12))));
  push(ipv4({ src: '10.0.0.2', dst: '10.0.0.1' }, icmp(17, 0, idSeq(8, 1), new Uint8Array(4))));
  push(ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }, icmp(18, 0, idSeq(8, 1), v4ToBytes('255.255.255.0'))));
  push(
    ipv4(
      { src: '10.0.0.1', dst: '224.0.0.1', ttl: 1 },
      icmp(9, 0, [1, 2, 0x07, 0x08], Uint8Array.from([...v4('10.0.0.1'), 0, 0, 0, 0])),
    ),
  );
  push(ipv4({ src: '10.0.0.2', dst: '224.0.0.2', ttl: 1 }, icmp(10, 0, [0, 0, 0, 0], new Uint8Array(0))));
  push(ipv4({ src: '10.0.0.2', dst: '10.0.0.1' }, icmp(60, 0, [0, 0, 0, 0], payload(8))));
  // Fragmented echo request: first fragment (MF) and the rest.
  {
    const whole = icmp(8, 0, idSeq(0x4444, 1), payload(1600));
    push(
      ipv4(
        { src: '10.0.0.2', dst: '10.1.0.5', id: 0xabcd, flagsOffset: 0x2000, totalLength: 20 + 1480 },
        whole.subarray(0, 1480),
      ),
    );
    push(
      ipv4({ src: '10.0.0.2', dst: '10.1.0.5', id: 0xabcd, flagsOffset: 1480 / 8 }, whole.subarray(1480)),
      10_000n,
    );
  }
  // ICMPv6 echo, with a hop-by-hop header on some.
  const peers6 = ['2001:db8::1', '2001:db8:1::5', 'fe80::1'];
  for (let k = 0; k < 24; k++) {
    const peer = peers6[k % peers6.length]!;
    const ext: [number, number[]][] = k % 6 === 5 ? [[0, [0, 0, 1, 4, 0, 0, 0, 0]]] : [];
    push(
      echo6(
        '2001:db8::2',
        peer,
        128,
        0x4321,
        k,
        { ext, flow: k * 0x1111, tclass: k % 4 === 0 ? 0xb8 : 0 },
        8 + (k % 3) * 24,
      ),
    );
    if (k % 7 === 3) continue;
    push(echo6(peer, '2001:db8::2', 129, 0x4321, k, { hlim: 60 }, 8 + (k % 3) * 24), rttNs());
  }
  // Multicast echo (ping ff02::1) answered by two hosts.
  push(echo6('fe80::2', 'ff02::1', 128, 0x99, 1, { hlim: 1 }));
  for (const r of ['fe80::a', 'fe80::b']) push(echo6(r, 'fe80::2', 129, 0x99, 1), 200_000n);
  // ICMPv6 errors.
  push(error6('2001:db8:ff::1', 1, 4, udp6('2001:db8::2', '2001:db8:9::9', 40000, 33434)));
  push(error6('2001:db8:ff::1', 1, 0, echo6('2001:db8::2', '2001:db8:9::7', 128, 1, 2)));
  push(
    error6(
      '2001:db8:ff::2',
      2,
      0,
      echo6('2001:db8::2', '2001:db8:9::8', 128, 1, 3, {}, 1400),
      [0, 0, 0x05, 0x00],
      1232,
    ),
  );
  push(error6('2001:db8:ff::3', 3, 0, udp6('2001:db8::2', '2001:db8:9::9', 40001, 33435)));
  push(error6('2001:db8:ff::4', 4, 1, udp6('2001:db8::2', '2001:db8:9::a', 40002, 53), [0, 0, 0, 40]));
  // ND: RS, RA with options, NS, NA, redirect.
  const sll = [1, 1, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
  push(
    ipv6(
      { src: 'fe80::2', dst: 'ff02::2', hlim: 255 },
      icmp(133, 0, [0, 0, 0, 0], Uint8Array.from(sll), { src: 'fe80::2', dst: 'ff02::2' }),
    ),
  );
  {
    const prefix = new Uint8Array(32);
    prefix[0] = 3;
    prefix[1] = 4;
    prefix[2] = 64;
    prefix[3] = 0xc0;
    put32(prefix, 4, 2592000);
    put32(prefix, 8, 604800);
    prefix.set(v6('2001:db8:5::'), 16);
    const mtu = [5, 1, 0, 0, 0, 0, 0x05, 0xdc];
    const body = new Uint8Array(8 + 32 + 8 + 8);
    put32(body, 0, 30000);
    put32(body, 4, 1000);
    body.set(prefix, 8);
    body.set(mtu, 40);
    body.set([1, 1, 0x02, 0, 0, 0, 0, 0x01], 48);
    push(
      ipv6(
        { src: 'fe80::1', dst: 'ff02::1', hlim: 255 },
        icmp(134, 0, [64, 0xc0, 0x07, 0x08], body, { src: 'fe80::1', dst: 'ff02::1' }),
      ),
    );
  }
  {
    const body = Uint8Array.from([...v6('2001:db8::1'), ...sll]);
    push(
      ipv6(
        { src: '2001:db8::2', dst: 'ff02::1:ff00:1', hlim: 255 },
        icmp(135, 0, [0, 0, 0, 0], body, { src: '2001:db8::2', dst: 'ff02::1:ff00:1' }),
      ),
    );
    const na = Uint8Array.from([...v6('2001:db8::1'), 2, 1, 0x02, 0, 0, 0, 0, 0x01]);
    push(
      ipv6(
        { src: '2001:db8::1', dst: '2001:db8::2', hlim: 255 },
        icmp(136, 0, [0x60, 0, 0, 0], na, { src: '2001:db8::1', dst: '2001:db8::2' }),
      ),
    );
    const rd = Uint8Array.from([...v6('fe80::9'), ...v6('2001:db8:7::1')]);
    push(
      ipv6(
        { src: 'fe80::1', dst: '2001:db8::2', hlim: 255 },
        icmp(137, 0, [0, 0, 0, 0], rd, { src: 'fe80::1', dst: '2001:db8::2' }),
      ),
    );
  }
  // MLD and an unknown type.
  push(
    ipv6(
      { src: 'fe80::2', dst: 'ff02::16', hlim: 1, ext: [[0, [0, 0, 5, 2, 0, 0, 1, 0]]] },
      icmp(143, 0, [0, 0, 0, 0], new Uint8Array(0), { src: 'fe80::2', dst: 'ff02::16' }),
    ),
  );
  push(
    ipv6(
      { src: 'fe80::2', dst: 'ff02::1', hlim: 1 },
      icmp(130, 0, [0x03, 0xe8, 0, 0], new Uint8Array(16), { src: 'fe80::2', dst: 'ff02::1' }),
    ),
  );
  push(
    ipv6(
      { src: '2001:db8::2', dst: '2001:db8::1' },
      icmp(200, 1, [0, 0, 0, 0], payload(8), { src: '2001:db8::2', dst: '2001:db8::1' }),
    ),
  );
  // Fragmented ICMPv6 echo: first fragment and the rest.
  {
    const whole = icmp(128, 0, idSeq(0x6666, 1), payload(1600), { src: '2001:db8::2', dst: '2001:db8::1' });
    const frag = (off: number, more: boolean): [number, number[]] => [
      44,
      [0, 0, (off >> 5) & 255, ((off << 3) & 0xf8) | (more ? 1 : 0), 0, 0, 0x12, 0x34],
    ];
    push(ipv6({ src: '2001:db8::2', dst: '2001:db8::1', ext: [frag(0, true)] }, whole.subarray(0, 1232)));
    push(
      ipv6({ src: '2001:db8::2', dst: '2001:db8::1', ext: [frag(1232 / 8, false)] }, whole.subarray(1232)),
      10_000n,
    );
  }
  return out;
}

function v4ToBytes(text: string): Uint8Array {
  return Uint8Array.from(v4(text));
}

/**
 * Many echo exchanges for statistics: `peers` hosts pinged with random RTTs, loss, duplicates,
 * late replies and reordering.
 */
export function echoTraffic(seed: number, count: number, family: 4 | 6 = 4): Packet[] {
  const rnd = prng(seed);
  const out: Packet[] = [];
  const peers = family === 4 ? ['10.2.0.1', '10.2.0.2', '10.2.0.3'] : ['2001:db8:2::1', '2001:db8:2::2'];
  const me = family === 4 ? '10.0.0.2' : '2001:db8::2';
  let t = 1_700_000_100_000_000_000n;
  const pending: Packet[] = [];
  for (let k = 0; k < count; k++) {
    t += BigInt(Math.floor(rnd() * 20_000_000));
    const peer = peers[Math.floor(rnd() * peers.length)]!;
    const seq = k;
    const req = family === 4 ? echo4(me, peer, 8, 0x1000, seq) : echo6(me, peer, 128, 0x1000, seq);
    out.push({ tsNs: t, data: req });
    const roll = rnd();
    if (roll < 0.1) continue; // lost
    const rtt = BigInt(Math.floor(100_000 + rnd() * (roll > 0.97 ? 3_000_000_000 : 50_000_000)));
    const rep = family === 4 ? echo4(peer, me, 0, 0x1000, seq) : echo6(peer, me, 129, 0x1000, seq);
    pending.push({ tsNs: t + rtt, data: rep });
    if (roll > 0.95) pending.push({ tsNs: t + rtt + 1000n, data: rep });
  }
  const all = [...out, ...pending].sort((a, b) => (a.tsNs < b.tsNs ? -1 : a.tsNs > b.tsNs ? 1 : 0));
  return all;
}

/** The record every source would make of `p` (as the module does: header fields from the bytes). */
export function recordOf(p: Packet, dir = 3, hook = 255): DecodedRecord {
  const b = p.data;
  const family = b[0]! >> 4 === 6 ? 6 : 4;
  let at: number;
  let proto: number;
  let notFirst = false;
  let fragment = false;
  if (family === 4) {
    at = (b[0]! & 15) * 4;
    proto = b[9]!;
    const fo = (b[6]! << 8) | b[7]!;
    fragment = (fo & 0x3fff) !== 0;
    notFirst = (fo & 0x1fff) !== 0;
  } else {
    at = 40;
    proto = b[6]!;
    for (let i = 0; i < 8 && (proto === 0 || proto === 43 || proto === 60 || proto === 44); i++) {
      if (proto === 44) {
        fragment = true;
        notFirst = ((b[at + 2]! << 8) | b[at + 3]!) >> 3 !== 0;
        proto = b[at]!;
        at += 8;
      } else {
        proto = b[at]!;
        at += (b[at + 1]! + 1) * 8;
      }
    }
  }
  const icmpOk = !notFirst && at + 4 <= b.length && proto === (family === 4 ? 1 : 58);
  const type = icmpOk ? b[at]! : 0;
  const echo =
    icmpOk && at + 8 <= b.length && (family === 4 ? type === 0 || type === 8 : type === 128 || type === 129);
  const addr = (o: number, n: number): string =>
    n === 4 ? Array.from(b.subarray(o, o + 4)).join('.') : formatIpv6(b.subarray(o, o + 16));
  return {
    flags: (echo ? 4 : 0) | (fragment ? 0x8 : 0) | (notFirst ? 0x10 : 0),
    hook,
    dir,
    tsNs: p.tsNs,
    ifindex: 1,
    origLen: b.length,
    capLen: b.length,
    family,
    ttl: family === 4 ? b[8]! : b[7]!,
    type,
    code: icmpOk ? b[at + 1]! : 0,
    id: echo ? (b[at + 4]! << 8) | b[at + 5]! : 0,
    seq: echo ? (b[at + 6]! << 8) | b[at + 7]! : 0,
    hasEcho: echo,
    src: family === 4 ? addr(12, 4) : addr(8, 16),
    dst: family === 4 ? addr(16, 4) : addr(24, 16),
    data: b,
  };
}
