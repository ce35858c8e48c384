import { describe, expect, it } from 'vitest';
import {
  decodeRecord,
  forEachRecord,
  Hook,
  REC_F_FRAGMENT,
  REC_F_HAS_ECHO,
  REC_F_NOT_FIRST,
  REC_F_SHORT,
  REC_F_TRUNCATED,
} from '../record.js';
import { encodeRecord, MAX_RECORD_SIZE, type RecordMeta } from './packet.js';
import { ipv4Error, ipv4Icmp, ipv6Icmp } from './testing/packets.js';

const META: RecordMeta = { tsNs: 1_795_329_960_248_353_203n, ifindex: 7, dir: 1, origLen: 0 };

function encode(packet: Uint8Array, meta: Partial<RecordMeta> = {}) {
  const out = new Uint8Array(MAX_RECORD_SIZE + 16).fill(0xff); // garbage must not leak into the record
  const size = encodeRecord(packet, { ...META, origLen: packet.length, ...meta }, out, 8);
  if (size === null) return null;
  const view = new DataView(out.buffer);
  let seen = 0;
  forEachRecord(out.buffer, () => seen++, 8, size);
  expect(seen).toBe(1);
  expect(size % 8).toBe(0);
  const record = decodeRecord(view, 8);
  expect(out.subarray(8 + 72 + record.capLen, 8 + size).every((b) => b === 0)).toBe(true);
  return { size, record, bytes: out.subarray(8, 8 + size) };
}

const HOP_BY_HOP = 0;
const ROUTING = 43;
const FRAGMENT = 44;
const DEST_OPTS = 60;
const ESP = 50;

