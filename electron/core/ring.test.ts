/**
 * The ring buffer below the service: the store dropping whole chunks, the eviction policy, and the view
 * trimmed on eviction, checked against a fresh view built over only the live records.
 */
import { describe, expect, it } from 'vitest';
import type { SortColumn } from '../common/contract.js';
import { evictionTarget, ringUnit } from './ring.js';
import { BYTES_PER_RECORD, CHUNK_SIZE, EVICTED_CHUNK, RecordStore } from './store.js';
import { View } from './view.js';
import { type SyntheticCapture, syntheticCapture, viewContents } from './testing/capture.js';

function fill(store: RecordStore, n: number, tsStep = 1000): void {
  for (let k = 0; k < n; k++) {
    const { chunk, i, index } = store.next();
    chunk.tsRel[i] = index * tsStep;
  }
}

describe('RecordStore eviction', () => {
  it('drops whole chunks, releases them and keeps record indices absolute', () => {
    const store = new RecordStore();
    fill(store, 3 * CHUNK_SIZE + 10);
    expect(store.bytesAllocated).toBe(4 * CHUNK_SIZE * BYTES_PER_RECORD);
    expect(store.evictTo(2 * CHUNK_SIZE)).toBe(2 * CHUNK_SIZE);
    expect(store.firstIndex).toBe(2 * CHUNK_SIZE);
    expect(store.length).toBe(3 * CHUNK_SIZE + 10);
    expect(store.live).toBe(CHUNK_SIZE + 10);
    expect(store.bytesAllocated).toBe(2 * CHUNK_SIZE * BYTES_PER_RECORD);
    expect(store.chunks).toHaveLength(4);
    expect(store.chunks[0]).toBe(EVICTED_CHUNK);
    expect(store.chunks[1]).toBe(EVICTED_CHUNK);
    expect(store.has(2 * CHUNK_SIZE - 1)).toBe(false);
    expect(store.has(2 * CHUNK_SIZE)).toBe(true);
    expect(() => store.chunkOf(5)).toThrow(/evicted/);
    expect(store.chunkOf(2 * CHUNK_SIZE).tsRel[0]).toBe(2 * CHUNK_SIZE * 1000);
    expect(store.next().index).toBe(3 * CHUNK_SIZE + 10);
    expect(store.evictTo(CHUNK_SIZE)).toBe(0); // never backwards
    expect(() => store.evictTo(2 * CHUNK_SIZE + 5)).toThrow(RangeError);
    expect(() => store.evictTo(5 * CHUNK_SIZE)).toThrow(RangeError);
    store.clear();
    expect(store.firstIndex).toBe(0);
    expect(store.bytesAllocated).toBe(0);
  });
});

describe('ring policy', () => {
  it('records: drops whole units of about 1/8 of the limit when the limit is passed', () => {
    expect(ringUnit({ records: 131072 })).toBe(CHUNK_SIZE);
    expect(ringUnit({ records: 2_000_000 })).toBe(4 * CHUNK_SIZE);
    expect(ringUnit({ seconds: 60 })).toBe(CHUNK_SIZE);
    const store = new RecordStore();
    const limit = { records: 2_000_000 };
    const unit = ringUnit(limit);
    let evictions = 0;
    for (let k = 0; k < 40; k++) {
      fill(store, 100_000);
      const target = evictionTarget(store, limit);
      if (target > store.firstIndex) {
        expect(target % unit).toBe(0);
        store.evictTo(target);
        evictions++;
      }
      expect(store.live).toBeLessThanOrEqual(limit.records);
      if (store.length > limit.records) expect(store.live).toBeGreaterThan(limit.records - unit);
    }
    expect(evictions).toBeGreaterThan(5);
    expect(evictions).toBeLessThan(40);
  });

  it('seconds: drops whole chunks older than the window, about 1/8 of it at a time', () => {
    const store = new RecordStore();
    const limit = { seconds: 10 };
    // 1 ms per record: a chunk is 65.5 s... use 10 us: 65536 records = 0.66 s; 10 s = about 15 chunks.
    const step = 10_000;
    let evictions = 0;
    for (let k = 0; k < 60; k++) {
      fill(store, 50_000, step);
      const target = evictionTarget(store, limit);
      if (target > store.firstIndex) {
        store.evictTo(target);
        evictions++;
      }
      const newest = (store.length - 1) * step;
      const oldest = store.firstIndex * step;
      // Never more than the window plus the chunk being filled and one unit.
      expect(newest - oldest).toBeLessThanOrEqual(10e9 + 2 * CHUNK_SIZE * step);
      if (evictions > 0) expect(newest - oldest).toBeGreaterThan(10e9 * 0.75);
    }
    expect(evictions).toBeGreaterThan(3);
    // No unit when nothing is old enough.
    const young = new RecordStore();
    fill(young, 300_000, 1);
    expect(evictionTarget(young, limit)).toBe(0);
  });
});

function freshView(
  c: SyntheticCapture,
  filter: string,
  column: SortColumn | null,
  descending: boolean,
): View {
  const view = new View(c.store, { addresses: c.ingestor.addresses, interfaces: c.ingestor.interfaces });
  view.update();
  view.setFilter(filter);
  view.setSort(column, descending);
  return view;
}

