/**
 * The kernel buffer a live capture asks for (OpenConfig.ringBytes).
 *
 * The module keeps a ring per possible CPU; its own default is 1 MiB each, 13 ms of a 500 k records/s flood
 * landing on one CPU. The reader thread drains the rings between waits, and on a busy machine (two cores, the
 * event loop, collector and file threads runnable) it waited on the run queue longer than that: the ring filled
 * and the kernel dropped records while the service itself kept up. So a capture asks for up to 4 MiB a CPU,
 * 16 MiB over all CPUs at most (2 CPUs: 4 MiB each; 8: 2 MiB; 16 and more: the module's 1 MiB).
 * AF_PACKET keeps the helper's default (4 MiB a socket).
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import type { OpenConfig } from '../../native/index.js';

const MIB = 1 << 20;
/** A module ring per CPU: at most this... */
export const MODULE_RING_MAX = 4 * MIB;
/** ...and at least the module's own default... */
export const MODULE_RING_MIN = MIB;
/** ...within this over all CPUs. */
export const MODULE_RINGS_TOTAL = 16 * MIB;

/**
 * CPUs the module makes rings for (the kernel's possible CPUs, /sys/devices/system/cpu/possible, e.g. "0-3,8"),
 * or the online CPUs when that cannot be read.
 */
export function possibleCpus(
  read: () => string = () => readFileSync('/sys/devices/system/cpu/possible', 'utf8'),
): number {
  try {
    let n = 0;
    for (const part of read().trim().split(',')) {
      const m = /^(\d+)(?:-(\d+))?$/.exec(part);
      if (!m) throw new Error(`unexpected CPU list part "${part}"`);
      n += m[2] === undefined ? 1 : Number(m[2]) - Number(m[1]) + 1;
    }
    if (n > 0) return n;
  } catch {
    // fall through
  }
  return Math.max(1, cpus().length);
}

/** Bytes of each module ring for `ncpus` CPUs: a power of two (the module's rings are) within the bounds above. */
export function moduleRingBytes(ncpus = possibleCpus()): number {
  let bytes = MODULE_RING_MAX;
  while (bytes > MODULE_RING_MIN && bytes * ncpus > MODULE_RINGS_TOTAL) bytes /= 2;
  return bytes;
}

/** What a live capture from `source` asks of the kernel: the module's ring size; nothing for AF_PACKET. */
export function kernelBuffer(source: OpenConfig['source']): Pick<OpenConfig, 'ringBytes'> {
  return source === 'module' ? { ringBytes: moduleRingBytes() } : {};
}
