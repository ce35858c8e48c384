/**
 * Reads every registry field (electron/common/fields.ts) from one record and its captured bytes, as
 * Wireshark's dissectors would put them in the tree: every occurrence, in tree order, with the layer it
 * came from (the outer IP header is `ip` layer 1, the header an ICMP error quotes is layer 2, as
 * Wireshark's `ip.dst#2`).
 *
 * API (for `icmpcap capture -T fields -e FIELD` and the slow path of display filters):
 *
 *   const session = new FieldSession();             // one per capture, records in capture order
 *   const fields = session.next(record, ifname);     // FieldMap of this record
 *   fields.get('ip.dst')                              // every value: [outer, quoted...]
 *   formatFieldValues('ip.dst', fields.get('ip.dst')) // "10.0.0.1,192.0.2.7", as tshark -T fields
 *
 * `FieldSession` numbers frames from 1, keeps frame.time_relative/delta and matches echo requests to
 * replies exactly as Wireshark's ICMP dissectors do in a single pass (tshark's default): a conversation
 * is the unordered outer address pair; the key is (checksum adjusted by the request/reply type
 * difference, identifier, sequence); a reply takes the latest request with that key if it is still
 * unanswered; a second reply is not matched, however late, any reply is. So in one pass requests
 * carry neither `resp_in` nor `no_resp`, replies `icmp.resp_to` and `icmp.resptime`. `annotateResponses` adds the
 * second pass (tshark -2): `resp_in` on answered requests, `no_resp` on the others.
 *
 * Fragments are taken one packet at a time (tshark with `-o ip.defragment:FALSE
 * -o ipv6.defragment:FALSE`): a first fragment's ICMP header is read (checksum unverified), a
 * non-first fragment has no ICMP layer.
 */
import { formatIpv6 } from '../../common/address.js';
import { type FieldInfo, type FieldType, fieldInfo } from '../../common/fields.js';
import { Hook } from '../record.js';
import type { DecodedRecord } from '../record.js';
import type { RowProcess } from '../../common/contract.js';

/** A field's value: uint/framenum numbers, ipv4 as uint32, ipv6/ether/bytes as bytes, times in ns. */
export type FieldValue = number | bigint | boolean | string | Uint8Array | null;

export interface Occurrence {
  value: FieldValue;
  /** 1-based index of the protocol layer it belongs to (`#` in filters). */
  layer: number;
}

export class FieldMap {
  private readonly map = new Map<string, Occurrence[]>();

  add(name: string, value: FieldValue, layer = 1): void {
    let list = this.map.get(name);
    if (list === undefined) {
      list = [];
      this.map.set(name, list);
    }
    list.push({ value, layer });
  }

  /** Every value of `name` in tree order (empty when absent). */
  get(name: string): FieldValue[] {
    return (this.map.get(name) ?? []).map((o) => o.value);
  }

  occurrences(name: string): readonly Occurrence[] {
    return this.map.get(name) ?? [];
  }

  has(name: string): boolean {
    return this.map.has(name);
  }

  names(): IterableIterator<string> {
    return this.map.keys();
  }
}

/** What one record needs besides its bytes (kept by FieldSession, or supplied by the caller). */
export interface FrameContext {
  number: number;
  ifname: string;
  interfaceId?: number;
  /** Timestamp of the first frame and of the previous frame, ns since the epoch. */
  firstTsNs: bigint;
  prevTsNs: bigint;
  /** Echo matching results, as Wireshark's ICMP dissectors report them. */
  respIn?: number;
  respTo?: number;
  resptimeMs?: number;
  noResp?: boolean;
  /** An echo request that takes part in matching (not one quoted in an error). */
  echoRequest?: boolean;
  /** icmpcap's RTT (matched within the timeout), ms. */
  rttMs?: number;
  /** The local process the record belongs to (icmpcap.proc.*), when known. */
  proc?: RowProcess | undefined;
}

class Bytes {
  constructor(readonly b: Uint8Array) {}
  has(at: number, n: number): boolean {
    return at >= 0 && at + n <= this.b.length;
  }
  u8(at: number): number {
    return this.b[at] ?? 0;
  }
  u16(at: number): number {
    return (this.u8(at) << 8) | this.u8(at + 1);
  }
  u16le(at: number): number {
    return this.u8(at) | (this.u8(at + 1) << 8);
  }
  u32(at: number): number {
    return ((this.u8(at) << 24) | (this.u8(at + 1) << 16) | (this.u8(at + 2) << 8) | this.u8(at + 3)) >>> 0;
  }
  slice(at: number, n: number): Uint8Array {
    return this.b.slice(at, at + n);
  }
}

