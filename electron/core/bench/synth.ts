/**
 * Synthetic captures for the view/filter/stats tests and the service benchmark: batches in the record
 * format (record.ts) written straight with DataView, fast enough to make 10 M records.
 */
import { OFF, RECORD_HEADER_SIZE, REC_F_HAS_ECHO, alignRecord } from '../record.js';
import { parseIpv4, parseIpv6 } from '../filter/address.js';

export interface SynthFields {
  /** ns since the epoch (a double: exact below 2^53, i.e. until the year 2255). */
  tsNs: number;
  family: 4 | 6;
  src: Uint8Array;
  dst: Uint8Array;
  type: number;
  code: number;
  /** null: not an echo message (no id/seq). */
  id: number | null;
  seq: number;
  dir: number;
  ifindex: number;
  ttl: number;
  /** Bytes captured from the IP header on (payload left zero). */
  capLen: number;
  /** Netfilter hook (record.ts Hook); 255 (none) when absent. */
  hook?: number;
}

export function addressOf(text: string): Uint8Array {
  const v4 = parseIpv4(text);
  if (v4 !== null) return new Uint8Array([v4 >>> 24, (v4 >>> 16) & 255, (v4 >>> 8) & 255, v4 & 255]);
  const v6 = parseIpv6(text);
  if (v6 === null) throw new Error(`not an address: ${text}`);
  return v6;
}

/** Writes records back to back into one batch buffer. */
export class BatchBuilder {
  private buffer: ArrayBuffer;
  private view: DataView;
  private bytes: Uint8Array;
  private at = 0;
  count = 0;

  constructor(capacityBytes = 1 << 20) {
    this.buffer = new ArrayBuffer(capacityBytes);
    this.view = new DataView(this.buffer);
    this.bytes = new Uint8Array(this.buffer);
  }

  add(r: SynthFields): void {
    const size = alignRecord(RECORD_HEADER_SIZE + r.capLen);
    if (this.at + size > this.buffer.byteLength) this.grow(this.at + size);
    const v = this.view;
    const o = this.at;
    this.bytes.fill(0, o, o + size);
    v.setUint32(o + OFF.len, RECORD_HEADER_SIZE + r.capLen, true);
    v.setUint16(o + OFF.flags, r.id !== null ? REC_F_HAS_ECHO : 0, true);
    v.setUint8(o + OFF.hook, r.hook ?? 255);
    v.setUint8(o + OFF.dir, r.dir);
    v.setUint32(o + OFF.tsNs, r.tsNs % 4294967296, true);
    v.setUint32(o + OFF.tsNs + 4, Math.floor(r.tsNs / 4294967296), true);
    v.setUint32(o + OFF.ifindex, r.ifindex, true);
    v.setUint32(o + OFF.origLen, r.capLen, true);
    v.setUint16(o + OFF.capLen, r.capLen, true);
    v.setUint8(o + OFF.family, r.family);
    v.setUint8(o + OFF.ttl, r.ttl);
    v.setUint8(o + OFF.type, r.type);
    v.setUint8(o + OFF.code, r.code);
    v.setUint16(o + OFF.id, r.id ?? 0, true);
    v.setUint16(o + OFF.seq, r.id !== null ? r.seq : 0, true);
    this.bytes.set(r.src, o + OFF.saddr);
    this.bytes.set(r.dst, o + OFF.daddr);
    this.at += size;
    this.count++;
  }

  private grow(min: number): void {
    const next = new ArrayBuffer(Math.max(min, this.buffer.byteLength * 2));
    new Uint8Array(next).set(this.bytes.subarray(0, this.at));
    this.buffer = next;
    this.view = new DataView(next);
    this.bytes = new Uint8Array(next);
  }

  /** The records so far (a copy), and starts a new batch. */
  take(): ArrayBuffer {
    const out = this.buffer.slice(0, this.at);
    this.at = 0;
    this.count = 0;
    return out;
  }
}

/** Deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const V4_POOL = [
  '10.0.0.1',
  '10.0.0.2',
  '10.1.0.5',
  '10.1.3.7',
  '192.168.1.1',
  '192.168.1.200',
  '8.8.8.8',
  '172.16.0.1',
];
export const V6_POOL = [
  'fe80::1',
  'fe80::2',
  '2001:db8::1',
  '2001:db8:1::5',
  '::1',
  '2001:db8::ffff:1',
  '::ffff:10.0.0.1',
];
export const IFNAMES = ['', 'eth0', 'wlan0', 'lo'];

const V4_TYPES = [0, 8, 0, 8, 3, 11, 5, 9, 10, 12, 13, 14, 4, 42, 200];
const V6_TYPES = [128, 129, 128, 129, 1, 2, 3, 4, 133, 134, 135, 136, 137, 143, 250];

/**
 * Random records for property tests: both families, addresses from small pools so tests match,
 * echo requests and their replies (in and out of order, some lost, some duplicated, some late), errors,
 * ND and unknown types, random directions, interfaces, TTLs and lengths. Returns batches of `batchSize`.
 */
export function randomCapture(n: number, seed: number, batchSize = 4096): ArrayBuffer[] {
  const rnd = prng(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)]!;
  const b = new BatchBuilder();
  const batches: ArrayBuffer[] = [];
  let ts = 1_700_000_000e9 + 123_456_789;
  const pendingReplies: { at: number; r: SynthFields }[] = [];
  let made = 0;
  const push = (r: SynthFields): void => {
    b.add(r);
    made++;
    if (b.count === batchSize) batches.push(b.take());
  };
  while (made < n) {
    ts += Math.floor(rnd() * 3e6);
    const due = pendingReplies.findIndex((p) => p.at <= ts);
    if (due >= 0) {
      const [{ r }] = pendingReplies.splice(due, 1) as [{ at: number; r: SynthFields }];
      push({ ...r, tsNs: ts });
      continue;
    }
    const family = rnd() < 0.6 ? 4 : 6;
    const pool = family === 4 ? V4_POOL : V6_POOL;
    const type = pick(family === 4 ? V4_TYPES : V6_TYPES);
    const isRequest = type === 8 || type === 128;
    const echo = isRequest || type === 0 || type === 129 || type === 42 || type === 160;
    const r: SynthFields = {
      tsNs: ts,
      family,
      src: addressOf(pick(pool)),
      dst: addressOf(pick(pool)),
      type,
      code: rnd() < 0.7 ? 0 : Math.floor(rnd() * 4),
      id: echo ? Math.floor(rnd() * 4) * 1000 : null,
      seq: Math.floor(rnd() * 20),
      dir: Math.floor(rnd() * 4),
      ifindex: 1 + Math.floor(rnd() * 3),
      ttl: pick([1, 32, 63, 64, 128, 255, Math.floor(rnd() * 256)]),
      capLen: 28 + Math.floor(rnd() * 100),
      hook: pick([0, 1, 2, 3, 4, 255]),
    };
    push(r);
    if (isRequest && rnd() < 0.8) {
      const reply: SynthFields = { ...r, src: r.dst, dst: r.src, type: family === 4 ? 0 : 129, code: 0 };
      reply.dir = r.dir === 0 ? 1 : r.dir === 1 ? 0 : r.dir;
      const delay = rnd() < 0.1 ? 2.5e9 : rnd() * 20e6;
      pendingReplies.push({ at: ts + delay, r: reply });
      if (rnd() < 0.05) pendingReplies.push({ at: ts + delay + 1e6, r: reply });
    }
    if (pendingReplies.length > 64) pendingReplies.shift();
  }
  if (b.count > 0) batches.push(b.take());
  return batches;
}

interface SynthPeer {
  addr: Uint8Array;
  family: 4 | 6;
  baseRtt: number;
  seq: number;
  id: number;
}

/**
 * A busy host, batch by batch: echo request/reply pairs with 3000 peers (a third IPv6; 75% we ping
 * them, 15% they ping us; 1% lost; RTTs 0.2-80 ms), errors (unreachable, time exceeded, packet too
 * big) and neighbour discovery, about 100 k records per second of capture time. With `packetBytes`, each
 * record carries real IPv4/IPv6 and ICMP headers matching its fields (fillPacketBytes), so a file exported
 * from it reads back as the same ICMP records; without, the packet bytes are zeros (faster to make).
 */
