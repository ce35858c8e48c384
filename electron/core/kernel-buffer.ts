/**
 * The kernel buffer a live capture asks for (OpenConfig.ringBytes).
 *
 * Chosen here by default: the module keeps a ring per possible CPU; its own default is 1 MiB each, 13 ms of a
 * 500 k records/s flood landing on one CPU. The reader thread drains the rings between waits, and on a busy
 * machine (two cores, the event loop, collector and file threads runnable) it waited on the run queue longer
 * than that: the ring filled and the kernel dropped records while the service itself kept up. So a capture
 * asks for up to 4 MiB a CPU, 16 MiB over all CPUs at most (2 CPUs: 4 MiB each; 8: 2 MiB; 16 and more: the
 * module's 1 MiB). AF_PACKET keeps the helper's default (4 MiB a socket).
 *
 * Or chosen by the user (capture.start `bufferBytes`, `icmpcap capture -B MiB`, as tshark's -B): the kernel
 * memory of the capture's rings all together, as dumpcap's one buffer, whatever the source keeps it in. The
 * module splits it over its per-CPU rings, each a power of two rounded down (so the rings never take more than
 * asked); AF_PACKET over the helper's sockets (one for all interfaces, or one per interface named). A size
 * outside what the source takes on this machine is a BufferSizeError naming the range.
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import type { OpenConfig } from '../../native/index.js';
import type { SourceKind } from '../common/contract.js';
import { RECORD_HEADER_SIZE, alignRecord } from './record.js';

const KIB = 1 << 10;
const MIB = 1 << 20;
const GIB = 1 << 30;
/** A module ring per CPU: at most this... */
export const MODULE_RING_MAX = 4 * MIB;
/** ...and at least the module's own default... */
export const MODULE_RING_MIN = MIB;
/** ...within this over all CPUs. */
export const MODULE_RINGS_TOTAL = 16 * MIB;

/** What the module takes for one ring's data (kernel/internal.h ICMPCAP_MIN/MAX_DATA_SIZE), a power of two. */
export const MODULE_RING_FLOOR = 4 * KIB;
export const MODULE_RING_CEILING = 64 * MIB;
/** Each module ring's header pages (ICMPCAP_RING_HDR_SIZE), counted against max_ring_bytes with the data. */
const MODULE_RING_HEADER = 8 * KIB;
/** What icmpcap-helper takes for the packet ring of one socket (--ring-bytes)... */
export const AFPACKET_RING_MIN = 64 * KIB;
export const AFPACKET_RING_MAX = GIB;
/** ...and for all its sockets together (native/src/core/helper_protocol.h ICMPCAP_HELPER_MAX_RING_TOTAL). */
export const AFPACKET_RINGS_TOTAL = GIB;
/** The smallest buffer a user names: tshark's -B counts whole MiB. */
export const BUFFER_MIN = MIB;

/**
 * Rings the module makes: one per possible CPU number, 0 to the highest in /sys/devices/system/cpu/possible
 * (e.g. "0-3,8": 9, as the kernel's nr_cpu_ids), or the online CPUs when that cannot be read.
 */
export function moduleRingCount(
  read: () => string = () => readFileSync('/sys/devices/system/cpu/possible', 'utf8'),
): number {
  try {
    let highest = -1;
    for (const part of read().trim().split(',')) {
      const m = /^(\d+)(?:-(\d+))?$/.exec(part);
      if (!m) throw new Error(`unexpected CPU list part "${part}"`);
      highest = Math.max(highest, Number(m[2] ?? m[1]));
    }
    if (highest >= 0) return highest + 1;
  } catch {
    // fall through
  }
  return Math.max(1, cpus().length);
}

/** The module's limit on all captures' rings together (max_ring_bytes in /proc/net/icmpcap); null: unknown. */
export function moduleMaxRingBytes(
  read: () => string = () => readFileSync('/proc/net/icmpcap', 'utf8'),
): number | null {
  try {
    const m = /^max_ring_bytes (\d+)$/m.exec(read());
    return m ? Number(m[1]) : null;
  } catch {
    return null; // no module loaded: it is not the source then
  }
}

/** Bytes of each module ring for `rings` rings: a power of two (the module's rings are) within the bounds above. */
export function moduleRingBytes(rings = moduleRingCount()): number {
  let bytes = MODULE_RING_MAX;
  while (bytes > MODULE_RING_MIN && bytes * rings > MODULE_RINGS_TOTAL) bytes /= 2;
  return bytes;
}

/** A buffer size outside what the source takes here; the message gives the range in MiB and why. */
export class BufferSizeError extends RangeError {
  override readonly name = 'BufferSizeError';
  constructor(
    message: string,
    readonly minMiB: number,
    readonly maxMiB: number,
  ) {
    super(message);
  }
}

export interface BufferRequest {
  /** All of the capture's kernel rings together, in bytes. */
  bytes: number;
  /** Interfaces named (AF_PACKET: a socket and its ring for each; none: one for all). */
  interfaces?: readonly string[];
  /** Bytes kept per packet: a module ring must hold two records of this size. Default 256, as the addon's. */
  snaplen?: number;
}

/** What the module's side of this machine says (read when not given; tests give their own). */
export interface ModuleFacts {
  rings: number;
  maxRingBytes: number | null;
}

