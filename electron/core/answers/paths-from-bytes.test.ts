/**
 * Passive traceroute fed as the insights tap feeds it: echo requests and replies read from the record's bytes
 * (`PathBuilder.echoAt`: no decoded record, runs found by a hash of their addresses), errors decoded. Over
 * generated traffic of both families (traceroute -I runs through routers with loss and replies that arrive
 * before the first Time Exceeded, plain pings to thousands of hosts, a long ping past the probe window),
 * it finds every path as the generator built it, and the same paths as decoded records give.
 */
import { describe, expect, it } from 'vitest';
import { prng } from '../bench/synth.js';
import { encodeRecord, MAX_RECORD_SIZE } from '../files/packet.js';
import { Direction, decodeRecord, forEachRecord } from '../record.js';
import { PathBuilder } from './traceroute.js';

type Rand = () => number;

const LOCAL4 = [192, 168, 1, 10];
const LOCAL6 = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];

function v4(n: number): number[] {
  return [10, (n >> 16) & 255, (n >> 8) & 255, n & 255];
}
function v6(n: number): number[] {
  return [
    0x20,
    1,
    0xd,
    0xb8,
    0,
    1,
    0,
    0,
    0,
    0,
    0,
    0,
    (n >> 24) & 255,
    (n >> 16) & 255,
    (n >> 8) & 255,
    n & 255,
  ];
}
function text(bytes: number[]): string {
  if (bytes.length === 4) return bytes.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}

/** An IP packet of `family` from `src` to `dst` carrying ICMP(v6) `icmp`, with `ttl`. */
function ip(family: 4 | 6, src: number[], dst: number[], ttl: number, icmp: number[]): Uint8Array {
  const head =
    family === 4
      ? [0x45, 0, (20 + icmp.length) >> 8, (20 + icmp.length) & 255, 0, 1, 0, 0, ttl, 1, 0, 0, ...src, ...dst]
      : [0x60, 0, 0, 0, icmp.length >> 8, icmp.length & 255, 58, ttl, ...src, ...dst];
  return Uint8Array.from([...head, ...icmp]);
}
function echo(family: 4 | 6, request: boolean, id: number, seq: number): number[] {
  const type = family === 4 ? (request ? 8 : 0) : request ? 128 : 129;
  return [type, 0, 0, 0, id >> 8, id & 255, seq >> 8, seq & 255, 1, 2, 3, 4, 5, 6, 7, 8];
}
/** A Time Exceeded quoting the probe (its IP header with TTL 1, then its first 8 bytes). */
function timeExceeded(family: 4 | 6, probe: Uint8Array): number[] {
  const quoted = [...probe.subarray(0, (family === 4 ? 20 : 40) + 8)];
  quoted[family === 4 ? 8 : 7] = 1;
  return [family === 4 ? 11 : 3, 0, 0, 0, 0, 0, 0, 0, ...quoted];
}

interface Packet {
  ns: bigint;
  bytes: Uint8Array;
  dir: number;
}
interface Expected {
  family: 4 | 6;
  destination: string;
  hops: { ttl: number; address: string; sent: number; answered: number }[];
  /** Whether the destination answered (unset: the last hop is the destination's). */
  reached?: boolean;
}

/** A traceroute -I run from this host through `routers` to `target`: 3 probes per TTL, some lost. */
function traceroute(
  rand: Rand,
  family: 4 | 6,
  id: number,
  routers: number[][],
  target: number[],
  t0: bigint,
  out: Packet[],
): Expected {
  const me = family === 4 ? LOCAL4 : LOCAL6;
  const hops: Expected['hops'] = [];
  let seq = 1;
  // Routers answer slowly in some runs: the destination's replies then come before the first Time Exceeded.
  const routerDelay = rand() < 0.5 ? 50_000_000n : 500_000n;
  for (let ttl = 1; ttl <= routers.length + 1; ttl++) {
    const atDestination = ttl === routers.length + 1;
    let answered = 0;
    for (let q = 0; q < 3; q++, seq++) {
      const sentNs = t0 + BigInt(ttl * 3 + q) * 1_000_000n;
      const probe = ip(family, me, target, ttl, echo(family, true, id, seq));
      out.push({ ns: sentNs, bytes: probe, dir: Direction.Out });
      if (rand() < 0.15) continue; // lost
      answered++;
      const answer = atDestination
        ? ip(family, target, me, 60, echo(family, false, id, seq))
        : ip(family, routers[ttl - 1]!, me, 250, timeExceeded(family, probe));
      out.push({ ns: sentNs + (atDestination ? 200_000n : routerDelay), bytes: answer, dir: Direction.In });
    }
    hops.push({ ttl, address: text(atDestination ? target : routers[ttl - 1]!), sent: 3, answered });
  }
  return { family, destination: text(target), hops };
}