export function* realisticCapture(
  n: number,
  batchSize = 4096,
  options: { packetBytes?: boolean } = {},
): Generator<ArrayBuffer> {
  const rnd = prng(1);
  const local4 = addressOf('192.168.1.10');
  const local6 = addressOf('2001:db8:ffff::10');
  const peers: SynthPeer[] = [];
  for (let k = 0; k < 3000; k++) {
    const v6 = k % 3 === 2;
    const text = v6
      ? `2001:db8:${(k >> 8).toString(16)}::${(k & 255).toString(16)}`
      : `10.${k % 4}.${(k >> 8) & 255}.${k & 255}`;
    peers.push({ addr: addressOf(text), family: v6 ? 6 : 4, baseRtt: 0.2 + rnd() * 40, seq: 0, id: k });
  }
  const router4 = addressOf('192.168.1.1');
  const router6 = addressOf('fe80::1');
  const b = new BatchBuilder(batchSize * 112);
  let ts = 1_700_000_000e9;
  let made = 0;
  const replies: SynthFields[] = [];
  const add = (r: SynthFields): void => {
    b.add(r);
    made++;
  };
  while (made < n) {
    while (b.count < batchSize && made < n) {
      ts += 5000 + Math.floor(rnd() * 10_000); // ~100 k records/s of capture time
      const due = replies.length > 0 && replies[0]!.tsNs <= ts;
      if (due) {
        add(replies.shift()!);
        continue;
      }
      const x = rnd();
      const p = peers[Math.floor(rnd() * peers.length)]!;
      const local = p.family === 4 ? local4 : local6;
      if (x < 0.9) {
        // We ping a peer (out), or a peer pings us (in).
        const out = x < 0.75;
        const seq = (p.seq = (p.seq + 1) & 0xffff);
        const req: SynthFields = {
          tsNs: ts,
          family: p.family,
          src: out ? local : p.addr,
          dst: out ? p.addr : local,
          type: p.family === 4 ? 8 : 128,
          code: 0,
          id: p.id,
          seq,
          dir: out ? 1 : 0,
          ifindex: 1 + (p.id % 2),
          ttl: 64,
          capLen: 84,
        };
        add(req);
        if (rnd() < 0.99) {
          const rtt = p.baseRtt * (1 + rnd() * rnd()) * 1e6;
          const reply = {
            ...req,
            tsNs: ts + rtt,
            src: req.dst,
            dst: req.src,
            type: p.family === 4 ? 0 : 129,
          };
          reply.dir = out ? 0 : 1;
          reply.ttl = out ? 50 : 64;
          // Keep replies in time order (a few are reordered by the generator's granularity anyway).
          let at = replies.length;
          while (at > 0 && replies[at - 1]!.tsNs > reply.tsNs) at--;
          replies.splice(at, 0, reply);
        }
      } else if (x < 0.96) {
        add({
          tsNs: ts,
          family: p.family,
          src: p.family === 4 ? router4 : router6,
          dst: local,
          type: p.family === 4 ? (x < 0.93 ? 3 : 11) : x < 0.93 ? 1 : 2,
          code: x < 0.93 ? 3 : 0,
          id: null,
          seq: 0,
          dir: 0,
          ifindex: 1,
          ttl: 255,
          capLen: 120,
        });
      } else {
        add({
          tsNs: ts,
          family: 6,
          src: router6,
          dst: local6,
          type: 135 + (x < 0.98 ? 0 : 1),
          code: 0,
          id: null,
          seq: 0,
          dir: x < 0.98 ? 0 : 1,
          ifindex: 2,
          ttl: 255,
          capLen: 72,
        });
      }
    }
    const batch = b.take();
    if (options.packetBytes) fillPacketBytes(batch);
    yield batch;
  }
}

/**
 * Writes real packet bytes into every record of `batch` from its header fields (the synthetic records
 * carry zeros), so the bytes read back from a spool decode as the columns say and tshark reads the same
 * packets: IPv4/IPv6 header, ICMP header with id/seq, and for errors the quoted datagram (an echo
 * request from the destination to a peer derived from the record's position), for ND the target.
 */
