/**
 * The ring-buffer limit of the current capture (ring.ts holds the arithmetic): where the spool cuts its
 * segments, when the oldest records go, and how the limit reads in messages.
 */
import type { CaptureState, RingLimit } from '../../common/contract.js';
import { evictionTarget, ringSegmentNs, ringUnit } from '../ring.js';
import type { SegmentCut, Spool } from '../spool-store.js';
import { MAX_RECORDS, type RecordStore } from '../store.js';
import type { View } from '../view.js';

export class RingPolicy {
  /** The limit of the current capture (null: none). */
  limit: RingLimit | null = null;
  segmentCut: SegmentCut | undefined;

  /** A new capture's limit (none when neither records nor seconds are set). */
  configure(limit: RingLimit | undefined): void {
    this.limit = limit && (limit.records !== undefined || limit.seconds !== undefined) ? { ...limit } : null;
    this.segmentCut = this.limit ? segmentCut(this.limit) : undefined;
  }

  /** What the capture state says about the limit. */
  state(store: RecordStore): Pick<CaptureState, 'limit' | 'evicted'> {
    return this.limit ? { limit: this.limit, evicted: store.firstIndex } : {};
  }

  /** The stop message when `records` more would pass the most records one capture can number, else null. */
  overflow(store: RecordStore, records: number): string | null {
    if (!this.limit || store.length + records <= MAX_RECORDS) return null;
    return `the capture reached ${MAX_RECORDS.toLocaleString('en')} records, the most one capture can number`;
  }

  /** Drops the oldest records in whole units when the limit is exceeded; true when some went. */
  apply(store: RecordStore, spool: Spool, view: View): boolean {
    const target = evictionTarget(store, this.limit);
    if (target <= store.firstIndex) return false;
    store.evictTo(target);
    spool.dropBefore(target);
    // Even a paused view lets go of evicted records (it keeps the rest as it was).
    view.evict();
    return true;
  }

  text(store: RecordStore): string {
    const parts: string[] = [];
    if (this.limit?.records !== undefined) parts.push(`${this.limit.records.toLocaleString('en')} records`);
    if (this.limit?.seconds !== undefined) parts.push(`${this.limit.seconds} s`);
    return parts.join(' and ') || `${store.live.toLocaleString('en')} records`;
  }
}

/** Where the spool starts a new segment: at each ring unit (records limit) or 1/8 of a seconds window. */
function segmentCut(limit: RingLimit): SegmentCut {
  const unit = ringUnit(limit);
  const spanNs = ringSegmentNs(limit);
  return (index, tsNs, firstTsNs) =>
    (limit.records !== undefined && index % unit === 0) || (spanNs > 0 && tsNs - firstTsNs >= spanNs);
}