/**
 * `ping -t ttl` through `routers` (the one at hop `ttl` answers its Time Exceeded, some lost), after
 * `plain` requests with TTL 64 that the target answered (0: none; so a run's first TTL is not its only one).
 */
function pingWithTtl(
  rand: Rand,
  family: 4 | 6,
  id: number,
  ttl: number,
  router: number[],
  target: number[],
  plain: number,
  t0: bigint,
  out: Packet[],
): Expected {
  const me = family === 4 ? LOCAL4 : LOCAL6;
  let seq = 1;
  for (; seq <= plain; seq++) {
    const ns = t0 + BigInt(seq) * 1_000_000n;
    out.push({ ns, bytes: ip(family, me, target, 64, echo(family, true, id, seq)), dir: Direction.Out });
    const reply = ip(family, target, me, 60, echo(family, false, id, seq));
    out.push({ ns: ns + 300_000n, bytes: reply, dir: Direction.In });
  }
  let answered = 0;
  for (let q = 0; q < 20; q++, seq++) {
    const ns = t0 + BigInt(seq) * 1_000_000n;
    const probe = ip(family, me, target, ttl, echo(family, true, id, seq));
    out.push({ ns, bytes: probe, dir: Direction.Out });
    if (rand() < 0.2) continue;
    answered++;
    out.push({
      ns: ns + 400_000n,
      bytes: ip(family, router, me, 250, timeExceeded(family, probe)),
      dir: Direction.In,
    });
  }
  const hops = [{ ttl, address: text(router), sent: 20, answered }];
  if (plain > 0) hops.push({ ttl: 64, address: text(target), sent: plain, answered: plain });
  return { family, destination: text(target), hops, reached: plain > 0 };
}

function encode(packets: Packet[]): ArrayBuffer[] {
  packets.sort((a, b) => (a.ns < b.ns ? -1 : a.ns > b.ns ? 1 : 0));
  const batches: ArrayBuffer[] = [];
  for (let i = 0; i < packets.length; i += 4096) {
    const part = packets.slice(i, i + 4096);
    const buf = new Uint8Array(part.length * MAX_RECORD_SIZE);
    let at = 0;
    for (const p of part) {
      const meta = { tsNs: p.ns, ifindex: 1, dir: p.dir, origLen: p.bytes.length };
      at += encodeRecord(p.bytes, meta, buf, at)!;
    }
    batches.push(buf.slice(0, at).buffer);
  }
  return batches;
}

