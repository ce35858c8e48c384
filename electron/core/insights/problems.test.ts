/**
 * The Problems view's path-MTU check asks the kernel's route for every flow that received a too-big error,
 * in process: no `ip` child process, whose fork holds a large service's event loop (about 50 ms per resident
 * gigabyte). Real parts: real route lookups in this network namespace, real error packets decoded.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { encodeRecord, MAX_RECORD_SIZE } from '../files/packet.js';
import { Direction, decodeRecord } from '../record.js';
import { ProblemTable } from '../answers/flows.js';
import { prng } from '../bench/synth.js';
import { ProblemTracker, routeGet } from './problems.js';

const ME = [192, 168, 1, 10];

/** A Fragmentation Needed (MTU 1400) from 10.0.0.1 to this host, quoting UDP from it to 127.0.0.`k`. */
function tooBig(k: number) {
  const quoted = [0x45, 0, 0, 60, 0, 1, 0x40, 0, 63, 17, 0, 0, ...ME, 127, 0, k >> 8, k & 255];
  const udp = [0x9c, 0x40, 0x82, 0x9d, 0, 40, 0, 0];
  const icmp = [3, 4, 0, 0, 0, 0, 1400 >> 8, 1400 & 255, ...quoted, ...udp];
  const packet = Uint8Array.from([
    0x45,
    0,
    0,
    20 + icmp.length,
    0,
    2,
    0,
    0,
    64,
    1,
    0,
    0,
    10,
    0,
    0,
    1,
    ...ME,
    ...icmp,
  ]);
  const out = new Uint8Array(MAX_RECORD_SIZE);
  // Long ago: the kernel has had time to take the offered MTU (SETTLE_MS), so the route is asked at once.
  const meta = {
    tsNs: 1_700_000_000_000_000_000n + BigInt(k),
    ifindex: 1,
    dir: Direction.In,
    origLen: packet.length,
  };
  encodeRecord(packet, meta, out, 0);
  return decodeRecord(new DataView(out.buffer), 0);
}

/** This process's child processes (every thread's). */
function children(): number[] {
  return readdirSync('/proc/self/task').flatMap((t) =>
    readFileSync(`/proc/self/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number),
  );
}

describe('the path-MTU check of the Problems view', () => {
  it('asks the route of 300 flows in process, at most 32 a push: answers for every one, no child process', async () => {
    const tracker = new ProblemTracker(routeGet, () => undefined);
    for (let k = 1; k <= 300; k++) expect(tracker.add(tooBig(k), k, null)).toBe(true);
    const before = children().length;
    const answered: number[] = [];
    for (let push = 0; push < 30; push++) {
      const listed = tracker.list();
      expect(listed).toHaveLength(300);
      // The old check started an `ip -j route get` per flow here: 300 children at once.
      expect(children().length).toBe(before);
      answered.push(listed.filter((p) => p.pmtu !== null).length);
      if (answered.at(-1) === 300) break;
      // After the first push 268 flows still wait for their check: the next push lists them again.
      if (push === 0) expect(tracker.waitingForRouteCheck).toBe(true);
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(answered.at(-1)).toBe(300);
    for (let i = 1; i < answered.length; i++) expect(answered[i]! - answered[i - 1]!).toBeLessThanOrEqual(32);
    for (const p of tracker.list()) {
      // 127.0.0.0/8 is local: no route MTU, so the offered 1400 is not in use.
      expect(p.pmtu).toMatchObject({ destination: p.flow!.dst, offered: 1400, routeMtu: null, taken: false });
      expect(p.pmtu!.interfaceName).toBe('lo');
    }
  });

  it('lists the newest 500 of 5000 problems, newest first, as a full sort does; keeps at most its bound', () => {
    const rand = prng(5);
    // 5000 flows' errors in capture order, many flows seen again later (a flow seen again is newer).
    const seen: number[] = [];
    for (let i = 0; i < 12_000; i++) seen.push(i < 5000 ? i + 1 : 1 + Math.floor(rand() * 5000));
    const errors = seen.map((k, i) => ({
      ...tooBig(k),
      tsNs: 1_700_000_000_000_000_000n + BigInt(i) * 1000n,
    }));
    const table = new ProblemTable();
    const forgotten: string[] = [];
    const bounded = new ProblemTable(1000, (key) => forgotten.push(key));
    for (const r of errors) {
      table.add(r);
      bounded.add(r);
    }
    const sorted = table.list().sort((a, b) => (a.lastNs < b.lastNs ? 1 : a.lastNs > b.lastNs ? -1 : 0));
    expect(sorted).toHaveLength(5000);
    expect(table.newest(500)).toEqual(sorted.slice(0, 500));
    expect(table.newest(10_000)).toEqual(sorted);
    expect(table.newest(0)).toEqual([]);
    // The bounded table holds the 1000 flows seen last, as they are in the whole table.
    expect(bounded.list()).toHaveLength(1000);
    // (a flow forgotten and seen again counts from then on: compare which flows, and when last seen)
    const which = (ps: { flowText: string; lastNs: bigint }[]) => ps.map((p) => `${p.flowText} ${p.lastNs}`);
    expect(which(bounded.newest(1000))).toEqual(which(sorted.slice(0, 1000)));
    expect(forgotten.length).toBeGreaterThanOrEqual(4000); // each flow forgotten when 1000 newer ones were seen
  });

  it('rejects what is not an address, and a destination without a route, with a message', async () => {
    await expect(routeGet('-h')).rejects.toThrow(/not an IP address/);
    await expect(routeGet('')).rejects.toThrow(/not an IP address/);
    const v6 = await routeGet('::1');
    expect(v6.dev).toBe('lo');
  });
});