function onesSum(b: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial;
  for (let i = start; i < end; i += 2) sum += (b[i]! << 8) | (i + 1 < end ? b[i + 1]! : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

export const V4_ERRORS = new Set([3, 4, 5, 11, 12]);
export const V6_ERRORS = new Set([1, 2, 3, 4]);
export const V4_ECHOLIKE = new Set([0, 8, 13, 14, 15, 16, 17, 18]);

interface Layers {
  ip: number;
  ipv6: number;
  icmp: number;
  icmpv6: number;
  udp: number;
  tcp: number;
  protocols: string[];
}

interface IpResult {
  /** Offset of the upper-layer payload. */
  payloadAt: number;
  /** End of the datagram's bytes as its header declares them (may exceed the captured bytes). */
  reportedEnd: number;
  protocol: number;
  /** Dissect the payload: false for non-first fragments. */
  firstFragment: boolean;
  fragmented: boolean;
  /** Offset of the addresses (v6 pseudo header) */
  srcAt: number;
  version: 4 | 6;
}

/**
 * Reads the IP header at `at` (outer or quoted). `quoted` datagrams are whatever the error carried:
 * their declared length usually exceeds what was quoted.
 */
function dissectIp(r: Bytes, at: number, out: FieldMap, layers: Layers): IpResult | null {
  if (!r.has(at, 1)) return null;
  const version = r.u8(at) >> 4;
  if (version === 4) {
    if (!r.has(at, 20)) return null;
    const layer = ++layers.ip;
    layers.protocols.push('ip');
    const ihl = (r.u8(at) & 15) * 4;
    const tos = r.u8(at + 1);
    const totalLen = r.u16(at + 2);
    const flagsOff = r.u16(at + 6);
    const add = (name: string, v: FieldValue): void => out.add(name, v, layer);
    add('ip', r.slice(at, Math.min(ihl, r.b.length - at)));
    add('ip.version', 4);
    add('ip.hdr_len', ihl);
    add('ip.dsfield', tos);
    add('ip.dsfield.dscp', tos >> 2);
    add('ip.dsfield.ecn', tos & 3);
    add('ip.len', totalLen);
    add('ip.id', r.u16(at + 4));
    add('ip.flags', flagsOff >> 13);
    add('ip.flags.rb', (flagsOff & 0x8000) !== 0);
    add('ip.flags.df', (flagsOff & 0x4000) !== 0);
    add('ip.flags.mf', (flagsOff & 0x2000) !== 0);
    add('ip.frag_offset', flagsOff & 0x1fff);
    add('ip.ttl', r.u8(at + 8));
    add('ip.proto', r.u8(at + 9));
    add('ip.checksum', r.u16(at + 10));
    add('ip.checksum.status', 2);
    const src = r.u32(at + 12);
    const dst = r.u32(at + 16);
    add('ip.src', src);
    add('ip.addr', src);
    add('ip.src_host', ipv4Text(src));
    add('ip.host', ipv4Text(src));
    add('ip.dst', dst);
    add('ip.addr', dst);
    add('ip.dst_host', ipv4Text(dst));
    add('ip.host', ipv4Text(dst));
    const fragmented = (flagsOff & 0x3fff) !== 0;
    return {
      payloadAt: at + ihl,
      reportedEnd: at + Math.max(totalLen, ihl),
      protocol: r.u8(at + 9),
      firstFragment: (flagsOff & 0x1fff) === 0,
      fragmented,
      srcAt: at + 12,
      version: 4,
    };
  }
  if (version === 6) {
    if (!r.has(at, 40)) return null;
    const layer = ++layers.ipv6;
    layers.protocols.push('ipv6');
    const add = (name: string, v: FieldValue): void => out.add(name, v, layer);
    const w = r.u32(at);
    const plen = r.u16(at + 4);
    out.add('ip.version', 6, layer);
    add('ipv6.version', 6);
    add('ipv6.tclass', (w >>> 20) & 0xff);
    add('ipv6.tclass.dscp', (w >>> 22) & 0x3f);
    add('ipv6.tclass.ecn', (w >>> 20) & 3);
    add('ipv6.flow', w & 0xfffff);
    add('ipv6.plen', plen);
    add('ipv6.nxt', r.u8(at + 6));
    add('ipv6.hlim', r.u8(at + 7));
    const src = r.slice(at + 8, 16);
    const dst = r.slice(at + 24, 16);
    add('ipv6.src', src);
    add('ipv6.addr', src);
    add('ipv6.src_host', formatIpv6(src));
    add('ipv6.host', formatIpv6(src));
    add('ipv6.dst', dst);
    add('ipv6.addr', dst);
    add('ipv6.dst_host', formatIpv6(dst));
    add('ipv6.host', formatIpv6(dst));
    // Extension headers up to the upper layer.
    let next = r.u8(at + 6);
    let p = at + 40;
    let firstFragment = true;
    let fragmented = false;
    for (let hops = 0; hops < 16; hops++) {
      if (next === 0 || next === 43 || next === 60) {
        if (!r.has(p, 2)) break;
        next = r.u8(p);
        p += (r.u8(p + 1) + 1) * 8;
      } else if (next === 44) {
        if (!r.has(p, 8)) break;
        const off = r.u16(p + 2);
        add('ipv6.fraghdr.offset', off >> 3);
        add('ipv6.fraghdr.more', (off & 1) !== 0);
        add('ipv6.fraghdr.ident', r.u32(p + 4));
        fragmented = true;
        firstFragment = off >> 3 === 0;
        next = r.u8(p);
        p += 8;
      } else break;
    }
    add('ipv6', r.slice(at, Math.min(p, r.b.length) - at));
    return {
      payloadAt: p,
      reportedEnd: at + 40 + plen,
      protocol: next,
      firstFragment,
      fragmented,
      srcAt: at + 8,
      version: 6,
    };
  }
  return null;
}

function ipv4Text(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

function checksumStatus(r: Bytes, ip: IpResult, at: number, inError: boolean): number {
  const end = ip.reportedEnd;
  // Wireshark verifies only whole, unfragmented messages it has every byte of.
  if (inError || ip.fragmented || end > r.b.length || end < at + 4) return 2;
  let initial = 0;
  if (ip.version === 6) {
    initial = onesSum(r.b, ip.srcAt, ip.srcAt + 32);
    const len = end - at;
    initial = onesSum(
      new Uint8Array([len >> 24, (len >> 16) & 255, (len >> 8) & 255, len & 255, 0, 0, 0, 58]),
      0,
      8,
      initial,
    );
  }
  return onesSum(r.b, at, end, initial) === 0xffff ? 1 : 0;
}

function dissectTransport(
  r: Bytes,
  ip: IpResult,
  out: FieldMap,
  layers: Layers,
  ctx: FrameContext | null,
  inError: boolean,
): void {
  if (!ip.firstFragment) return;
  const at = ip.payloadAt;
  if (ip.protocol === 1 && ip.version === 4) dissectIcmp4(r, ip, at, out, layers, ctx, inError);
  else if (ip.protocol === 58 && ip.version === 6) dissectIcmp6(r, ip, at, out, layers, ctx, inError);
  else if (ip.protocol === 17 && r.has(at, 8)) {
    const layer = ++layers.udp;
    layers.protocols.push('udp');
    out.add('udp', r.slice(at, 8), layer);
    const sp = r.u16(at);
    const dp = r.u16(at + 2);
    out.add('udp.srcport', sp, layer);
    out.add('udp.dstport', dp, layer);
    out.add('udp.port', sp, layer);
    out.add('udp.port', dp, layer);
    out.add('udp.length', r.u16(at + 4), layer);
  } else if (ip.protocol === 6 && r.has(at, 8)) {
    const layer = ++layers.tcp;
    layers.protocols.push('tcp');
    out.add('tcp', r.slice(at, Math.min(20, r.b.length - at)), layer);
    const sp = r.u16(at);
    const dp = r.u16(at + 2);
    out.add('tcp.srcport', sp, layer);
    out.add('tcp.dstport', dp, layer);
    out.add('tcp.port', sp, layer);
    out.add('tcp.port', dp, layer);
    if (r.has(at, 20)) out.add('tcp.seq_raw', r.u32(at + 4), layer);
  }
}

function addEchoState(
  out: FieldMap,
  proto: 'icmp' | 'icmpv6',
  layer: number,
  ctx: FrameContext | null,
  request: boolean,
): void {
  if (ctx === null) return;
  if (request) {
    if (ctx.respIn !== undefined) out.add(`${proto}.resp_in`, ctx.respIn, layer);
    else if (ctx.noResp === true) out.add(`${proto}.no_resp`, null, layer);
  } else {
    if (ctx.respTo !== undefined) out.add(`${proto}.resp_to`, ctx.respTo, layer);
    if (ctx.resptimeMs !== undefined) out.add(`${proto}.resptime`, ctx.resptimeMs, layer);
  }
}

function dissectIcmp4(
  r: Bytes,
  ip: IpResult,
  at: number,
  out: FieldMap,
  layers: Layers,
  ctx: FrameContext | null,
  inError: boolean,
): void {
  if (!r.has(at, 4)) return;
  const layer = ++layers.icmp;
  layers.protocols.push('icmp');
  const add = (name: string, v: FieldValue): void => out.add(name, v, layer);
  add('icmp', r.slice(at, Math.min(ip.reportedEnd, r.b.length) - at));
  const type = r.u8(at);
  const code = r.u8(at + 1);
  add('icmp.type', type);
  add('icmp.code', code);
  add('icmp.checksum', r.u16(at + 2));
  add('icmp.checksum.status', checksumStatus(r, ip, at, inError));
  if (V4_ECHOLIKE.has(type) && r.has(at, 8)) {
    add('icmp.ident', r.u16(at + 4));
    add('icmp.ident_le', r.u16le(at + 4));
    add('icmp.seq', r.u16(at + 6));
    add('icmp.seq_le', r.u16le(at + 6));
    if (!inError && (type === 0 || type === 8)) addEchoState(out, 'icmp', layer, ctx, type === 8);
  } else if (type === 3 && code === 4 && r.has(at, 8)) {
    add('icmp.mtu', r.u16(at + 6));
  } else if (type === 12 && r.has(at, 5)) {
    add('icmp.pointer', r.u8(at + 4));
  } else if (type === 5 && r.has(at, 8)) {
    add('icmp.redir_gw', r.u32(at + 4));
  }
  if (V4_ERRORS.has(type) && r.has(at, 8)) {
    const rfc4884 = type === 3 || type === 11 || type === 12 ? r.u8(at + 5) : 0;
    if (rfc4884 !== 0) {
      add('icmp.length', rfc4884);
      add('icmp.length.original_datagram', rfc4884 * 4);
    }
    const quotedAt = at + 8;
    const inner = dissectIp(r, quotedAt, out, layers);
    if (inner !== null) {
      // The quoted datagram ends where the ICMP message's bytes end, or at its RFC 4884 length.
      dissectTransport(r, inner, out, layers, ctx, true);
    }
    if (rfc4884 !== 0)
      dissectExtensions(r, quotedAt + rfc4884 * 4, Math.min(ip.reportedEnd, r.b.length), out, layer);
  }
}

function dissectExtensions(r: Bytes, at: number, end: number, out: FieldMap, layer: number): void {
  if (!r.has(at, 4) || end - at < 4) return;
  out.add('icmp.ext', null, layer);
  out.add('icmp.ext.version', r.u8(at) >> 4, layer);
  out.add('icmp.ext.checksum', r.u16(at + 2), layer);
  let p = at + 4;
  while (p + 4 <= end) {
    const len = r.u16(p);
    out.add('icmp.ext.length', len, layer);
    out.add('icmp.ext.class', r.u8(p + 2), layer);
    out.add('icmp.ext.ctype', r.u8(p + 3), layer);
    if (len < 4) break;
    const objEnd = Math.min(p + len, end);
    if (r.u8(p + 2) === 1 && r.u8(p + 3) === 1) {
      // RFC 4950: the MPLS label stack, one 32-bit entry each.
      for (let e = p + 4; e + 4 <= objEnd; e += 4) {
        const v = r.u32(e);
        out.add('icmp.mpls.label', v >>> 12, layer);
        out.add('icmp.mpls.exp', (v >>> 9) & 7, layer);
        out.add('icmp.mpls.s', ((v >>> 8) & 1) === 1, layer);
        out.add('icmp.mpls.ttl', v & 0xff, layer);
      }
    } else if (r.u8(p + 2) === 2) dissectInterfaceInfo(r, p + 4, objEnd, r.u8(p + 3), out, layer);
    p += len;
  }
}

/** RFC 5837 Interface Information object: C-Type bits say which sub-objects follow, in this order. */
function dissectInterfaceInfo(
  r: Bytes,
  at: number,
  end: number,
  ctype: number,
  out: FieldMap,
  layer: number,
): void {
  out.add('icmp.int_info.role', ctype >> 6, layer);
  let p = at;
  if (ctype & 0x08) {
    if (p + 4 > end) return;
    out.add('icmp.int_info.index', r.u32(p), layer);
    p += 4;
  }
  if (ctype & 0x04) {
    if (p + 4 > end) return;
    const afi = r.u16(p);
    if (afi === 1 && p + 8 <= end) {
      out.add('icmp.int_info.ipv4', r.u32(p + 4), layer);
      p += 8;
    } else if (afi === 2 && p + 20 <= end) {
      out.add('icmp.int_info.ipv6', r.slice(p + 4, 16), layer);
      p += 20;
    } else return;
  }
  if (ctype & 0x02) {
    const n = r.u8(p);
    if (n < 1 || p + n > end) return;
    const name = new TextDecoder().decode(r.slice(p + 1, n - 1)).replace(/\0+$/, '');
    out.add('icmp.int_info.name', name, layer);
    p += n;
  }
  if (ctype & 0x01 && p + 4 <= end) out.add('icmp.int_info.mtu', r.u32(p), layer);
}

function dissectIcmp6(
  r: Bytes,
  ip: IpResult,
  at: number,
  out: FieldMap,
  layers: Layers,
  ctx: FrameContext | null,
  inError: boolean,
): void {
  if (!r.has(at, 4)) return;
  const layer = ++layers.icmpv6;
  layers.protocols.push('icmpv6');
  const add = (name: string, v: FieldValue): void => out.add(name, v, layer);
  add('icmpv6', r.slice(at, Math.min(ip.reportedEnd, r.b.length) - at));
  const type = r.u8(at);
  const code = r.u8(at + 1);
  add('icmpv6.type', type);
  add('icmpv6.code', code);
  add('icmpv6.checksum', r.u16(at + 2));
  add('icmpv6.checksum.status', checksumStatus(r, ip, at, inError));
  const end = Math.min(ip.reportedEnd, r.b.length);
  if ((type === 128 || type === 129) && r.has(at, 8)) {
    add('icmpv6.echo.identifier', r.u16(at + 4));
    add('icmpv6.echo.sequence_number', r.u16(at + 6));
    if (!inError) addEchoState(out, 'icmpv6', layer, ctx, type === 128);
  } else if (type === 2 && r.has(at, 8)) {
    add('icmpv6.mtu', r.u32(at + 4));
  } else if (type === 4 && r.has(at, 8)) {
    add('icmpv6.pointer', r.u32(at + 4));
  } else if (type === 134 && r.has(at, 16)) {
    add('icmpv6.nd.ra.cur_hop_limit', r.u8(at + 4));
    const fl = r.u8(at + 5);
    add('icmpv6.nd.ra.flag', fl);
    add('icmpv6.nd.ra.flag.m', (fl & 0x80) !== 0);
    add('icmpv6.nd.ra.flag.o', (fl & 0x40) !== 0);
    add('icmpv6.nd.ra.flag.h', (fl & 0x20) !== 0);
    add('icmpv6.nd.ra.router_lifetime', r.u16(at + 6));
    add('icmpv6.nd.ra.reachable_time', r.u32(at + 8));
    add('icmpv6.nd.ra.retrans_timer', r.u32(at + 12));
    dissectNdOptions(r, at + 16, end, out, layer);
  } else if (type === 133) {
    dissectNdOptions(r, at + 8, end, out, layer);
  } else if (type === 135 && r.has(at, 24)) {
    add('icmpv6.nd.ns.target_address', r.slice(at + 8, 16));
    dissectNdOptions(r, at + 24, end, out, layer);
  } else if (type === 136 && r.has(at, 24)) {
    const fl = r.u32(at + 4);
    add('icmpv6.nd.na.flag', fl);
    add('icmpv6.nd.na.flag.r', (fl & 0x80000000) !== 0);
    add('icmpv6.nd.na.flag.s', (fl & 0x40000000) !== 0);
    add('icmpv6.nd.na.flag.o', (fl & 0x20000000) !== 0);
    add('icmpv6.nd.na.target_address', r.slice(at + 8, 16));
    dissectNdOptions(r, at + 24, end, out, layer);
  } else if (type === 137 && r.has(at, 40)) {
    add('icmpv6.nd.rd.target_address', r.slice(at + 8, 16));
    add('icmpv6.rd.na.destination_address', r.slice(at + 24, 16));
    dissectNdOptions(r, at + 40, end, out, layer);
  }
  if (V6_ERRORS.has(type) && r.has(at, 8)) {
    const rfc4884 = type === 1 || type === 3 ? r.u8(at + 4) : 0;
    if (rfc4884 !== 0) add('icmpv6.length', rfc4884);
    const inner = dissectIp(r, at + 8, out, layers);
    if (inner !== null) {
      dissectTransport(r, inner, out, layers, ctx, true);
    }
    // RFC 4884 for ICMPv6: the length counts 64-bit words; the extension structure follows.
    if (rfc4884 !== 0) dissectExtensions(r, at + 8 + rfc4884 * 8, end, out, layer);
  }
}

function dissectNdOptions(r: Bytes, at: number, end: number, out: FieldMap, layer: number): void {
  let p = at;
  while (p + 2 <= end && r.has(p, 2)) {
    const type = r.u8(p);
    const units = r.u8(p + 1);
    out.add('icmpv6.opt', null, layer);
    out.add('icmpv6.opt.type', type, layer);
    out.add('icmpv6.opt.length', units, layer);
    if (units === 0) break;
    const len = units * 8;
    if ((type === 1 || type === 2) && len >= 8 && r.has(p + 2, 6)) {
      const mac = r.slice(p + 2, 6);
      out.add(type === 1 ? 'icmpv6.opt.src_linkaddr' : 'icmpv6.opt.target_linkaddr', mac, layer);
      out.add('icmpv6.opt.linkaddr', mac, layer);
    } else if (type === 3 && len >= 32 && r.has(p, 32)) {
      const fl = r.u8(p + 3);
      out.add('icmpv6.opt.prefix.length', r.u8(p + 2), layer);
      out.add('icmpv6.opt.prefix.flag', fl, layer);
      out.add('icmpv6.opt.prefix.flag.l', (fl & 0x80) !== 0, layer);
      out.add('icmpv6.opt.prefix.flag.a', (fl & 0x40) !== 0, layer);
      out.add('icmpv6.opt.prefix.valid_lifetime', r.u32(p + 4), layer);
      out.add('icmpv6.opt.prefix.preferred_lifetime', r.u32(p + 8), layer);
      out.add('icmpv6.opt.prefix', r.slice(p + 16, 16), layer);
    } else if (type === 5 && len >= 8 && r.has(p, 8)) {
      out.add('icmpv6.opt.mtu', r.u32(p + 4), layer);
    } else if (type === 25 && len >= 24 && r.has(p, len)) {
      out.add('icmpv6.opt.rdnss.lifetime', r.u32(p + 4), layer);
      for (let a = p + 8; a + 16 <= p + len; a += 16) out.add('icmpv6.opt.rdnss', r.slice(a, 16), layer);
    }
    p += len;
  }
}

const HOOK_TEXT: Readonly<Record<number, string>> = {
  [Hook.PreRouting]: 'prerouting',
  [Hook.LocalIn]: 'local-in',
  [Hook.Forward]: 'forward',
  [Hook.LocalOut]: 'local-out',
  [Hook.PostRouting]: 'postrouting',
};
const DIR_TEXT = ['in', 'out', 'fwd', 'unknown'] as const;

/** Every field of one record. `ctx` null: only what the bytes say (no frame.*, no echo state). */
export function extractFields(record: DecodedRecord, ctx: FrameContext | null): FieldMap {
  const out = new FieldMap();
  const r = new Bytes(record.data);
  const layers: Layers = { ip: 0, ipv6: 0, icmp: 0, icmpv6: 0, udp: 0, tcp: 0, protocols: ['raw'] };
  out.add('frame', record.data);
  if (ctx !== null) {
    out.add('frame.interface_id', ctx.interfaceId ?? 0);
    out.add('frame.interface_name', ctx.ifname);
    out.add('frame.time', record.tsNs);
    out.add('frame.time_epoch', record.tsNs);
    out.add('frame.time_delta', record.tsNs - ctx.prevTsNs);
    out.add('frame.time_relative', record.tsNs - ctx.firstTsNs);
    out.add('frame.number', ctx.number);
    out.add('frame.len', record.origLen);
    out.add('frame.cap_len', record.capLen);
  }
  const ip = dissectIp(r, 0, out, layers);
  if (ip !== null) dissectTransport(r, ip, out, layers, ctx, false);
  if (ctx !== null) {
    out.add('icmpcap.hook', HOOK_TEXT[record.hook] ?? 'none');
    out.add('icmpcap.dir', DIR_TEXT[record.dir] ?? 'unknown');
    if (ctx.rttMs !== undefined) out.add('icmpcap.rtt', ctx.rttMs);
    const reply = record.hasEcho && (record.family === 4 ? record.type === 0 : record.type === 129);
    const request = record.hasEcho && (record.family === 4 ? record.type === 8 : record.type === 128);
    out.add('icmpcap.peer.addr', reply ? record.src : request ? record.dst : record.src);
    if (request) out.add('icmpcap.peer.requester', record.src);
    if (request) out.add('icmpcap.peer.responder', record.dst);
    if (reply) out.add('icmpcap.peer.requester', record.dst);
    if (reply) out.add('icmpcap.peer.responder', record.src);
    addProcessFields(out, ctx.proc);
  }
  return out;
}

/** icmpcap.proc.*: what is known of the local process a record belongs to. */
export function addProcessFields(out: FieldMap, proc: RowProcess | undefined): void {
  if (!proc) return;
  if (proc.pid !== null) out.add('icmpcap.proc.pid', proc.pid);
  if (proc.name !== null) out.add('icmpcap.proc.name', proc.name);
  if (proc.uid !== null) out.add('icmpcap.proc.uid', proc.uid);
  if (proc.cgroup !== null) out.add('icmpcap.proc.cgroup', proc.cgroup);
}

interface PendingRequest {
  frame: number;
  tsNs: bigint;
  answered: boolean;
}

/** wsutil's nstime_to_msec, to the same double: seconds * 1000 + nanoseconds / 1e6. */
export function nstimeToMsec(ns: bigint): number {
  const secs = ns / 1_000_000_000n;
  const nsecs = ns % 1_000_000_000n;
  return Number(secs) * 1000 + Number(nsecs) / 1_000_000;
}

/** One echo message as Wireshark's matcher saw it. */
export interface EchoMatch {
  family: 4 | 6;
  request: boolean;
  /** An ICMPv6 request to a multicast group (tracked, never shown as unanswered). */
  multicast: boolean;
  src: string;
  dst: string;
  id: number;
  seq: number;
  /** For a matched reply: the request's frame number and the response time (ms). */
  requestFrame?: number;
  requestTsNs?: bigint;
  resptimeMs?: number;
  /** A reply whose request was already answered (Wireshark does not match it). */
  duplicate?: boolean;
}

/**
 * Wireshark's echo request/reply matching (packet-icmp.c / packet-icmpv6.c, one pass): see the file
 * comment. Feed every record in capture order; returns null for anything but an echo request/reply.
 */
export class EchoMatcher {
  private readonly conversations = new Map<string, Map<string, PendingRequest>>();

  match(record: DecodedRecord, frame: number): EchoMatch | null {
    const r = new Bytes(record.data);
    const head = echoHeader(r);
    if (head === null) return null;
    const { at, request, family } = head;
    const [a, b] = family === 4 ? [r.u32(12), r.u32(16)].map(String) : [hexOf(r, 8), hexOf(r, 24)];
    const conv = a! < b! ? `${a} ${b}` : `${b} ${a}`;
    let pending = this.conversations.get(conv);
    if (pending === undefined) {
      pending = new Map();
      this.conversations.set(conv, pending);
    }
    const key = echoKey(r, at, request, family);
    const m: EchoMatch = {
      family,
      request,
      multicast: family === 6 && r.u8(24) === 0xff,
      src: family === 4 ? ipv4Text(r.u32(12)) : formatIpv6(r.slice(8, 16)),
      dst: family === 4 ? ipv4Text(r.u32(16)) : formatIpv6(r.slice(24, 16)),
      id: r.u16(at + 4),
      seq: r.u16(at + 6),
    };
    if (request) {
      pending.set(key, { frame, tsNs: record.tsNs, answered: false });
      return m;
    }
    const req = pending.get(key);
    if (req === undefined) return m;
    if (req.answered) {
      m.duplicate = true;
      return m;
    }
    req.answered = true;
    m.requestFrame = req.frame;
    m.requestTsNs = req.tsNs;
    m.resptimeMs = nstimeToMsec(record.tsNs - req.tsNs);
    return m;
  }

  clear(): void {
    this.conversations.clear();
  }
}

/** The Wireshark echo matching key of an echo request or reply (see the file comment). */
function echoKey(r: Bytes, at: number, request: boolean, family: 4 | 6): string {
  const cksum = r.u16(at + 2);
  let k0 = cksum;
  if (request) {
    // v4: type 8 -> 0 lowers the sum by 0x0800; v6: type 128 -> 129 raises it by 0x0100.
    const diff = family === 4 ? ~0x0800 & 0xffff : 0x0100;
    let sum = (~cksum & 0xffff) + diff;
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    k0 = ~sum & 0xffff;
  }
  return `${k0}:${r.u16(at + 4)}:${r.u16(at + 6)}`;
}

/** Frames in capture order: numbering, times and echo matching (see the file comment). */
export class FieldSession {
  private number = 0;
  private firstTs: bigint | null = null;
  private prevTs: bigint | null = null;
  private readonly matcher = new EchoMatcher();

  /** The context of the next record; advances the session. */
  context(record: DecodedRecord, ifname: string, interfaceId?: number): FrameContext {
    this.number++;
    this.firstTs ??= record.tsNs;
    const ctx: FrameContext = {
      number: this.number,
      ifname,
      interfaceId,
      firstTsNs: this.firstTs,
      prevTsNs: this.prevTs ?? record.tsNs,
    };
    this.prevTs = record.tsNs;
    this.matchEcho(record, ctx);
    return ctx;
  }

  next(record: DecodedRecord, ifname: string, interfaceId?: number): FieldMap {
    return extractFields(record, this.context(record, ifname, interfaceId));
  }

  private matchEcho(record: DecodedRecord, ctx: FrameContext): void {
    const m = this.matcher.match(record, ctx.number);
    if (m === null) return;
    if (m.request) {
      // Wireshark shows neither resp_in nor no_resp for echo sent to an IPv6 multicast group.
      if (!m.multicast) ctx.echoRequest = true;
    } else if (m.requestFrame !== undefined) {
      ctx.respTo = m.requestFrame;
      ctx.resptimeMs = m.resptimeMs;
    }
  }
}

function hexOf(r: Bytes, at: number): string {
  let s = '';
  for (let i = 0; i < 16; i++)
    s += r
      .u8(at + i)
      .toString(16)
      .padStart(2, '0');
  return s;
}

/** The echo header of an unfragmented (or first-fragment) echo request/reply, else null. */
function echoHeader(r: Bytes): { at: number; request: boolean; family: 4 | 6 } | null {
  const out = new FieldMap();
  const layers: Layers = { ip: 0, ipv6: 0, icmp: 0, icmpv6: 0, udp: 0, tcp: 0, protocols: [] };
  const ip = dissectIp(r, 0, out, layers);
  if (ip === null || !ip.firstFragment || !r.has(ip.payloadAt, 8)) return null;
  const type = r.u8(ip.payloadAt);
  if (ip.version === 4 && ip.protocol === 1 && (type === 0 || type === 8))
    return { at: ip.payloadAt, request: type === 8, family: 4 };
  if (ip.version === 6 && ip.protocol === 58 && (type === 128 || type === 129))
    return { at: ip.payloadAt, request: type === 128, family: 6 };
  return null;
}

/**
 * The second pass (tshark -2): given every frame's context in order, sets `respIn` on answered
 * requests and clears their `noResp`.
 */
export function annotateResponses(contexts: FrameContext[]): void {
  for (const ctx of contexts) if (ctx.echoRequest === true) ctx.noResp = true;
  for (const ctx of contexts) {
    if (ctx.respTo === undefined) continue;
    const req = contexts[ctx.respTo - 1];
    if (req !== undefined) {
      req.respIn = ctx.number;
      req.noResp = false;
    }
  }
}

// ---- Printing, as tshark -T fields ----

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function nsFraction(ns: bigint): string {
  const n = ((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n;
  return n.toString().padStart(9, '0');
}

function seconds(ns: bigint): string {
  const neg = ns < 0n;
  const abs = neg ? -ns : ns;
  return `${neg ? '-' : ''}${abs / 1_000_000_000n}.${nsFraction(abs)}`;
}

function hexDigits(type: FieldType): number {
  return type === 'uint8' ? 2 : type === 'uint16' ? 4 : type === 'uint24' ? 6 : 8;
}

/** One value as tshark -T fields prints it (UTC for absolute times; set TZ=UTC for tshark). */
export function formatFieldValue(info: FieldInfo, value: FieldValue): string {
  switch (info.type) {
    case 'none':
    case 'protocol':
      return '1';
    case 'bool':
      return value === true ? '1' : '0';
    case 'ipv4':
      return typeof value === 'number' ? ipv4Text(value) : String(value);
    case 'ipv6':
      return value instanceof Uint8Array ? formatIpv6(value) : String(value);
    case 'ether':
    case 'bytes':
      if (!(value instanceof Uint8Array)) return String(value);
      return Array.from(value, (x) => x.toString(16).padStart(2, '0')).join(':');
    case 'abstime': {
      const ns = value as bigint;
      if (info.name === 'frame.time_epoch') return seconds(ns);
      const d = new Date(Number(ns / 1_000_000n));
      const day = String(d.getUTCDate()).padStart(2, ' ');
      const hms = [d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()].map((x) =>
        String(x).padStart(2, '0'),
      );
      return `${MONTHS[d.getUTCMonth()]} ${day}, ${d.getUTCFullYear()} ${hms.join(':')}.${nsFraction(ns)} UTC`;
    }
    case 'reltime':
      return seconds(value as bigint);
    case 'double':
      return formatDouble(value as number);
    case 'string':
      return String(value);
    default: {
      const n = Number(value);
      if (info.display === 'hex' || info.display === 'hex_dec')
        return `0x${n.toString(16).padStart(hexDigits(info.type), '0')}`;
      return String(n);
    }
  }
}

/** tshark prints doubles with "%.15g" (DBL_DIG significant digits). */
function formatDouble(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  return Number(v.toPrecision(15)).toString();
}

/** All values of one field for one frame, joined as tshark does (`,` by default). */
export function formatFieldValues(name: string, values: readonly FieldValue[], separator = ','): string {
  const info = fieldInfo(name);
  if (info === undefined) throw new Error(`unknown field '${name}'`);
  return values.map((v) => formatFieldValue(info, v)).join(separator);
}

/**
 * Checks `-e` names before a capture starts: unknown names give an error that says what to do.
 * Returns the names resolved (aliases to Wireshark names).
 */
export function resolveFieldNames(names: readonly string[]): string[] {
  return names.map((name) => {
    const info = fieldInfo(name);
    if (info === undefined || info.type === 'protocol') {
      throw new Error(
        `icmpcap: unknown field '${name}' for -e: see 'icmpcap fields' or the README for the field list`,
      );
    }
    return name;
  });
}
