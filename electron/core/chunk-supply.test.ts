import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { attachInsights } from './insights/index.js';
import { BUFFERS_AHEAD, ChunkSupply, PAGE_BUFFER_BYTES } from './chunk-supply.js';
import { BYTES_PER_RECORD, CHUNK_SIZE, RecordStore } from './store.js';
import { realisticCapture } from './bench/synth.js';
import { CaptureService } from './service.js';

/** Minor page faults the calling thread (the main thread here) has taken so far. */
function threadFaults(): number {
  const stat = readFileSync('/proc/thread-self/stat', 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[7]);
}

/** Waits until `supply` holds `n` chunks ready. */
async function readyChunks(supply: ChunkSupply, n: number): Promise<void> {
  await supply.readyChunks(n);
  expect(supply.bytesHeld).toBeGreaterThanOrEqual(n * CHUNK_SIZE * BYTES_PER_RECORD);
}

/** Waits until `supply` holds `n` page buffers ready (poll starts nothing). */
async function readyBuffers(supply: ChunkSupply, n: number): Promise<void> {
  for (let k = 0; k < 600 && supply.buffersReady < n; k++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    supply.poll();
  }
  expect(supply.buffersReady).toBeGreaterThanOrEqual(n);
}

/** Writes every column of `n` records (what ingest does), returning the page faults the thread took. */
function fill(store: RecordStore, n: number): number {
  const before = threadFaults();
  for (let k = 0; k < n; k++) {
    const { chunk, i, index } = store.next();
    chunk.tsRel[i] = index;
    chunk.src[i] = chunk.dst[i] = chunk.meta[i] = chunk.idSeq[i] = chunk.misc[i] = chunk.len[i] = index;
    chunk.spool.set(i, index * 4);
    chunk.rtt[i] = 1;
    chunk.flags[i] = 1;
  }
  return threadFaults() - before;
}

const supplies: ChunkSupply[] = [];
afterEach(() => {
  for (const s of supplies.splice(0)) s.close();
});

describe('ChunkSupply', () => {
  it('hands the store chunks whose pages another thread has already faulted in', async () => {
    // The measurement sees faults: a fresh 64 MB buffer (always new memory) written page by page.
    const probe = new Uint8Array(64 << 20);
    const f0 = threadFaults();
    for (let at = 0; at < probe.length; at += 4096) probe[at] = 1;
    expect(threadFaults() - f0).toBeGreaterThan(8000);

    const supply = new ChunkSupply(4);
    supplies.push(supply);
    supply.start();
    await readyChunks(supply, 4);
    const store = new RecordStore();
    store.supply = supply;
    // Three chunks' worth: every one of them from the supply. Made here, they fault about 1900 times (656 pages
    // a chunk); from the supply, about 160.
    const faults = fill(store, 3 * CHUNK_SIZE);
    expect(supply.counts).toEqual({ ahead: 3, none: 0 });
    expect(faults).toBeLessThan(3 * 100);
    // The records read back as written, in every column.
    for (const index of [0, CHUNK_SIZE - 1, CHUNK_SIZE, 3 * CHUNK_SIZE - 1]) {
      const c = store.chunkOf(index);
      const i = index % CHUNK_SIZE;
      expect([c.tsRel[i], c.src[i], c.len[i], c.spool.at(i), c.rtt[i], c.flags[i]]).toEqual([
        index,
        index,
        index,
        index * 4,
        1,
        1,
      ]);
    }
    // It keeps as many ahead as it was told: the ones taken are made again.
    await readyChunks(supply, 4);
  });

  it('hands out page buffers whose pages another thread has already faulted in', async () => {
    const supply = new ChunkSupply(1);
    supplies.push(supply);
    // The first ask starts the worker and finds none ready: the caller makes its own.
    expect(supply.takeBuffer()).toBeUndefined();
    expect(supply.bufferCounts).toEqual({ ahead: 0, none: 1 });
    await readyBuffers(supply, BUFFERS_AHEAD);
    const buffer = supply.takeBuffer()!;
    expect(buffer.byteLength).toBe(PAGE_BUFFER_BYTES);
    expect(supply.bufferCounts).toEqual({ ahead: 1, none: 1 });
    // Written page by page here: a fresh 1 MiB buffer faults 256 times, this one hardly.
    const bytes = new Uint8Array(buffer);
    const before = threadFaults();
    for (let at = 0; at < bytes.length; at += 4096) bytes[at] = 7;
    expect(threadFaults() - before).toBeLessThan(32);
    expect(bytes.every((v, k) => v === (k % 4096 === 0 ? 7 : 0))).toBe(true);
    // The one taken is made again.
    await readyBuffers(supply, BUFFERS_AHEAD);
  });

  it('new chunks from the supply are as new: zero in every column', async () => {
    const supply = new ChunkSupply(2);
    supplies.push(supply);
    supply.start();
    await readyChunks(supply, 2);
    const chunk = supply.take()!;
    for (const column of ['tsRel', 'src', 'dst', 'meta', 'idSeq', 'misc', 'len', 'rtt', 'flags'] as const) {
      expect(chunk[column].length).toBe(CHUNK_SIZE);
      expect(chunk[column].every((v) => v === 0)).toBe(true);
    }
    expect(chunk.spool.at(0)).toBeNaN();
  });

  it('a store whose supply has none ready, or is closed, makes its chunks itself', () => {
    const supply = new ChunkSupply(2);
    supplies.push(supply);
    const store = new RecordStore();
    store.supply = supply;
    // Not started: the first chunk is the store's own, and no worker starts for it (a small store costs no
    // thread); the second starts it, finds nothing ready yet, and the store makes that one too.
    fill(store, CHUNK_SIZE);
    expect(supply.counts.none).toBe(1);
    expect(supply.running).toBe(false);
    fill(store, 1);
    expect(supply.counts.none).toBe(2);
    expect(supply.running).toBe(true);
    supply.close();
    expect(supply.running).toBe(false);
    fill(store, 2 * CHUNK_SIZE - 1);
    expect(store.length).toBe(3 * CHUNK_SIZE);
    expect(store.chunks.length).toBe(3);
    expect(supply.take()).toBeUndefined();
    expect(store.chunkOf(3 * CHUNK_SIZE - 1).tsRel[CHUNK_SIZE - 1]).toBe(3 * CHUNK_SIZE - 1);
  });
});

