import { beforeAll, describe, expect, it } from 'vitest';
import { SORT_COLUMNS, type SortColumn } from '../common/contract.js';
import { addressBytes } from './filter/address.js';
import { FilterSyntaxError } from './filter/parse.js';
import { CHUNK_MASK, CHUNK_SHIFT, MISC_F_HAS_ECHO } from './store.js';
import { FilterCancelled, SortCancelled, View, sortByKey } from './view.js';
import { type SyntheticCapture, syntheticCapture, viewContents } from './testing/capture.js';

function full(n: number, seed: number): SyntheticCapture {
  const c = syntheticCapture(n, seed);
  while (c.step());
  return c;
}

function envOf(c: SyntheticCapture) {
  return { addresses: c.ingestor.addresses, interfaces: c.ingestor.interfaces };
}

/** The sort a user expects, written the obvious way. */
function referenceSort(
  c: SyntheticCapture,
  indices: number[],
  column: SortColumn,
  descending: boolean,
): number[] {
  const { store, ingestor } = c;
  const key = (r: number): number | string | null => {
    const ch = store.chunks[r >>> CHUNK_SHIFT]!;
    const i = r & CHUNK_MASK;
    const echo = (ch.misc[i]! & MISC_F_HAS_ECHO) !== 0;
    const addr = (id: number): string =>
      String.fromCharCode(
        ingestor.addresses.family[id]!,
        ...addressBytes(ingestor.addresses.text[id]!, ingestor.addresses.family[id]!)!,
      );
    switch (column) {
      case 'no':
        return r;
      case 'time':
        return ch.tsRel[i]!;
      case 'dir':
        return (ch.meta[i]! >>> 16) & 255;
      case 'iface':
        return ingestor.interfaces.get((ch.misc[i]! >>> 8) & 0xffff);
      case 'src':
        return addr(ch.src[i]!);
      case 'dst':
        return addr(ch.dst[i]!);
      case 'type':
        return ch.meta[i]! & 255;
      case 'code':
        return (ch.meta[i]! >>> 8) & 255;
      case 'id':
        return echo ? ch.idSeq[i]! >>> 16 : null;
      case 'seq':
        return echo ? ch.idSeq[i]! & 0xffff : null;
      case 'ttl':
        return ch.misc[i]! & 255;
      case 'len':
        return ch.len[i]! & 0xffff;
      case 'rtt':
        return Number.isNaN(ch.rtt[i]!) ? null : ch.rtt[i]!;
    }
  };
  const keyed = indices.map((r) => ({ r, k: key(r) }));
  keyed.sort((a, b) => {
    if (a.k === null || b.k === null) return a.k === b.k ? a.r - b.r : a.k === null ? 1 : -1;
    if (a.k !== b.k) return (a.k < b.k ? -1 : 1) * (descending ? -1 : 1);
    return column === 'no' && descending ? b.r - a.r : a.r - b.r;
  });
  return keyed.map((x) => x.r);
}

