/**
 * The ring-buffer policy of a capture with a limit (`capture.start` `limit`, `--ring-records`,
 * `--ring-seconds`), as dumpcap's ring of files: when the live records exceed the limit, the oldest are
 * dropped in coarse units (about 1/8 of the limit, whole 64 Ki-record chunks), so the cost of dropping
 * (releasing chunks, deleting spool segments, trimming the view) is paid rarely.
 *
 * - records: when more than `records` are live, drop the oldest whole units (unit = records / 8 rounded to
 *   chunks, at least one chunk; units are aligned to absolute record indices, as the spool's segments are).
 *   Between `records - unit` and `records` stay live.
 * - seconds: when the oldest live record is more than `seconds` older than the newest (capture time), drop
 *   the oldest whole chunks whose last record is older than `newest - seconds * 7/8` (about 1/8 of the time
 *   window at a time). The chunk still being filled is never dropped.
 */
import type { RingLimit } from '../common/contract.js';
import { CHUNK_MASK, CHUNK_SHIFT, CHUNK_SIZE, type RecordStore } from './store.js';

export type { RingLimit };

/** Records per eviction unit for a records limit (a multiple of CHUNK_SIZE); CHUNK_SIZE without one. */
export function ringUnit(limit: RingLimit | null | undefined): number {
  if (!limit?.records) return CHUNK_SIZE;
  return Math.max(1, Math.round(limit.records / 8 / CHUNK_SIZE)) * CHUNK_SIZE;
}

/** Spool segment time span for a seconds limit, in ns (1/8 of the window); 0 without one. */
export function ringSegmentNs(limit: RingLimit | null | undefined): number {
  return limit?.seconds ? (limit.seconds * 1e9) / 8 : 0;
}

/** The first index the store should keep under `limit` (store.firstIndex when nothing is to go). */
export function evictionTarget(store: RecordStore, limit: RingLimit | null | undefined): number {
  let target = store.firstIndex;
  const end = store.length;
  if (!limit || end === 0) return target;
  if (limit.records !== undefined && store.live > limit.records) {
    const unit = ringUnit(limit);
    target = Math.max(target, Math.ceil((end - limit.records) / unit) * unit);
  }
  if (limit.seconds !== undefined) {
    const last = end - 1;
    const newest = store.chunks[last >>> CHUNK_SHIFT]!.tsRel[last & CHUNK_MASK]!;
    const window = limit.seconds * 1e9;
    const full = end - (end & CHUNK_MASK); // chunks before this one are complete
    let c = target >>> CHUNK_SHIFT;
    if (target < full && newest - store.chunks[c]!.tsRel[0]! > window) {
      const keepFrom = newest - window + window / 8;
      while ((c + 1) * CHUNK_SIZE <= full && store.chunks[c]!.tsRel[CHUNK_MASK]! < keepFrom) c++;
      target = Math.max(target, c * CHUNK_SIZE);
    }
  }
  return Math.min(target, end - (end & CHUNK_MASK));
}
