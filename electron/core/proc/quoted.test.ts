/**
 * The quick reader of an error's quoted flow (quotedFlowOf) decides as decodeError does, on every shape it
 * answers: errors of both families about UDP, TCP, echo and other datagrams, about this host's datagrams or
 * someone else's, cut short anywhere, with IPv4 options, IPv6 extension headers, fragments, RFC 4884 lengths
 * and a quoted header of the other family. And it answers the usual shapes itself.
 */
import { describe, expect, it } from 'vitest';
import { decodeError, flowKey } from '../answers/flows.js';
import { AddressCache } from '../address-cache.js';
import { CachedDecoder } from '../insights/decode.js';
import { prng } from '../bench/synth.js';
import { encodeRecord, MAX_RECORD_SIZE } from '../files/packet.js';
import { Direction, decodeRecord } from '../record.js';
import { parseQuoted, quotedFlowOf } from './quoted.js';

type Rand = () => number;
const pick = <T>(rand: Rand, items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
const bytes = (rand: Rand, n: number): number[] => Array.from({ length: n }, () => Math.floor(rand() * 256));

/** An IP header of `family` (IPv4 with options now and then, IPv6 with an extension header now and then). */
function ipHeader(
  rand: Rand,
  family: 4 | 6,
  proto: number,
  src: number[],
  dst: number[],
  payload: number,
): number[] {
  if (family === 4) {
    const options = rand() < 0.1 ? [1, 1, 1, 0] : [];
    const ihl = rand() < 0.03 ? 4 : 5 + options.length / 4; // now and then a broken length
    const fragment = rand() < 0.08 ? pick(rand, [0x2000, 0x0010, 0x2010]) : 0;
    const len = 20 + options.length + payload;
    return [0x40 | ihl, 0, len >> 8, len & 255, 0, 1, fragment >> 8, fragment & 255, 64, proto, 0, 0].concat(
      src,
      dst,
      options,
    );
  }
  const ext = rand() < 0.1 ? pick(rand, [0, 43, 44, 60]) : -1;
  const head = [0x60, 0, 0, 0, 0, payload + (ext >= 0 ? 8 : 0), ext >= 0 ? ext : proto, 64].concat(src, dst);
  return ext >= 0 ? head.concat([proto, 0, 0, 0, 0, 0, 0, 0]) : head;
}

function addressOf(rand: Rand, family: 4 | 6): number[] {
  return family === 4
    ? [10, 0, 0, Math.floor(rand() * 4)]
    : [0x20, 1, 0xd, 0xb8, ...new Array<number>(11).fill(0), Math.floor(rand() * 4)];
}

/** One incoming ICMP(v6) message, mostly errors, with a quoted datagram of varied shape, cut anywhere. */
function errorPacket(rand: Rand): Uint8Array {
  const family: 4 | 6 = rand() < 0.5 ? 4 : 6;
  const me = addressOf(rand, family);
  const reporter = addressOf(rand, family);
  const quotedFamily: 4 | 6 = rand() < 0.05 ? (family === 4 ? 6 : 4) : family;
  const quotedSrc = rand() < 0.8 && quotedFamily === family ? me : addressOf(rand, quotedFamily);
  const quotedProto = pick(rand, [
    17,
    6,
    17,
    6,
    quotedFamily === 4 ? 1 : 58,
    quotedFamily === 4 ? 1 : 58,
    47,
  ]);
  let transport: number[];
  if (quotedProto === 1 || quotedProto === 58) {
    const echo = quotedProto === 1 ? [8, 0, 13] : [128, 129];
    const type = rand() < 0.8 ? pick(rand, echo) : pick(rand, quotedProto === 1 ? [3, 11, 5] : [1, 3, 135]);
    transport = [type, 0, 0, 0].concat(bytes(rand, 4), bytes(rand, Math.floor(rand() * 16)));
  } else transport = bytes(rand, 8 + Math.floor(rand() * 12));
  const quoted = ipHeader(
    rand,
    quotedFamily,
    quotedProto,
    quotedSrc,
    addressOf(rand, quotedFamily),
    transport.length,
  ).concat(transport);
  const types = family === 4 ? [3, 11, 3, 11, 4, 5, 12, 0, 8, 13] : [1, 3, 1, 3, 2, 4, 128, 135];
  const type = pick(rand, types);
  const rest = rand() < 0.1 ? [1 + Math.floor(rand() * 4), 0, 0, 0] : [0, 0, 0, 0];
  // ICMPv4 3/11/12 carry an RFC 4884 length in byte 5, ICMPv6 1/3 in byte 4: rest[0] lands there in both.
  const icmp = [type, Math.floor(rand() * 5), 0, 0]
    .concat(family === 4 ? [0, rest[0]!, 0, 0] : rest)
    .concat(quoted);
  const outerProto = family === 4 ? 1 : 58;
  const packet = ipHeader(rand, family, outerProto, reporter, me, icmp.length).concat(icmp);
  const cut = rand() < 0.3 ? Math.floor(rand() * packet.length) : packet.length;
  return new Uint8Array(packet.slice(0, Math.max(cut, family === 4 ? 20 : 40)));
}

/** What attribution does with an error: nothing (null), or look up a socket by this key. */
function decision(
  flow: {
    family: number;
    protocol: string;
    srcPort: number | null;
    dstPort: number | null;
    echoId: number | null;
    src: string;
    dst: string;
  } | null,
): string | null {
  if (!flow) return null;
  if ((flow.protocol === 'icmp' || flow.protocol === 'icmpv6') && flow.echoId !== null)
    return `echo ${flow.family} ${flow.echoId} ${flow.src} ${flow.dst}`;
  if ((flow.protocol === 'udp' || flow.protocol === 'tcp') && flow.srcPort !== null)
    return `${flow.protocol} ${flow.family} ${flow.srcPort} ${flow.src} ${flow.dst} ${flow.dstPort}`;
  return null;
}

/** `count` generated errors, each encoded as an incoming record at offset 0 of `view` (reused). */
function* errorRecords(seed: number, count: number): Generator<{ packet: Uint8Array; view: DataView }> {
  const rand = prng(seed);
  const out = new Uint8Array(MAX_RECORD_SIZE);
  const view = new DataView(out.buffer);
  for (let k = 0; k < count; k++) {
    const packet = errorPacket(rand);
    out.fill(0);
    const meta = { tsNs: 7n, ifindex: 1, dir: Direction.In, origLen: packet.length };
    if (encodeRecord(packet, meta, out, 0) !== null) yield { packet, view };
  }
}

describe('quotedFlowOf', () => {
  it('decides as decodeError does on every shape it answers, and answers the usual ones', () => {
    let answered = 0;
    let records = 0;
    const wrong: string[] = [];
    // The quoted addresses' text as attribution reads it: through an address cache.
    const cache = new AddressCache();
    for (const { packet, view } of errorRecords(4884, 30_000)) {
      records++;
      const quick = quotedFlowOf(view, 0);
      if (quick === undefined) continue;
      answered++;
      const record = decodeRecord(view, 0);
      const flow = decodeError(record, true)?.flow ?? null;
      const slow = flow && flow.src === record.dst ? decision(flow) : null;
      const fast =
        quick === null
          ? null
          : decision({
              ...quick,
              src: cache.text(quick.bytes, quick.srcAt, quick.family),
              dst: cache.text(quick.bytes, quick.dstAt, quick.family),
            });
      if (fast !== slow)
        wrong.push(`${Buffer.from(packet).toString('hex')}: quick ${fast}, decodeError ${slow}`);
    }
    expect(wrong.slice(0, 5)).toEqual([]);
    expect(records).toBeGreaterThan(25_000);
    // The usual shapes are most of these: the quick reader is what attribution runs.
    expect(answered / records).toBeGreaterThan(0.5);
  });

  it("gives decodeError the same report through either reader, and with the insights' address cache", () => {
    let quick = 0;
    let errors = 0;
    const wrong: string[] = [];
    const cache = new CachedDecoder();
    const json = (v: unknown): string =>
      JSON.stringify(v, (_, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x));
    for (const { packet, view } of errorRecords(792, 30_000)) {
      const record = decodeRecord(view, 0);
      const full = decodeError(record, true);
      if (full !== null) errors++;
      if (parseQuoted(record.data, 0, record.data.length, record.family, record.type) !== undefined) quick++;
      const either = decodeError(record);
      const cached = decodeError(record, false, cache.address);
      if (json(either) !== json(full) || json(cached) !== json(full))
        wrong.push(Buffer.from(packet).toString('hex'));
      // The problems' key of the flow, as it was written (an array joined by |, null as nothing).
      const f = full?.flow ?? null;
      const joined =
        f && [f.family, f.protocolNumber, f.src, f.dst, f.srcPort, f.dstPort, f.echoId].join('|');
      if (flowKey(f) !== (joined ?? '?')) wrong.push(`key ${flowKey(f)} for ${joined}`);
    }
    expect(wrong.slice(0, 5)).toEqual([]);
    expect(errors).toBeGreaterThan(15_000);
    expect(quick / errors).toBeGreaterThan(0.4);
  });
});
