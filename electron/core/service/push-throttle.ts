/**
 * How often the service pushes to the UI: counts only when they changed, aggregates at most every 500 ms and
 * only when records arrived (or loss was judged against the clock) since the last push.
 */
import type { Counts } from '../../common/contract.js';

const AGGREGATES_MIN_MS = 500;

export class PushThrottle {
  private lastAggregatesTotal = -1;
  private lastAggregatesAt = 0;
  private lastCounts = '';
  /** Set by outcomesChanged, until the next push. */
  private outcomes = false;

  /** True when fresh aggregates are due (and counts them as pushed). */
  aggregatesDue(now: number, total: number): boolean {
    if (total === this.lastAggregatesTotal && !this.outcomes) return false;
    if (now - this.lastAggregatesAt < AGGREGATES_MIN_MS) return false;
    this.lastAggregatesTotal = total;
    this.lastAggregatesAt = now;
    this.outcomes = false;
    return true;
  }

  /** Echo outcomes changed with no new record (loss judged against the clock): the next push is due. */
  outcomesChanged(): void {
    this.outcomes = true;
  }

  /** True when `counts` differ from the counts last pushed (and counts them as pushed). */
  countsChanged(counts: Counts): boolean {
    const key = `${counts.total}/${counts.evicted}/${counts.view}/${counts.rate}/${counts.droppedKernel}/${counts.droppedRing}/${counts.filter}/${counts.sort.column}/${counts.sort.descending}`;
    if (key === this.lastCounts) return false;
    this.lastCounts = key;
    return true;
  }

  /** A cleared capture: the next aggregates are due at once. */
  resetAggregates(): void {
    this.lastAggregatesTotal = -1;
  }
}
