import { cpus } from 'node:os';
import { describe, expect, it } from 'vitest';
import {
  BufferSizeError,
  kernelBuffer,
  moduleMaxRingBytes,
  moduleRingBytes,
  moduleRingCount,
  planBuffer,
  planForAny,
} from './kernel-buffer.js';

const KIB = 1 << 10;
const MIB = 1 << 20;
const GIB = 1 << 30;

/** A machine whose module has `rings` rings and, when given, that max_ring_bytes. */
const machine =
  (rings: number, maxRingBytes: number | null = null) =>
  () => ({ rings, maxRingBytes });

function refusal(f: () => unknown): BufferSizeError {
  try {
    f();
  } catch (err) {
    if (err instanceof BufferSizeError) return err;
    throw err;
  }
  throw new Error('no BufferSizeError');
}

describe('the kernel buffer a live capture asks for', () => {
  it('counts the module rings as the kernel makes them: one per possible CPU number', () => {
    expect(moduleRingCount(() => '0-1\n')).toBe(2);
    expect(moduleRingCount(() => '0\n')).toBe(1);
    // nr_cpu_ids: the highest possible CPU + 1, holes included.
    expect(moduleRingCount(() => '0-3,8,10-11\n')).toBe(12);
    // Unreadable or unexpected: the online CPUs.
    expect(moduleRingCount(() => 'all of them')).toBe(cpus().length);
    expect(
      moduleRingCount(() => {
        throw new Error('ENOENT');
      }),
    ).toBe(cpus().length);
    // This machine's own list parses.
    expect(moduleRingCount()).toBeGreaterThanOrEqual(1);
  });

  it("reads the module's max_ring_bytes from /proc/net/icmpcap, none without the module", () => {
    expect(moduleMaxRingBytes(() => 'version 2\nring_bytes 0\nmax_ring_bytes 268435456\nsub 1 ...\n')).toBe(
      256 * MIB,
    );
    expect(moduleMaxRingBytes(() => 'version 2\n')).toBeNull();
    expect(
      moduleMaxRingBytes(() => {
        throw new Error('ENOENT');
      }),
    ).toBeNull();
  });

  it('asks for 4 MiB a CPU, 16 MiB over all, never below the module default of 1 MiB', () => {
    expect(moduleRingBytes(1)).toBe(4 * MIB);
    expect(moduleRingBytes(2)).toBe(4 * MIB);
    expect(moduleRingBytes(4)).toBe(4 * MIB);
    expect(moduleRingBytes(6)).toBe(2 * MIB);
    expect(moduleRingBytes(8)).toBe(2 * MIB);
    expect(moduleRingBytes(16)).toBe(MIB);
    expect(moduleRingBytes(256)).toBe(MIB);
    expect(kernelBuffer('module')).toEqual({ ringBytes: moduleRingBytes() });
    expect(kernelBuffer('module', undefined, machine(6))).toEqual({ ringBytes: 2 * MIB });
    expect(kernelBuffer('afpacket')).toEqual({}); // the helper's 4 MiB a socket
  });
});

