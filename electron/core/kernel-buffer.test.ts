import { cpus } from 'node:os';
import { describe, expect, it } from 'vitest';
import { kernelBuffer, moduleRingBytes, possibleCpus } from './kernel-buffer.js';

const MIB = 1 << 20;

describe('the kernel buffer a live capture asks for', () => {
  it('counts the possible CPUs as the kernel lists them', () => {
    expect(possibleCpus(() => '0-1\n')).toBe(2);
    expect(possibleCpus(() => '0\n')).toBe(1);
    expect(possibleCpus(() => '0-3,8,10-11\n')).toBe(7);
    // Unreadable or unexpected: the online CPUs.
    expect(possibleCpus(() => 'all of them')).toBe(cpus().length);
    expect(
      possibleCpus(() => {
        throw new Error('ENOENT');
      }),
    ).toBe(cpus().length);
    // This machine's own list parses.
    expect(possibleCpus()).toBeGreaterThanOrEqual(1);
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
    expect(kernelBuffer('afpacket')).toEqual({}); // the helper's 4 MiB a socket
  });
});
