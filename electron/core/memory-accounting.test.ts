/**
 * What the service says it holds per record (`service.bytes_per_record_with_stats`) must be what it holds:
 * the components' `bytesAllocated` together count at least every typed array reachable from them (capacity
 * slack included), and not much more.
 */
import { describe, expect, it } from 'vitest';
import { reachableArrayBufferBytes } from '../../test/support/reachable-bytes.js';
import { IFNAMES, realisticCapture } from './bench/synth.js';
import { Ingestor } from './ingest.js';
import { evictionTarget } from './ring.js';
import { Aggregator } from './stats/aggregator.js';
import { RecordStore } from './store.js';
import { View } from './view.js';

function run(records: number, limit?: number) {
  const store = new RecordStore();
  const ingestor = new Ingestor(store, (i) => IFNAMES[i] ?? `if${i}`);
  const aggregator = new Aggregator(ingestor);
  const view = new View(store, { addresses: ingestor.addresses, interfaces: ingestor.interfaces });
  for (const batch of realisticCapture(records, 4096)) {
    const from = store.length;
    ingestor.ingest(batch);
    aggregator.update(store, from, store.length);
    if (limit !== undefined) {
      const target = evictionTarget(store, { records: limit });
      if (target > store.firstIndex) store.evictTo(target);
    }
    view.update();
  }
  view.setFilter('icmp.type == echo-reply');
  view.setSort('rtt', true);
  const parts = {
    store: store.bytesAllocated,
    ingestor: ingestor.bytesAllocated,
    aggregator: aggregator.bytesAllocated,
    view: view.bytesAllocated,
  };
  const accounted = parts.store + parts.ingestor + parts.aggregator + parts.view;
  const reachable = reachableArrayBufferBytes({ store, ingestor, aggregator, view });
  return { accounted, reachable, parts };
}

describe('memory accounting', () => {
  it.each([
    ['a growing capture', 200_000, undefined],
    ['a ring buffer', 300_000, 100_000],
  ])('counts every typed array the index, statistics and view hold: %s', (_, records, limit) => {
    const { accounted, reachable, parts } = run(records, limit);
    const detail = `accounted ${JSON.stringify(parts)}; reachable ${reachable.total}: ${JSON.stringify(reachable.byPath.slice(0, 12))}`;
    expect(accounted, detail).toBeGreaterThanOrEqual(reachable.total);
    // JS objects and strings come on top as estimates; they stay a small part.
    expect(accounted, detail).toBeLessThanOrEqual(reachable.total * 1.15);
  });
});