export function fillPacketBytes(batch: ArrayBuffer): void {
  const view = new DataView(batch);
  const bytes = new Uint8Array(batch);
  let n = 0;
  for (let o = 0; o + RECORD_HEADER_SIZE <= batch.byteLength;) {
    const len = view.getUint32(o + OFF.len, true);
    const capLen = view.getUint16(o + OFF.capLen, true);
    const at = o + OFF.data;
    const family = view.getUint8(o + OFF.family);
    const type = view.getUint8(o + OFF.type);
    const code = view.getUint8(o + OFF.code);
    const ttl = view.getUint8(o + OFF.ttl);
    const echo = (view.getUint16(o + OFF.flags, true) & REC_F_HAS_ECHO) !== 0;
    const id = view.getUint16(o + OFF.id, true);
    const seq = view.getUint16(o + OFF.seq, true);
    const peer = 0x0a000000 | ((Math.imul(n, 0x9e3779b1) >>> 8) % 0x30000);
    n++;
    if (family === 4) {
      ipv4Header(
        view,
        at,
        capLen,
        ttl,
        1,
        view.getUint32(o + OFF.saddr, false),
        view.getUint32(o + OFF.daddr, false),
      );
      const icmp = at + 20;
      view.setUint8(icmp, type);
      view.setUint8(icmp + 1, code);
      if (echo) {
        view.setUint16(icmp + 4, id);
        view.setUint16(icmp + 6, seq);
      } else if (type === 3 || type === 11) {
        ipv4Header(view, icmp + 8, 84, 1, 1, view.getUint32(o + OFF.daddr, false), peer >>> 0);
        view.setUint8(icmp + 28, 8);
        view.setUint16(icmp + 32, n & 0xffff);
        view.setUint16(icmp + 34, (n >>> 16) & 0xffff);
      }
      view.setUint16(icmp + 2, checksum(bytes, icmp, at + capLen, 0));
    } else {
      view.setUint32(at, 0x60000000);
      view.setUint16(at + 4, capLen - 40);
      view.setUint8(at + 6, 58);
      view.setUint8(at + 7, ttl);
      bytes.copyWithin(at + 8, o + OFF.saddr, o + OFF.saddr + 16);
      bytes.copyWithin(at + 24, o + OFF.daddr, o + OFF.daddr + 16);
      const icmp = at + 40;
      view.setUint8(icmp, type);
      view.setUint8(icmp + 1, code);
      if (echo) {
        view.setUint16(icmp + 4, id);
        view.setUint16(icmp + 6, seq);
      } else if (type >= 1 && type <= 4) {
        const q = icmp + 8;
        view.setUint32(q, 0x60000000);
        view.setUint16(q + 4, 8);
        view.setUint8(q + 6, 58);
        view.setUint8(q + 7, 1);
        bytes.copyWithin(q + 8, o + OFF.daddr, o + OFF.daddr + 16);
        view.setUint32(q + 24, 0x20010db8);
        view.setUint32(q + 36, peer >>> 0);
        view.setUint8(q + 40, 128);
        view.setUint16(q + 44, n & 0xffff);
      } else if (type === 135 || type === 136) {
        bytes.copyWithin(icmp + 8, o + OFF.daddr, o + OFF.daddr + 16);
      }
      // The pseudo-header: addresses, upper-layer length, next header.
      let sum = capLen - 40 + 58;
      for (let k = at + 8; k < at + 40; k += 2) sum += (bytes[k]! << 8) | bytes[k + 1]!;
      view.setUint16(icmp + 2, checksum(bytes, icmp, at + capLen, sum));
    }
    o += alignRecord(len);
  }
}

function ipv4Header(
  view: DataView,
  at: number,
  total: number,
  ttl: number,
  proto: number,
  src: number,
  dst: number,
): void {
  view.setUint8(at, 0x45);
  view.setUint16(at + 2, total);
  view.setUint8(at + 8, ttl);
  view.setUint8(at + 9, proto);
  view.setUint32(at + 12, src);
  view.setUint32(at + 16, dst);
  const bytes = new Uint8Array(view.buffer);
  view.setUint16(at + 10, checksum(bytes, at, at + 20, 0));
}

function checksum(bytes: Uint8Array, from: number, to: number, initial: number): number {
  let sum = initial;
  for (let k = from; k + 1 < to; k += 2) sum += (bytes[k]! << 8) | bytes[k + 1]!;
  if ((to - from) & 1) sum += bytes[to - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}
