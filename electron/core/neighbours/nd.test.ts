import { describe, expect, it } from 'vitest';
import { extractFields, type FieldValue } from '../fields/extract.js';
import type { DecodedRecord } from '../record.js';
import { ndFields, type NdFields } from './nd.js';
import { prng } from '../bench/synth.js';

/** What the field extractor says, in `NdFields`' shape: the reference `ndFields` must equal. */
function fromExtractor(data: Uint8Array): NdFields {
  const f = extractFields({ data } as DecodedRecord, null);
  const first = (name: string): FieldValue | undefined => f.get(name)[0];
  const bytes = (name: string): Uint8Array | null => (first(name) as Uint8Array | undefined) ?? null;
  const lengths = f.get('icmpv6.opt.prefix.length');
  const lifetime = first('icmpv6.nd.ra.router_lifetime');
  const mtu = first('icmpv6.opt.mtu');
  return {
    srcLinkaddr: bytes('icmpv6.opt.src_linkaddr'),
    targetLinkaddr: bytes('icmpv6.opt.target_linkaddr'),
    prefixes: f
      .get('icmpv6.opt.prefix')
      .map((p, i) => ({ prefix: p as Uint8Array, length: lengths[i] as number })),
    mtu: typeof mtu === 'number' ? mtu : null,
    rdnss: f.get('icmpv6.opt.rdnss') as Uint8Array[],
    managed: first('icmpv6.nd.ra.flag.m') === true,
    other: first('icmpv6.nd.ra.flag.o') === true,
    routerLifetime: typeof lifetime === 'number' ? lifetime : null,
    nsTarget: bytes('icmpv6.nd.ns.target_address'),
    naTarget: bytes('icmpv6.nd.na.target_address'),
    naRouter: first('icmpv6.nd.na.flag.r') === true,
    naOverride: first('icmpv6.nd.na.flag.o') === true,
  };
}

/** Byte arrays compared by content (a view and a copy of the same bytes are equal). */
function plain(f: NdFields): unknown {
  const b = (x: Uint8Array | null): number[] | null => (x === null ? null : [...x]);
  return {
    ...f,
    srcLinkaddr: b(f.srcLinkaddr),
    targetLinkaddr: b(f.targetLinkaddr),
    prefixes: f.prefixes.map((p) => ({ prefix: b(p.prefix), length: p.length })),
    rdnss: f.rdnss.map(b),
    nsTarget: b(f.nsTarget),
    naTarget: b(f.naTarget),
  };
}

/** One ND message (RS, RA, NS, NA or redirect) with random options, extension headers and flags. */
function ndPacket(rnd: () => number): { bytes: Uint8Array; typeAt: number } {
  const int = (n: number): number => Math.floor(rnd() * n);
  const fill = (n: number): number[] => Array.from({ length: n }, () => int(256));
  const type = [133, 134, 135, 136, 137][int(5)]!;
  const body: number[] = [type, 0, int(256), int(256)];
  if (type === 133) body.push(0, 0, 0, 0);
  if (type === 134) body.push(64, int(256), int(256), int(256), ...fill(8));
  if (type === 135) body.push(0, 0, 0, 0, ...fill(16));
  if (type === 136) body.push(int(256), 0, 0, 0, ...fill(16));
  if (type === 137) body.push(0, 0, 0, 0, ...fill(32));
  for (let k = int(6); k > 0; k--) {
    const opt = [1, 2, 3, 5, 25, 14, 1, 25][int(8)]!;
    if (opt === 1 || opt === 2) body.push(opt, 1, ...fill(6));
    else if (opt === 3) body.push(3, 4, int(129), int(256), ...fill(12), ...fill(16));
    else if (opt === 5) body.push(5, 1, 0, 0, ...fill(4));
    else if (opt === 25) {
      const addrs = 1 + int(3);
      body.push(25, 1 + 2 * addrs, 0, 0, ...fill(4));
      for (let a = 0; a < addrs; a++) body.push(...fill(16));
    } else body.push(opt, 1 + int(3), ...fill(6 + 8 * int(3)).slice(0, 6));
  }
  const ext: number[] = [];
  let next = 58;
  for (let k = int(3); k > 0; k--) {
    const kind = [0, 60, 44, 43][int(4)]!;
    if (kind === 44) ext.unshift(next, 0, int(4) === 0 ? 0 : int(256), int(256), ...fill(4));
    else ext.unshift(next, 0, ...fill(6));
    next = kind;
  }
  const plen = ext.length + body.length + (int(8) === 0 ? int(64) - 32 : 0);
  const ip = [0x60, 0, 0, 0, (plen >> 8) & 255, plen & 255, next, 255, ...fill(32)];
  return { bytes: Uint8Array.from([...ip, ...ext, ...body]), typeAt: ip.length + ext.length };
}