describe('the capture service and its chunk supply', () => {
  it('fills its store with chunks made ahead once a capture outgrows its first, and stops the worker at close', async () => {
    const spoolDir = mkdtempSync(join(tmpdir(), 'icmpcap-supply-'));
    const svc = new CaptureService({ native: new Error('no native here'), version: 'test', spoolDir });
    try {
      svc.startFeed();
      const batches = [...realisticCapture(6 * CHUNK_SIZE, 4096)];
      const supply = svc.store.supply as ChunkSupply;
      expect(supply).toBeInstanceOf(ChunkSupply);
      // Chunk 1 is the store's own; the record that opens chunk 2 starts the worker.
      const perChunk = CHUNK_SIZE / 4096;
      for (const batch of batches.slice(0, perChunk + 1)) svc.feed(batch, 4096);
      expect(supply.running).toBe(true);
      expect(supply.counts).toEqual({ ahead: 0, none: 2 });
      // The worker makes 4 ahead (its start takes a while on a loaded machine): the next 4 chunks are those.
      await readyChunks(supply, 4);
      for (const batch of batches.slice(perChunk + 1)) svc.feed(batch, 4096);
      expect(svc.store.length).toBe(6 * CHUNK_SIZE);
      expect(supply.counts).toEqual({ ahead: 4, none: 2 });
      svc.close();
      expect(supply.running).toBe(false);
      expect(svc.store.supply).toBeNull();
    } finally {
      svc.close();
      rmSync(spoolDir, { recursive: true, force: true });
    }
  });

  it("gathers the insights' records for their worker in buffers made ahead", async () => {
    const spoolDir = mkdtempSync(join(tmpdir(), 'icmpcap-supply-'));
    const svc = new CaptureService({ native: new Error('no native here'), version: 'test', spoolDir });
    const insights = attachInsights(svc, {
      rulesFile: join(spoolDir, 'alerts.conf'),
      alerts: {},
      log: () => undefined,
    });
    try {
      const supply = svc.store.supply as ChunkSupply;
      svc.startFeed();
      const batches = [...realisticCapture(32 * 4096, 4096)];
      // The first stage finds no buffer ready (it asks for them); a turn sends it.
      svc.feed(batches[0]!, 4096);
      await new Promise((resolve) => setImmediate(resolve));
      expect(supply.bufferCounts.none).toBeGreaterThanOrEqual(1);
      await readyBuffers(supply, BUFFERS_AHEAD);
      // Records of several stages in one turn (no buffer comes back meanwhile): each new stage is one made ahead.
      const before = supply.bufferCounts.ahead;
      for (const batch of batches.slice(1)) svc.feed(batch, 4096);
      expect(supply.bufferCounts.ahead - before).toBeGreaterThanOrEqual(2);
      // The worker took every record in: it answers once it has.
      await expect(svc.handle('paths.list', {}, 'ipc')).resolves.toBeDefined();
    } finally {
      insights.close();
      svc.close();
      rmSync(spoolDir, { recursive: true, force: true });
    }
  });
});
