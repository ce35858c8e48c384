// Types of native/bench.js (bench and tests only).
import type { Session } from './index.js';

export interface BenchSessionOptions {
  /**
   * Records per second (paced), arriving in a modelled kernel ring of `ringBytes` (default 1 MiB, the module's
   * per-CPU ring) that is drained only while the bounded queue to JavaScript has room; what arrives while it is
   * full is dropped and counted in stats().droppedKernel. 0 or absent: as fast as the queue takes them, no drops.
   */
  rate?: number;
  ringBytes?: number;
  /** Records (record format) to send in turn, each with a fresh timestamp, instead of capLen bytes of 0x45. */
  template?: ArrayBuffer;
}

/** As index.js's: batches that may wait in JavaScript at once before the reader holds back. */
export const MAX_HELD_BATCHES: number;

/** A session fed with `count` synthetic records of capLen bytes through the real delivery path. */
export function benchSession(
  count: number,
  capLen: number,
  perRecordObjects: boolean,
  options?: BenchSessionOptions,
): Session;