describe('View', () => {
  let fixture: SyntheticCapture;
  beforeAll(() => {
    fixture = full(150_000, 11);
  });

  it('with no filter and no sort is the identity and holds nothing per record', () => {
    const view = new View(fixture.store, envOf(fixture));
    expect(view.length).toBe(0);
    view.update();
    expect(view.length).toBe(fixture.store.length);
    expect(view.indexAt(0)).toBe(0);
    expect(view.indexAt(123_456)).toBe(123_456);
    expect(view.positionOf(777)).toBe(777);
    expect(view.positionOf(fixture.store.length)).toBeNull();
    expect(view.bytesAllocated).toBe(0);
    expect(() => view.indexAt(fixture.store.length)).toThrow(RangeError);
  });

  it('filters to exactly the matching records, in record order', () => {
    const view = new View(fixture.store, envOf(fixture));
    view.update();
    const { ms } = view.setFilter('icmp.type == echo-reply && rtt > 5');
    expect(ms).toBeGreaterThanOrEqual(0);
    const got = viewContents(view);
    expect(got.length).toBeGreaterThan(1000);
    const { store } = fixture;
    for (const r of got) {
      const ch = store.chunks[r >>> CHUNK_SHIFT]!;
      const i = r & CHUNK_MASK;
      expect([0, 129]).toContain(ch.meta[i]! & 255);
      expect(ch.rtt[i]!).toBeGreaterThan(5);
    }
    expect(got).toEqual([...got].sort((a, b) => a - b));
    for (const r of got.slice(0, 200)) expect(view.indexAt(view.positionOf(r)!)).toBe(r);
    expect(view.positionOf(got[0]! + 1 === got[1] ? got[0]! - 1 : got[0]! + 1)).toBeNull();
    expect(view.filterText).toBe('icmp.type == echo-reply && rtt > 5');
  });

  it('covers only the records taken in by update(), so a paused view stays as it was', () => {
    const live = syntheticCapture(20_000, 8);
    live.step();
    const view = new View(live.store, envOf(live));
    view.update();
    const before = view.length;
    live.step();
    expect(view.length).toBe(before);
    view.setFilter('icmp || icmpv6');
    expect(view.length).toBe(before);
    view.update();
    expect(view.length).toBe(live.store.length);
  });

  it('keeps the old filter when the new one has an error', () => {
    const view = new View(fixture.store, envOf(fixture));
    view.update();
    view.setFilter('icmpv6');
    const before = view.length;
    expect(() => view.setFilter('icmpv6 &&')).toThrow(FilterSyntaxError);
    expect(view.length).toBe(before);
    expect(view.filterText).toBe('icmpv6');
    view.setFilter('');
    expect(view.length).toBe(fixture.store.length);
    expect(view.bytesAllocated).toBe(0);
  });

  for (const column of SORT_COLUMNS) {
    for (const descending of [false, true]) {
      it(`sorts by ${column} ${descending ? 'descending' : 'ascending'} like the reference (stable)`, () => {
        const view = new View(fixture.store, envOf(fixture));
        view.update();
        view.setFilter('ip.addr == 10.0.0.0/8 || ipv6 || iface == lo');
        const matches = viewContents(view);
        view.setSort(column, descending);
        const got = viewContents(view);
        expect(got).toEqual(referenceSort(fixture, matches, column, descending));
        expect(Array.from(view.snapshot())).toEqual(got);
        for (const r of got.slice(0, 50)) expect(view.indexAt(view.positionOf(r)!)).toBe(r);
      });
    }
  }

  it('sorts the unfiltered capture', () => {
    const view = new View(fixture.store, envOf(fixture));
    view.update();
    view.setSort('len', true);
    const all = Array.from({ length: fixture.store.length }, (_, k) => k);
    expect(viewContents(view)).toEqual(referenceSort(fixture, all, 'len', true));
    view.setSort(null);
    expect(view.bytesAllocated).toBe(0);
    expect(view.snapshot().slice(0, 3)).toEqual(Uint32Array.of(0, 1, 2));
    expect(view.indexAt(5)).toBe(5);
  });

  const incremental: [string, SortColumn | null, boolean][] = [
    ['', null, false],
    ['echo && ip', null, false],
    ['', 'time', false],
    ['', 'no', true],
    ['!(icmp.seq in {1..10})', 'rtt', true],
    ['icmp', 'src', false],
    ['ipv6 || ttl < 64', 'iface', true],
    ['', 'seq', false],
  ];
  for (const [filter, column, descending] of incremental) {
    it(`updated batch by batch equals a full recompute (filter '${filter}', sort ${column} ${descending})`, () => {
      const live = syntheticCapture(60_000, 5);
      const view = new View(live.store, envOf(live), { resortIntervalMs: 0 });
      view.setFilter(filter);
      view.setSort(column, descending);
      let steps = 0;
      while (live.step()) {
        view.update();
        if (++steps % 5 === 0) {
          const fresh = new View(live.store, envOf(live));
          fresh.update();
          fresh.setFilter(filter);
          fresh.setSort(column, descending);
          expect(viewContents(view)).toEqual(viewContents(fresh));
        }
      }
      const fresh = new View(live.store, envOf(live));
      fresh.update();
      fresh.setFilter(filter);
      fresh.setSort(column, descending);
      expect(view.length).toBe(fresh.length);
      expect(viewContents(view)).toEqual(viewContents(fresh));
    });
  }

  it('shows new matches at the end until the next merge when merges are throttled', () => {
    const live = syntheticCapture(30_000, 9);
    live.step();
    const view = new View(live.store, envOf(live), { resortIntervalMs: 1e9 });
    view.update();
    view.setSort('ttl', false);
    const sorted = viewContents(view);
    live.step();
    view.update();
    const pending = viewContents(view);
    expect(pending.slice(0, sorted.length)).toEqual(sorted);
    expect(pending.slice(sorted.length)).toEqual(
      Array.from({ length: live.store.length - sorted.length }, (_, k) => sorted.length + k),
    );
    view.settle();
    const fresh = new View(live.store, envOf(live));
    fresh.update();
    fresh.setSort('ttl', false);
    expect(viewContents(view)).toEqual(viewContents(fresh));
  });

  it('applies a filter asynchronously with progress, equal to the sync result', async () => {
    const view = new View(fixture.store, envOf(fixture), { sliceMs: 0 });
    view.update();
    const fractions: number[] = [];
    await view.setFilterAsync('ip.src == 10.1.0.0/16 || icmpv6.type == 135', (p) =>
      fractions.push(p.fraction),
    );
    expect(fractions.length).toBeGreaterThan(1);
    expect(fractions.at(-1)).toBe(1);
    expect(fractions).toEqual([...fractions].sort((a, b) => a - b));
    const sync = new View(fixture.store, envOf(fixture));
    sync.update();
    sync.setFilter('ip.src == 10.1.0.0/16 || icmpv6.type == 135');
    expect(viewContents(view)).toEqual(viewContents(sync));
  });

  it('starts an async filter with small scans that double up to a chunk (a new filter runs cold at first)', async () => {
    const view = new View(fixture.store, envOf(fixture), { sliceMs: 0 });
    view.update();
    const total = fixture.store.length;
    const scanned: number[] = [];
    await view.setFilterAsync('icmp.type == echo-reply', (p) => scanned.push(Math.round(p.fraction * total)));
    // sliceMs 0: one scan per turn. 1024 records first, then 2048, 4096 ... and never more than a chunk.
    expect(scanned.slice(0, 4)).toEqual([1024, 3072, 7168, 15360]);
    const steps = scanned.slice(1).map((v, k) => v - scanned[k]!);
    expect(Math.max(...steps)).toBeLessThanOrEqual(1 << CHUNK_SHIFT);
    const sync = new View(fixture.store, envOf(fixture));
    sync.update();
    sync.setFilter('icmp.type == echo-reply');
    expect(viewContents(view)).toEqual(viewContents(sync));
  });

  it('catches up with records that arrive while an async filter runs', async () => {
    const live = syntheticCapture(40_000, 3);
    for (let k = 0; k < 6; k++) live.step();
    const view = new View(live.store, envOf(live), { sliceMs: 0 });
    view.update();
    const done = view.setFilterAsync('echo', () => {
      live.step();
      view.update();
    });
    await done;
    expect(view.length).toBeGreaterThan(0);
    const fresh = new View(live.store, envOf(live));
    fresh.update();
    fresh.setFilter('echo');
    expect(viewContents(view)).toEqual(viewContents(fresh));
  });

  it('cancels an async filter replaced by a newer one', async () => {
    const view = new View(fixture.store, envOf(fixture), { sliceMs: 0 });
    view.update();
    const first = view.setFilterAsync('icmp');
    view.setFilter('icmpv6');
    await expect(first).rejects.toBeInstanceOf(FilterCancelled);
    expect(view.filterText).toBe('icmpv6');
  });

  it('sorts in slices that let the event loop run, equal to the sync sort, for every column', async () => {
    for (const [k, column] of SORT_COLUMNS.entries()) {
      const descending = k % 2 === 1;
      const view = new View(fixture.store, envOf(fixture), { sliceMs: 0 });
      view.update();
      view.setFilter('icmp || icmpv6');
      let turns = 0;
      let ticking = true;
      const tick = (): void => {
        turns++;
        if (ticking) setImmediate(tick);
      };
      setImmediate(tick);
      const fractions: number[] = [];
      await view.setSortAsync(column, descending, (p) => fractions.push(p.fraction));
      ticking = false;
      expect(fractions.at(-1), column).toBe(1);
      if (column !== 'no') expect(turns, `${column}: the event loop ran while sorting`).toBeGreaterThan(2);
      const sync = new View(fixture.store, envOf(fixture));
      sync.update();
      sync.setFilter('icmp || icmpv6');
      sync.setSort(column, descending);
      expect(view.sort).toEqual({ column, descending });
      expect(viewContents(view), column).toEqual(viewContents(sync));
    }
  });

  it('keeps the previous order until a sliced sort is done, and a newer sort cancels it', async () => {
    const view = new View(fixture.store, envOf(fixture), { sliceMs: 0 });
    view.update();
    view.setSort('ttl', true);
    const before = viewContents(view);
    const first = view.setSortAsync('src', false);
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(view.sort.column).toBe('ttl');
    expect(viewContents(view)).toEqual(before);
    view.setSort('len', false);
    await expect(first).rejects.toBeInstanceOf(SortCancelled);
    expect(view.sort).toEqual({ column: 'len', descending: false });
    const sync = new View(fixture.store, envOf(fixture));
    sync.update();
    sync.setSort('len', false);
    expect(viewContents(view)).toEqual(viewContents(sync));
  });

  it('sorts the matches of an async filter in slices too', async () => {
    const view = new View(fixture.store, envOf(fixture), { sliceMs: 0 });
    view.update();
    view.setSort('rtt', true);
    await view.setFilterAsync('echo');
    const sync = new View(fixture.store, envOf(fixture));
    sync.update();
    sync.setSort('rtt', true);
    sync.setFilter('echo');
    expect(view.sort).toEqual({ column: 'rtt', descending: true });
    expect(viewContents(view)).toEqual(viewContents(sync));
  });

  it('rejects a bad filter asynchronously too', async () => {
    const view = new View(fixture.store, envOf(fixture));
    await expect(view.setFilterAsync('ttl >')).rejects.toMatchObject({ position: 5 });
  });

  it('starts over after the capture is cleared', () => {
    const live = full(20_000, 4);
    const view = new View(live.store, envOf(live));
    view.setFilter('ip.addr == 10.0.0.1');
    view.setSort('time', true);
    view.update();
    expect(view.length).toBeGreaterThan(0);
    live.ingestor.clear();
    view.clear();
    expect(view.length).toBe(0);
    const from = live.store.length;
    live.ingestor.ingest(live.batches[0]!);
    expect(from).toBe(0);
    view.update();
    view.settle();
    const fresh = new View(live.store, envOf(live));
    fresh.update();
    fresh.setFilter('ip.addr == 10.0.0.1');
    fresh.setSort('time', true);
    expect(viewContents(view)).toEqual(viewContents(fresh));
    expect(view.length).toBeGreaterThan(0);
  });
});