describe('encodeRecord', () => {
  it('writes an IPv4 echo request with every header field', () => {
    const packet = ipv4Icmp({ id: 0xabcd, seq: 513, ttl: 61, src: [10, 0, 0, 1], dst: [10, 0, 0, 2] });
    const { record, bytes } = encode(packet)!;
    expect(record).toMatchObject({
      flags: REC_F_HAS_ECHO,
      hook: Hook.None,
      dir: 1,
      tsNs: META.tsNs,
      ifindex: 7,
      origLen: 84,
      capLen: 84,
      family: 4,
      ttl: 61,
      type: 8,
      code: 0,
      id: 0xabcd,
      seq: 513,
      hasEcho: true,
      src: '10.0.0.1',
      dst: '10.0.0.2',
    });
    expect([...record.data]).toEqual([...packet]);
    // IPv4 addresses sit in the first 4 of 16 bytes, the rest zero; the reserved fields are zero.
    expect([...bytes.subarray(44, 56)].every((b) => b === 0)).toBe(true);
    expect([...bytes.subarray(34, 40)].every((b) => b === 0)).toBe(true);
  });

  it('skips IPv4 options to find the ICMP header', () => {
    const options = [0x07, 0x0b, 0x04, ...Array<number>(8).fill(0), 0x01]; // record route + NOP: 12 bytes
    const { record } = encode(ipv4Icmp({ type: 0, id: 9, seq: 10 }, options))!;
    expect(record).toMatchObject({ type: 0, id: 9, seq: 10, hasEcho: true, origLen: 96 });
  });

  it('leaves id and seq zero for messages that are not echoes', () => {
    const quoted = ipv4Icmp({ id: 0x1111, seq: 0x2222 });
    const { record } = encode(ipv4Error(11, 0, quoted))!;
    expect(record).toMatchObject({ type: 11, code: 0, id: 0, seq: 0, hasEcho: false, flags: 0 });
  });

  it('marks a record truncated when fewer bytes were captured than sent', () => {
    const packet = ipv4Icmp({ payload: 200 });
    const { record } = encode(packet.subarray(0, 60), { origLen: packet.length })!;
    expect(record).toMatchObject({ capLen: 60, origLen: 228, flags: REC_F_TRUNCATED | REC_F_HAS_ECHO });
  });

  it('trims link-layer padding as the kernel does', () => {
    const packet = ipv4Icmp({ payload: 2 }); // 30 bytes of IP, padded to 46 on Ethernet
    const padded = new Uint8Array(46);
    padded.set(packet);
    const { record } = encode(padded)!;
    expect(record).toMatchObject({ origLen: 30, capLen: 30, flags: REC_F_HAS_ECHO });
  });

  it('rejects non-ICMP, other IP versions and cut IP headers', () => {
    const udp = ipv4Icmp();
    udp[9] = 17;
    expect(encode(udp)).toBeNull();
    const v5 = ipv4Icmp();
    v5[0] = 0x55;
    expect(encode(v5)).toBeNull();
    expect(encode(ipv4Icmp().subarray(0, 19))).toBeNull();
    expect(encode(new Uint8Array(0))).toBeNull();
    const badIhl = ipv4Icmp();
    badIhl[0] = 0x44;
    expect(encode(badIhl)).toBeNull();
  });

  it('records IPv4 fragments as the live sources do: a first one decoded, later ones as fragment data', () => {
    const laterFragment = ipv4Icmp();
    laterFragment[6] = 0x20; // MF
    laterFragment[7] = 0xb9; // offset 185 * 8
    expect(encode(laterFragment)!.record).toMatchObject({
      flags: REC_F_FRAGMENT | REC_F_NOT_FIRST,
      type: 0,
      code: 0,
      id: 0,
      seq: 0,
      hasEcho: false,
      capLen: 84,
      src: '192.0.2.1',
    });
    const firstFragment = ipv4Icmp();
    firstFragment[6] = 0x20; // MF, offset 0: still carries the ICMP header
    expect(encode(firstFragment)!.record).toMatchObject({
      flags: REC_F_FRAGMENT | REC_F_HAS_ECHO,
      type: 8,
      id: 0x1234,
    });
  });

  it('flags a packet that ends before a whole ICMP header (SHORT), apart from one cut by the snap length', () => {
    const packet = ipv4Icmp({ payload: 0 }).subarray(0, 24); // 4 bytes of ICMP
    packet[3] = 24; // total length
    expect(encode(packet)!.record).toMatchObject({ flags: REC_F_SHORT, type: 8, code: 0, id: 0, capLen: 24 });
    const cut = ipv4Icmp({ payload: 56 });
    expect(encode(cut.subarray(0, 23), { origLen: cut.length })!.record).toMatchObject({
      flags: REC_F_TRUNCATED,
      type: 8,
      hasEcho: false,
      capLen: 23,
      origLen: 84,
    });
  });

  it('writes an IPv6 echo reply with the hop limit and full addresses', () => {
    const { record } = encode(ipv6Icmp({ type: 129, id: 0x4321, seq: 7, ttl: 255 }))!;
    expect(record).toMatchObject({
      family: 6,
      ttl: 255,
      type: 129,
      id: 0x4321,
      seq: 7,
      hasEcho: true,
      src: '2001:db8::1',
      dst: '2001:db8::2',
      origLen: 104,
    });
  });

  it('walks hop-by-hop, routing, first-fragment and destination-options headers', () => {
    const packet = ipv6Icmp({ type: 128, id: 5, seq: 6 }, [
      [HOP_BY_HOP, [0, 0, 1, 4, 0, 0, 0, 0]],
      [ROUTING, [0, 2, 0, 1, 0, 0, 0, 0, ...Array<number>(16).fill(0)]],
      [FRAGMENT, [0, 0, 0, 0x01, 0, 0, 0, 42]], // offset 0, more fragments
      [DEST_OPTS, [0, 0, 1, 4, 0, 0, 0, 0]],
    ]);
    const { record } = encode(packet)!;
    expect(record).toMatchObject({ type: 128, id: 5, seq: 6, origLen: packet.length });
  });

  it('records later IPv6 fragments of ICMPv6 as fragment data; rejects unknown headers and overruns', () => {
    const later = ipv6Icmp({}, [[FRAGMENT, [0, 0, 0x05, 0x01, 0, 0, 0, 42]]]);
    expect(encode(later)!.record).toMatchObject({
      flags: REC_F_FRAGMENT | REC_F_NOT_FIRST,
      type: 0,
      hasEcho: false,
      family: 6,
    });
    const first = ipv6Icmp({ type: 128 }, [[FRAGMENT, [0, 0, 0, 0x01, 0, 0, 0, 42]]]);
    expect(encode(first)!.record).toMatchObject({ flags: REC_F_FRAGMENT | REC_F_HAS_ECHO, type: 128 });
    const laterUdp = ipv6Icmp({}, [[FRAGMENT, [0, 0, 0x05, 0x01, 0, 0, 0, 42]]]);
    laterUdp[40] = 17;
    expect(encode(laterUdp)).toBeNull();
    expect(encode(ipv6Icmp({}, [[ESP, [0, 0, 0, 0, 0, 0, 0, 0]]]))).toBeNull();
    const huge = ipv6Icmp({}, [[DEST_OPTS, [0, 200, 0, 0, 0, 0, 0, 0]]]);
    expect(encode(huge)).toBeNull();
  });

  it('accepts a DataView as output', () => {
    const out = new DataView(new ArrayBuffer(512), 16, 400);
    const size = encodeRecord(ipv4Icmp({ payload: 8 }), { ...META, origLen: 36 }, out, 0);
    expect(size).toBe(112);
    expect(decodeRecord(out, 0)).toMatchObject({ capLen: 36, type: 8, src: '192.0.2.1' });
  });
});
