/**
 * A sorted view that merges new records in slices (backgroundMerge, as the service's view does while
 * capturing): while a merge runs the table shows the previous order with the new records after it, and once
 * it has run the view is exactly the full sort; a new sort, filter or a sync merge meanwhile wins.
 */
import { describe, expect, it } from 'vitest';
import type { SortColumn } from '../common/contract.js';
import { type SyntheticCapture, syntheticCapture, viewContents } from './testing/capture.js';
import { View } from './view.js';

function envOf(c: SyntheticCapture) {
  return { addresses: c.ingestor.addresses, interfaces: c.ingestor.interfaces };
}

function fullSort(c: SyntheticCapture, filter: string, column: SortColumn, descending: boolean): number[] {
  const fresh = new View(c.store, envOf(c));
  fresh.update();
  fresh.setFilter(filter);
  fresh.setSort(column, descending);
  return viewContents(fresh);
}

/** Lets merges in slices run until the view has taken in every record. */
async function settled(view: View): Promise<void> {
  for (let k = 0; k < 50; k++) await view.settleSoon();
}

describe('a sorted view merging new records in slices', () => {
  const cases: [string, SortColumn, boolean][] = [
    ['', 'rtt', true],
    ['icmp', 'src', false],
    ['ipv6 || ttl < 64', 'len', false],
  ];
  for (const [filter, column, descending] of cases) {
    it(`equals a full sort once merged, and shows every match meanwhile (filter '${filter}', ${column})`, async () => {
      const live = syntheticCapture(40_000, 11);
      live.step();
      const view = new View(live.store, envOf(live), {
        backgroundMerge: true,
        resortIntervalMs: 0,
        sliceMs: 1,
      });
      view.update();
      view.setFilter(filter);
      view.setSort(column, descending);
      let steps = 0;
      while (live.step()) {
        view.update(); // starts a merge in slices, or leaves the new records pending behind the running one
        if (++steps % 3 === 0) {
          // Mid-merge: every match exactly once, the sorted ones first.
          const now = viewContents(view);
          expect(now.length).toBe(view.length);
          expect([...now].sort((a, b) => a - b)).toEqual(
            [...fullSort(live, filter, column, descending)].sort((a, b) => a - b),
          );
        }
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      await settled(view);
      expect(viewContents(view)).toEqual(fullSort(live, filter, column, descending));
    });
  }

  it('snapshots the view as shown, the records not merged yet after the sorted ones', async () => {
    const live = syntheticCapture(30_000, 14);
    live.step();
    const view = new View(live.store, envOf(live), {
      backgroundMerge: true,
      resortIntervalMs: 1e9,
      sliceMs: 1,
    });
    view.update();
    view.setSort('ttl', false);
    live.step();
    view.update();
    expect([...view.snapshot()]).toEqual(viewContents(view));
    await settled(view);
    expect([...view.snapshot()]).toEqual(fullSort(live, '', 'ttl', false));
  });

  it('gives way to a new sort that arrives while it merges', async () => {
    const live = syntheticCapture(40_000, 12);
    live.step();
    const view = new View(live.store, envOf(live), {
      backgroundMerge: true,
      resortIntervalMs: 0,
      sliceMs: 1,
    });
    view.update();
    view.setSort('ttl', false);
    while (live.step()) view.update();
    const merging = view.settleSoon();
    view.setSort('dst', true);
    await merging;
    await settled(view);
    expect(view.sort).toEqual({ column: 'dst', descending: true });
    expect(viewContents(view)).toEqual(fullSort(live, '', 'dst', true));
  });

  it('gives way to a sync merge (settle) that arrives while it merges', async () => {
    const live = syntheticCapture(40_000, 13);
    live.step();
    const view = new View(live.store, envOf(live), {
      backgroundMerge: true,
      resortIntervalMs: 0,
      sliceMs: 1,
    });
    view.update();
    view.setSort('rtt', false);
    while (live.step()) view.update();
    const merging = view.settleSoon();
    view.settle();
    expect(viewContents(view)).toEqual(fullSort(live, '', 'rtt', false));
    await merging;
    await settled(view);
    expect(viewContents(view)).toEqual(fullSort(live, '', 'rtt', false));
  });
});