describe('sortByKey', () => {
  it('sorts stably, including already sorted, reversed and equal keys', () => {
    for (const make of [
      (k: number) => k,
      (k: number) => -k,
      (k: number) => Math.floor(k / 7),
      (k: number) => -Math.floor(k / 7),
      (k: number) => ((k * 7919) % 1000) - 500 + (k % 3) / 4,
      (k: number) => (k % 5 === 0 ? Infinity : (k * 31) % 17),
      (k: number) => (k % 2 ? -0 : 0),
      // integers spanning more than 2^16: two 16-bit passes
      (k: number) => ((k * 7919) % 100_003) * 1000 - 5e7,
      // exact Float32 values (like rtt), with nulls
      (k: number) => (k % 11 === 0 ? Infinity : Math.fround(((k * 37) % 101) / 3) * (k % 2 ? -1 : 1)),
      // neither: all 64 bits
      (k: number) => ((k * 7919) % 1013) * 1e9 + ((k * 13) % 7) * 0.1,
    ]) {
      for (const n of [0, 1, 5, 255, 256, 5000]) {
        const keys = Float64Array.from({ length: n }, (_, k) => make(k));
        const idx = Uint32Array.from({ length: n }, (_, k) => k);
        const want = Array.from({ length: n }, (_, k) => k).sort((a, b) =>
          keys[a]! < keys[b]! ? -1 : keys[a]! > keys[b]! ? 1 : a - b,
        );
        sortByKey(keys, idx, n);
        expect(Array.from(idx)).toEqual(want);
        // -0 and 0 are the same key (the sort may return either).
        const plain = (v: number): number => (v === 0 ? 0 : v);
        expect(Array.from(keys, plain)).toEqual(want.map((k) => plain(make(k))));
      }
    }
  });
});