const CASES: [string, SortColumn | null, boolean][] = [
  ['', null, false],
  ['', 'no', true],
  ['', 'time', false],
  ['icmp.type == echo-reply', null, false],
  ['icmp.type == echo-reply && rtt > 5', 'rtt', true],
  ['icmp.type == echo-request', 'no', true],
  ['ip.addr == 10.0.0.0/8 || icmp.type == 3', 'src', false],
  ['ipv6', 'seq', false],
  ['icmp', 'len', true],
];

describe('View with a ring buffer', () => {
  const limit = { records: 131072 };

  it.each(CASES)(
    'filter %j sort %j desc %j: trimmed on eviction = a fresh view of the live records',
    (filter, column, descending) => {
      const c = syntheticCapture(480_000, 7);
      const env = { addresses: c.ingestor.addresses, interfaces: c.ingestor.interfaces };
      const merging = new View(c.store, env, { resortIntervalMs: 0 });
      const lagging = new View(c.store, env, { resortIntervalMs: 1e9 }); // new records stay unsorted at the end
      merging.setFilter(filter);
      merging.setSort(column, descending);
      lagging.setFilter(filter);
      lagging.setSort(column, descending);
      let evictions = 0;
      let k = 0;
      while (c.step()) {
        const target = evictionTarget(c.store, limit);
        if (target > c.store.firstIndex) {
          c.store.evictTo(target);
          evictions++;
        }
        merging.update();
        lagging.update();
        if (++k % 40 === 0 || evictions === 1) {
          for (const view of [merging, lagging]) {
            expect(view.firstIndex).toBe(c.store.firstIndex);
            for (const p of [0, Math.floor(view.length / 2), view.length - 1])
              if (view.length > 0) expect(c.store.has(view.indexAt(p))).toBe(true);
          }
        }
      }
      expect(evictions).toBeGreaterThanOrEqual(4);
      expect(c.store.firstIndex).toBeGreaterThan(0);
      const reference = viewContents(freshView(c, filter, column, descending));
      expect(reference.length).toBeGreaterThan(0);
      merging.settle();
      lagging.settle();
      expect(viewContents(merging)).toEqual(reference);
      expect(viewContents(lagging)).toEqual(reference);
      expect([...merging.snapshot()]).toEqual(reference);
      // positionOf: evicted records are nowhere; live ones where indexAt says.
      expect(merging.positionOf(0)).toBeNull();
      expect(merging.positionOf(c.store.firstIndex - 1)).toBeNull();
      for (const p of [0, 1, Math.floor(reference.length / 3), reference.length - 1])
        expect(merging.positionOf(reference[p]!)).toBe(p);
      // A filter set after eviction scans from firstIndex.
      merging.setFilter(filter === '' ? 'icmp' : '');
      merging.setFilter(filter);
      expect(viewContents(merging)).toEqual(reference);
    },
  );

  it('a paused view lets go of evicted records and keeps the rest as it was', () => {
    const c = syntheticCapture(600_000, 3);
    const env = { addresses: c.ingestor.addresses, interfaces: c.ingestor.interfaces };
    for (const [filter, column] of [
      ['', null],
      ['icmp.type == echo-reply', 'rtt'],
    ] as const) {
      c.store.clear();
      const view = new View(c.store, env);
      view.setFilter(filter);
      view.setSort(column);
      for (let k = 0; k < 30; k++) c.step();
      view.update();
      const seen = c.store.length;
      const before = viewContents(view);
      // Paused: records keep coming and the oldest go, the view only evicts.
      for (let k = 0; k < 80 && c.step(); k++) {
        const target = evictionTarget(c.store, limit);
        if (target > c.store.firstIndex) c.store.evictTo(target);
        view.evict();
      }
      expect(c.store.firstIndex).toBeGreaterThan(0);
      const kept = before.filter((r) => r >= c.store.firstIndex);
      expect(viewContents(view)).toEqual(kept);
      if (c.store.firstIndex >= seen) expect(view.length).toBe(0);
      view.update(); // resumed
      view.settle();
      expect(viewContents(view)).toEqual(viewContents(freshView(c, filter, column, false)));
    }
  });

  it('an async filter running while records are evicted ends equal to a fresh view', async () => {
    const c = syntheticCapture(480_000, 5);
    const env = { addresses: c.ingestor.addresses, interfaces: c.ingestor.interfaces };
    for (let k = 0; k < 60; k++) c.step();
    const view = new View(c.store, env, { sliceMs: 0 });
    view.update();
    const filtering = view.setFilterAsync('icmp.type == echo-reply', () => {
      // Between slices: more records, and the oldest go.
      for (let k = 0; k < 4; k++) c.step();
      const target = evictionTarget(c.store, limit);
      if (target > c.store.firstIndex) c.store.evictTo(target);
      view.update();
    });
    await filtering;
    expect(c.store.firstIndex).toBeGreaterThan(0);
    view.update();
    expect(viewContents(view)).toEqual(viewContents(freshView(c, 'icmp.type == echo-reply', null, false)));
  });
});