describe('a buffer the user names (-B MiB): all the kernel rings together', () => {
  it('splits it over the module rings, each a power of two rounded down: never more than asked', () => {
    const plan = (mib: number, rings: number): [number, number] => {
      const p = planBuffer('module', { bytes: mib * MIB }, machine(rings));
      return [p.rings, p.ringBytes];
    };
    expect(plan(64, 2)).toEqual([2, 32 * MIB]);
    expect(plan(64, 6)).toEqual([6, 8 * MIB]); // 10.7 MiB each rounds down to 8
    expect(plan(1, 1)).toEqual([1, MIB]);
    expect(plan(1, 2)).toEqual([2, 512 * KIB]);
    expect(plan(3, 2)).toEqual([2, MIB]);
    expect(plan(128, 2)).toEqual([2, 64 * MIB]);
    expect(plan(1, 256)).toEqual([256, 4 * KIB]);
    for (const [mib, rings] of [
      [1, 1],
      [5, 3],
      [100, 7],
      [1000, 64],
    ] as const) {
      const [n, each] = plan(mib, rings);
      expect(n * each).toBeLessThanOrEqual(mib * MIB);
      expect(n * each * 2).toBeGreaterThan(mib * MIB); // within a factor of two
      expect(Math.log2(each) % 1).toBe(0);
    }
    expect(kernelBuffer('module', { bytes: 64 * MIB }, machine(2))).toEqual({ ringBytes: 32 * MIB });
  });

  it("gives AF_PACKET's helper the whole buffer for all interfaces, or an equal share per interface named", () => {
    expect(kernelBuffer('afpacket', { bytes: 64 * MIB })).toEqual({ ringBytes: 64 * MIB });
    expect(kernelBuffer('afpacket', { bytes: 64 * MIB, interfaces: [] })).toEqual({ ringBytes: 64 * MIB });
    expect(planBuffer('afpacket', { bytes: 64 * MIB, interfaces: ['eth0', 'eth1'] })).toEqual({
      rings: 2,
      ringBytes: 32 * MIB,
    });
    // The same interface twice is one socket (the addon opens one).
    expect(planBuffer('afpacket', { bytes: 3 * MIB, interfaces: ['eth0', 'eth0', 'wlan0'] })).toEqual({
      rings: 2,
      ringBytes: 1.5 * MIB,
    });
    expect(kernelBuffer('afpacket', { bytes: GIB })).toEqual({ ringBytes: GIB });
  });

  it('refuses what the module cannot take here, naming the range in MiB and why', () => {
    // 2 rings of at most 64 MiB.
    const big = refusal(() => planBuffer('module', { bytes: 129 * MIB }, machine(2)));
    expect(big.message).toBe(
      'the module takes 1 to 128 MiB on this machine (2 rings, one per CPU, of 4 KiB to 64 MiB each)',
    );
    expect([big.minMiB, big.maxMiB]).toEqual([1, 128]);
    expect(() => planBuffer('module', { bytes: 128 * MIB }, machine(2))).not.toThrow();
    // A ring must hold two records of snaplen bytes: 65535 needs 256 KiB rings, 2 MiB over 8 CPUs.
    const snap = refusal(() => planBuffer('module', { bytes: MIB, snaplen: 65535 }, machine(8)));
    expect(snap.message).toMatch(
      /^the module takes 2 to 512 MiB on this machine \(8 rings, .* of 256 KiB to/,
    );
    expect(planBuffer('module', { bytes: 2 * MIB, snaplen: 65535 }, machine(8)).ringBytes).toBe(256 * KIB);
    // Many CPUs: 4 KiB a ring over 512 of them is 2 MiB at least.
    expect(refusal(() => planBuffer('module', { bytes: MIB }, machine(512))).minMiB).toBe(2);
    // max_ring_bytes (all captures, ring headers included) bounds it below 64 MiB a ring.
    const capped = refusal(() => planBuffer('module', { bytes: 100 * MIB }, machine(2, 64 * MIB)));
    expect(capped.message).toBe(
      'the module takes 1 to 63 MiB on this machine (2 rings, one per CPU, of 4 KiB to 64 MiB each; ' +
        'all captures together at most 64 MiB, the module parameter max_ring_bytes)',
    );
    expect(planBuffer('module', { bytes: 63 * MIB }, machine(2, 64 * MIB)).ringBytes).toBe(16 * MIB);
    expect(refusal(() => planBuffer('module', { bytes: MIB }, machine(64, 256 * KIB))).message).toMatch(
      /^the module has no room for a buffer on this machine/,
    );
  });

  it('refuses what AF_PACKET cannot take: 64 KiB to 1 GiB a ring, 1 GiB in all', () => {
    const big = refusal(() => planBuffer('afpacket', { bytes: 1025 * MIB }));
    expect(big.message).toBe(
      'AF_PACKET takes 1 to 1024 MiB on this machine (one packet ring of 64 KiB to 1 GiB, 1 GiB in all)',
    );
    expect(refusal(() => planBuffer('afpacket', { bytes: 2 * GIB, interfaces: ['a', 'b'] })).maxMiB).toBe(
      1024,
    );
    // 64 interfaces: 64 KiB each is 4 MiB at least.
    const many = Array.from({ length: 64 }, (_, i) => `veth${i}`);
    const small = refusal(() => planBuffer('afpacket', { bytes: 3 * MIB, interfaces: many }));
    expect(small.message).toMatch(
      /^AF_PACKET takes 4 to 1024 MiB on this machine \(64 packet rings, one per/,
    );
    expect(planBuffer('afpacket', { bytes: 4 * MIB, interfaces: many }).ringBytes).toBe(64 * KIB);
  });

  it('refuses sizes no source takes: below 1 MiB, negative, not a number', () => {
    for (const bytes of [0, -MIB, MIB - 1, NaN, Infinity, -Infinity])
      for (const source of ['module', 'afpacket'] as const)
        expect(() => planBuffer(source, { bytes }, machine(2)), `${source} ${bytes}`).toThrow(
          BufferSizeError,
        );
  });
});

describe('a buffer before the source is chosen (serve -B --no-start)', () => {
  it('is laid out for the first source that takes it, and refused with every range when none does', () => {
    expect(planForAny(['module', 'afpacket'], { bytes: 64 * MIB }, machine(2))).toEqual({
      source: 'module',
      plan: { rings: 2, ringBytes: 32 * MIB },
    });
    // More than the module's 2 rings hold, within AF_PACKET's 1 GiB.
    expect(planForAny(['module', 'afpacket'], { bytes: 512 * MIB }, machine(2)).source).toBe('afpacket');
    const none = refusal(() => planForAny(['module', 'afpacket'], { bytes: 2 * GIB }, machine(2)));
    expect(none.message).toBe(
      'no capture source takes it here: the module takes 1 to 128 MiB on this machine (2 rings, one per CPU, ' +
        'of 4 KiB to 64 MiB each); AF_PACKET takes 1 to 1024 MiB on this machine (one packet ring of 64 KiB to ' +
        '1 GiB, 1 GiB in all)',
    );
    expect([none.minMiB, none.maxMiB]).toEqual([1, 1024]);
    // One source: its own refusal, as capture.start gives it.
    const one = refusal(() => planForAny(['afpacket'], { bytes: 1025 * MIB }));
    expect(one.message).toBe(refusal(() => planBuffer('afpacket', { bytes: 1025 * MIB })).message);
  });
});
