// Types of native/bench.js (bench and tests only).
import type { Session } from './index.js';

/** A session fed with `count` synthetic records of capLen bytes through the real delivery path. */
export function benchSession(count: number, capLen: number, perRecordObjects: boolean): Session;