describe('passive traceroute from the records bytes', () => {
  it('finds every traced path among pings to thousands of hosts, as decoded records give it', () => {
    const rand = prng(17);
    const packets: Packet[] = [];
    const expected: Expected[] = [];
    const t0 = 1_700_000_000_000_000_000n;
    // Traceroutes of both families, spread over the capture, each through 2 to 6 routers.
    for (let k = 0; k < 40; k++) {
      const family: 4 | 6 = k % 2 ? 6 : 4;
      const addr = family === 4 ? v4 : v6;
      const routers = Array.from({ length: 2 + (k % 5) }, (_, i) => addr(0x10000 + k * 16 + i));
      const start = t0 + BigInt(k) * 250_000_000n;
      // Runs to different destinations share identifiers (as one mtr to several hosts does).
      expected.push(traceroute(rand, family, 0x4000 + (k % 10), routers, addr(0x20000 + k), start, packets));
    }
    // ping -t: probes of one TTL only, some after plain requests (whose replies then end the path at TTL 64).
    for (let k = 0; k < 10; k++) {
      const family: 4 | 6 = k % 2 ? 6 : 4;
      const addr = family === 4 ? v4 : v6;
      const start = t0 + BigInt(k) * 300_000_000n + 7_000_000n;
      const router = addr(0x31000 + k);
      expected.push(
        pingWithTtl(
          rand,
          family,
          0x5000 + k,
          2 + (k % 3),
          router,
          addr(0x30000 + k),
          k < 6 ? 0 : 4,
          start,
          packets,
        ),
      );
    }
    // Plain pings to 6000 hosts (more runs than the builder keeps), answered, over 10 s.
    for (let h = 0; h < 6000; h++) {
      const family: 4 | 6 = h % 3 ? 4 : 6;
      const addr = family === 4 ? v4 : v6;
      const me = family === 4 ? LOCAL4 : LOCAL6;
      for (let seq = 1; seq <= 3; seq++) {
        const ns = t0 + BigInt(Math.floor(rand() * 10e9));
        packets.push({
          ns,
          bytes: ip(family, me, addr(h), 64, echo(family, true, h % 64, seq)),
          dir: Direction.Out,
        });
        packets.push({
          ns: ns + 300_000n,
          bytes: ip(family, addr(h), me, 60, echo(family, false, h % 64, seq)),
          dir: Direction.In,
        });
      }
    }
    // A long ping (3000 requests, past the probe window) and requests that only came in.
    for (let seq = 0; seq < 3000; seq++) {
      const ns = t0 + BigInt(seq) * 3_000_000n;
      packets.push({ ns, bytes: ip(4, LOCAL4, v4(99), 64, echo(4, true, 7, seq)), dir: Direction.Out });
      packets.push({
        ns: ns + 1n,
        bytes: ip(4, v4(98), LOCAL4, 64, echo(4, true, 8, seq)),
        dir: Direction.In,
      });
    }
    const batches = encode(packets);

    const fromBytes = new PathBuilder();
    const decoded = new PathBuilder();
    let echoes = 0;
    for (const batch of batches)
      forEachRecord(batch, (view, offset) => {
        const r = decodeRecord(view, offset);
        decoded.add(r);
        if (r.hasEcho && [0, 8, 128, 129].includes(r.type)) {
          echoes++;
          fromBytes.echoAt(view, offset);
        } else fromBytes.add(r);
      });
    expect(echoes).toBeGreaterThan(40_000);

    const paths = fromBytes.paths();
    expect(paths).toEqual(decoded.paths());
    // Exactly the traceroutes, each hop as the generator made it; the pings make no path.
    expect(paths).toHaveLength(expected.length);
    for (const want of expected) {
      const path = paths.find((p) => p.destination === want.destination);
      expect(path, want.destination).toBeDefined();
      expect(path!.family).toBe(want.family);
      expect(path!.inferred).toBe(false);
      const reached = want.reached ?? want.hops.at(-1)!.answered > 0;
      expect(path!.reached).toBe(reached);
      // The path ends at the destination, or at the last hop that answered.
      const last = reached
        ? want.hops.at(-1)!.ttl
        : Math.max(...want.hops.filter((h) => h.answered).map((h) => h.ttl));
      const hops = want.hops.filter((h) => h.ttl <= last);
      expect(
        path!.hops.map((h) => ({
          ttl: h.ttl,
          address: h.addresses[0] ?? '*',
          sent: h.sent,
          answered: h.answered,
        })),
      ).toEqual(hops.map((h) => ({ ...h, address: h.answered > 0 ? h.address : '*' })));
      for (const h of path!.hops) {
        expect(h.rttMs).toHaveLength(h.answered);
        for (const rtt of h.rttMs) expect(rtt).toBeGreaterThan(0);
      }
    }
  });
});
