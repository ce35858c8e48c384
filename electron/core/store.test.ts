import { describe, expect, it } from 'vitest';
import { CHUNK_SIZE, type Chunk, RecordStore, SPARES_KEPT, SPARES_RELEASED_PER_CALL } from './store.js';

const COLUMNS = ['tsRel', 'src', 'dst', 'meta', 'idSeq', 'misc', 'len', 'rtt', 'flags'] as const;

/** Adds `n` records with every column set (nothing zero), their spool locations in several runs. */
function fill(store: RecordStore, n: number): void {
  for (let k = 0; k < n; k++) {
    const { chunk, i, index } = store.next();
    for (const column of COLUMNS) chunk[column][i] = (index % 200) + 1;
    // A new run every 1000 records (another segment), as the spool's cuts make them.
    chunk.spool.set(i, Math.floor(index / 1000) * 2 ** 36 + (index % 1000) * 4);
  }
}

/** Every column of `chunk` as a new chunk has it: zeros, and no spool location. */
function expectNew(chunk: Chunk): void {
  for (const column of COLUMNS) expect(chunk[column].every((v) => v === 0)).toBe(true);
  expect(chunk.spool.extraRuns).toBe(0);
  expect(chunk.spool.at(0)).toBeNaN();
}

describe('RecordStore', () => {
  it('gives the chunks a clear let go to the next records, each as a new chunk', () => {
    // Dropping a 20 M-record index at once (800 MB) while a file fills fresh chunks stalled ingest turns.
    const store = new RecordStore();
    fill(store, 3 * CHUNK_SIZE + 100);
    const old = new Set(store.chunks);
    store.clear();
    expect(store.spareChunks).toBe(4);
    expect(store.length).toBe(0);
    const { chunk, i, index } = store.next();
    expect([i, index]).toEqual([0, 0]);
    expect(old.has(chunk)).toBe(true);
    expectNew(chunk);
    // Records written into it read back as written, locations too.
    chunk.rtt[0] = 1.5;
    chunk.spool.set(0, 4096);
    fill(store, CHUNK_SIZE - 1 + 10);
    expect(store.chunks[0]!.rtt[0]).toBe(1.5);
    expect(store.chunks[0]!.spool.at(0)).toBe(4096);
    expect(store.chunks[0]!.spool.at(5)).toBe(5 * 4);
    expect(old.has(store.chunks[1]!)).toBe(true);
    expect(store.chunks[1]!.src[10]).toBe(0);
    expect(store.spareChunks).toBe(2);
  });

  it('reuses the chunks a ring buffer evicts', () => {
    const store = new RecordStore();
    fill(store, 4 * CHUNK_SIZE);
    const evicted = store.chunks.slice(0, 2);
    expect(store.evictTo(2 * CHUNK_SIZE)).toBe(2 * CHUNK_SIZE);
    expect(store.spareChunks).toBe(2);
    fill(store, 2 * CHUNK_SIZE);
    expect(store.spareChunks).toBe(0);
    expect(new Set(store.chunks.slice(4))).toEqual(new Set(evicted));
    // The live records are the ones written last, in the recycled chunks as in the others.
    for (const at of [2 * CHUNK_SIZE, 4 * CHUNK_SIZE + 7, 6 * CHUNK_SIZE - 1]) {
      const c = store.chunkOf(at);
      expect(c.src[at % CHUNK_SIZE]).toBe((at % 200) + 1);
      expect(c.spool.at(at % CHUNK_SIZE)).toBe(Math.floor(at / 1000) * 2 ** 36 + (at % 1000) * 4);
    }
  });

  it('lets spares above the few it keeps go a few at a time', () => {
    const store = new RecordStore();
    fill(store, 20 * CHUNK_SIZE);
    store.clear();
    expect(store.spareChunks).toBe(20);
    store.releaseSpares();
    expect(store.spareChunks).toBe(20 - SPARES_RELEASED_PER_CALL);
    for (let k = 0; k < 20; k++) store.releaseSpares();
    expect(store.spareChunks).toBe(SPARES_KEPT);
  });
});