/** How a buffer is laid out: `rings` rings of `ringBytes` each. */
export interface BufferPlan {
  ringBytes: number;
  rings: number;
}

function pow2Floor(n: number): number {
  return 2 ** Math.floor(Math.log2(n));
}

function pow2Ceil(n: number): number {
  return 2 ** Math.ceil(Math.log2(n));
}

/** A size as people write it: `64 KiB`, `8 MiB`, `1 GiB`, else in bytes. */
export function sizeText(bytes: number): string {
  if (bytes >= GIB && bytes % GIB === 0) return `${bytes / GIB} GiB`;
  if (bytes >= MIB && bytes % MIB === 0) return `${bytes / MIB} MiB`;
  if (bytes >= KIB && bytes % KIB === 0) return `${bytes / KIB} KiB`;
  return `${bytes} bytes`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * How `request.bytes` is laid out for `source`: the module's rings (one per CPU) of a power of two each, or the
 * helper's packet ring per socket. Throws a BufferSizeError when the size is outside what the source takes.
 */
export function planBuffer(
  source: SourceKind,
  request: BufferRequest,
  facts: () => ModuleFacts = () => ({ rings: moduleRingCount(), maxRingBytes: moduleMaxRingBytes() }),
): BufferPlan {
  let rings: number;
  let min: number;
  let max: number;
  let why: string;
  let name: string;
  if (source === 'module') {
    const module = facts();
    rings = module.rings;
    // The module refuses a ring that cannot hold two records of snaplen bytes (kernel/genl.c).
    const recordBytes = alignRecord(RECORD_HEADER_SIZE + (request.snaplen ?? 256));
    const ringFloor = Math.max(MODULE_RING_FLOOR, pow2Ceil(2 * recordBytes));
    min = rings * ringFloor;
    max = rings * MODULE_RING_CEILING;
    name = 'the module';
    why = `${plural(rings, 'ring')}, one per CPU, of ${sizeText(ringFloor)} to ${sizeText(MODULE_RING_CEILING)} each`;
    if (module.maxRingBytes !== null && module.maxRingBytes - rings * MODULE_RING_HEADER < max) {
      max = module.maxRingBytes - rings * MODULE_RING_HEADER;
      why += `; all captures together at most ${sizeText(module.maxRingBytes)}, the module parameter max_ring_bytes`;
    }
  } else {
    rings = Math.max(1, new Set(request.interfaces ?? []).size);
    min = rings * AFPACKET_RING_MIN;
    max = Math.min(rings * AFPACKET_RING_MAX, AFPACKET_RINGS_TOTAL);
    name = 'AF_PACKET';
    why =
      `${rings === 1 ? 'one packet ring' : `${rings} packet rings, one per interface,`} of ` +
      `${sizeText(AFPACKET_RING_MIN)} to ${sizeText(AFPACKET_RING_MAX)}, ${sizeText(AFPACKET_RINGS_TOTAL)} in all`;
  }
  // The range in whole MiB, as the user gives it.
  const minMiB = Math.ceil(Math.max(min, BUFFER_MIN) / MIB);
  const maxMiB = Math.floor(max / MIB);
  const { bytes } = request;
  if (!Number.isFinite(bytes) || bytes < minMiB * MIB || bytes > maxMiB * MIB) {
    const takes = maxMiB >= minMiB ? `takes ${minMiB} to ${maxMiB} MiB` : 'has no room for a buffer';
    throw new BufferSizeError(`${name} ${takes} on this machine (${why})`, minMiB, maxMiB);
  }
  const share = Math.floor(bytes / rings);
  return { rings, ringBytes: source === 'module' ? pow2Floor(share) : share };
}

/**
 * `request` for the first of `sources` that takes it here, e.g. before the source is chosen (`serve -B --no-start`:
 * the user picks one later). Throws a BufferSizeError when none does: that source's own for one source, else one
 * naming each source's range (minMiB/maxMiB: the smallest and largest any of them takes).
 */
export function planForAny(
  sources: readonly SourceKind[],
  request: BufferRequest,
  facts?: () => ModuleFacts,
): { source: SourceKind; plan: BufferPlan } {
  const refusals: BufferSizeError[] = [];
  for (const source of sources) {
    try {
      return { source, plan: planBuffer(source, request, facts) };
    } catch (err) {
      if (!(err instanceof BufferSizeError)) throw err;
      refusals.push(err);
    }
  }
  if (refusals.length === 1) throw refusals[0]!;
  if (refusals.length === 0) throw new RangeError('planForAny needs a source');
  throw new BufferSizeError(
    `no capture source takes it here: ${refusals.map((r) => r.message).join('; ')}`,
    Math.min(...refusals.map((r) => r.minMiB)),
    Math.max(...refusals.map((r) => r.maxMiB)),
  );
}

/**
 * What a live capture from `source` asks of the kernel: `request` laid out by planBuffer (throws a
 * BufferSizeError when it is out of range), or without one the module's ring size chosen above and nothing
 * for AF_PACKET (the helper's default).
 */
export function kernelBuffer(
  source: SourceKind,
  request?: BufferRequest,
  facts?: () => ModuleFacts,
): Pick<OpenConfig, 'ringBytes'> {
  if (request) return { ringBytes: planBuffer(source, request, facts).ringBytes };
  return source === 'module' ? { ringBytes: moduleRingBytes(facts?.().rings) } : {};
}