describe('ndFields', () => {
  it('reads the ND fields the field extractor reads, from generated and damaged messages', () => {
    const rnd = prng(4861);
    let withOptions = 0;
    for (let n = 0; n < 20_000; n++) {
      const { bytes, typeAt } = ndPacket(rnd);
      let data = bytes;
      const damage = Math.floor(rnd() * 4);
      if (damage === 1) data = bytes.slice(0, Math.floor(rnd() * bytes.length)); // cut short
      if (damage === 2) {
        // Flipped bytes (not the ICMPv6 type, which the record's own type says is ND).
        for (let k = 0; k < 4; k++) {
          const at = Math.floor(rnd() * bytes.length);
          if (at !== typeAt) data[at] = Math.floor(rnd() * 256);
        }
      }
      const want = fromExtractor(data);
      if (want.prefixes.length + want.rdnss.length > 0 && want.srcLinkaddr !== null) withOptions++;
      expect(plain(ndFields(data)), `message ${n}: ${Buffer.from(data).toString('hex')}`).toEqual(
        plain(want),
      );
    }
    // The generator did make messages whose options the two read (the comparison is not empty on both sides).
    expect(withOptions).toBeGreaterThan(500);
  });

  it('gives empty fields for what is not ICMPv6', () => {
    const empty = plain(fromExtractor(new Uint8Array(0)));
    expect(plain(ndFields(new Uint8Array(0)))).toEqual(empty);
    const v4 = Uint8Array.from([
      0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 8, 0, 0, 0, 0, 1, 0, 1,
    ]);
    expect(plain(ndFields(v4))).toEqual(empty);
  });

  it('reads a router advertisement as radvd sends it', () => {
    // RA: M and O set, lifetime 1800; source link-layer address, MTU 1480, prefix 2001:db8:1::/64, RDNSS.
    const ra = [134, 0, 0, 0, 64, 0xc0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0];
    const sll = [1, 1, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
    const mtu = [5, 1, 0, 0, 0, 0, 0x05, 0xc8];
    const pfx = [3, 4, 64, 0xc0, 0, 0, 0x1c, 0x20, 0, 0, 0x0e, 0x10, 0, 0, 0, 0];
    const pfxAddr = [0x20, 0x01, 0x0d, 0xb8, 0, 1, ...new Array<number>(10).fill(0)];
    const rdnss = [
      25,
      3,
      0,
      0,
      0,
      0,
      0x0e,
      0x10,
      0x20,
      0x01,
      0x0d,
      0xb8,
      ...new Array<number>(11).fill(0),
      0x53,
    ];
    const body = [...ra, ...sll, ...mtu, ...pfx, ...pfxAddr, ...rdnss];
    const ip = [
      0x60,
      0,
      0,
      0,
      0,
      body.length,
      58,
      255,
      0xfe,
      0x80,
      ...new Array<number>(13).fill(0),
      1,
      0xff,
      2,
    ];
    ip.push(...new Array<number>(13).fill(0), 1);
    const f = ndFields(Uint8Array.from([...ip, ...body]));
    expect(plain(f)).toMatchObject({
      srcLinkaddr: [2, 0, 0, 0, 0, 1],
      managed: true,
      other: true,
      routerLifetime: 1800,
      mtu: 1480,
      prefixes: [{ prefix: pfxAddr, length: 64 }],
    });
    expect(f.rdnss.map((a) => a[15])).toEqual([0x53]);
  });
});
