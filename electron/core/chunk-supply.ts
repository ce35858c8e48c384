/**
 * Store chunks (and page buffers, takeBuffer) made ahead on a worker thread, so that the thread that fills
 * them does not take their page faults. A chunk is 2.7 MB of columns (store.ts); the first write to each of
 * its 656 pages faults, and on these machines a fault costs 5-14 µs: 3-9 ms a chunk, a chunk every 33 ms at
 * 2 M records/s. Measured on the service's path (Ingestor + Aggregator + View over 10 M records of
 * realisticCapture, into memory the process had not touched yet): the main thread's system time fell from
 * 0.7-1.1 s to 0.1-0.2 s and its user time by about a third, 1.2-1.5 M records/s became 2.2-2.5.
 *
 * The worker (chunk-worker.ts) makes `ahead` chunks, writes a byte to each of their pages and hands their
 * buffers over (transferred, not copied). The store takes them synchronously: `take` reads what has arrived
 * on the port with `receiveMessageOnPort`, so a loop that never yields (a file being opened, a benchmark) gets
 * them too, and asks for as many as it took. When none is ready (the worker is behind, not started yet, or
 * gone), `take` answers undefined and the store makes the chunk itself, as it did before: a supply can make
 * ingest faster, never stop it. The worker starts when a store asks for its second chunk (or on `start`): a
 * store that never outgrows one chunk (64 Ki records) costs no thread.
 */
import { MessageChannel, type MessagePort, type Worker, receiveMessageOnPort } from 'node:worker_threads';
import { BYTES_PER_RECORD, CHUNK_SIZE, type Chunk, type ChunkSource, chunkOfBuffers } from './store.js';
import { startWorker } from './workers.js';

/** Chunks kept ready by default: about 130 ms of ingest at 2 M records/s, 11 MB. */
export const CHUNKS_AHEAD = 4;
/** Bytes of a page buffer (takeBuffer): an insights stage (insights/index.ts). */
export const PAGE_BUFFER_BYTES = 1 << 20;
/** Page buffers kept ready once asked for: 8 MiB (while a sort and an export run, 20-60 are taken a second). */
export const BUFFERS_AHEAD = 8;

export class ChunkSupply implements ChunkSource {
  private worker: Worker | null = null;
  private port: MessagePort | null = null;
  private readonly ready: Chunk[] = [];
  /** Chunks asked for and not arrived yet. */
  private asked = 0;
  private closed = false;
  private takes = 0;
  /** Chunks handed to the store made ahead, and times the store found none ready (it made one itself). */
  readonly counts = { ahead: 0, none: 0 };
  private readonly readyBuffers: ArrayBuffer[] = [];
  private askedBuffers = 0;
  /** Page buffers handed out made ahead, and times none was ready (the caller made one). */
  readonly bufferCounts = { ahead: 0, none: 0 };

  constructor(private readonly ahead = CHUNKS_AHEAD) {}

  /** Starts the worker (if it is not running) and has it make chunks ahead. Idempotent. */
  start(): void {
    if (this.worker !== null || this.closed) return;
    const { port1, port2 } = new MessageChannel();
    let worker: Worker;
    try {
      worker = startWorker(import.meta.url, './chunk-worker');
    } catch {
      // No worker (a platform without threads): the store makes every chunk itself.
      port1.close();
      this.closed = true;
      return;
    }
    // The port is read with receiveMessageOnPort, never listened to: it must not keep the process alive, and
    // neither may the worker.
    port1.unref();
    worker.unref();
    worker.on('error', () => this.lost());
    worker.on('exit', () => this.lost());
    this.worker = worker;
    this.port = port1;
    worker.postMessage({ port: port2 }, [port2]);
    this.askForMore();
  }

  take(): Chunk | undefined {
    // The first chunk a store asks for is its own: most stores (a small file, a short capture, a test) never
    // need a second, and a worker costs a thread. The second starts the worker.
    if (++this.takes === 1 && this.worker === null) {
      this.counts.none++;
      return undefined;
    }
    this.start();
    this.poll();
    const chunk = this.ready.pop();
    if (chunk === undefined) this.counts.none++;
    else this.counts.ahead++;
    this.askForMore();
    return chunk;
  }

  /**
   * A buffer of PAGE_BUFFER_BYTES whose pages the worker has written (faulted in), or undefined when none is
   * ready (the caller makes its own, as before). The first call starts the worker if it is not running and has
   * it keep BUFFERS_AHEAD ready from then on. Records gathered for a worker fill one at the rate they arrive
   * (the insights' stages, 60-100 MB/s in a 500 k records/s capture): made on the filling thread, a fresh
   * buffer took 256 page faults.
   */
  takeBuffer(): ArrayBuffer | undefined {
    this.start();
    this.poll();
    const buffer = this.readyBuffers.pop();
    if (buffer === undefined) this.bufferCounts.none++;
    else this.bufferCounts.ahead++;
    this.askForMoreBuffers();
    return buffer;
  }

  /**
   * Starts the worker and waits until `n` chunks are ready (polling every 50 ms), at most `timeoutMs` and no
   * longer than the supply lasts; returns how many are. For callers that want the supply warm before they
   * measure (tests, benchmarks), and for the warm-up (service/warm-up.ts).
   */
  async readyChunks(n = this.ahead, timeoutMs = 30_000): Promise<number> {
    this.start();
    for (const end = Date.now() + timeoutMs; this.ready.length < n && Date.now() < end && !this.closed;) {
      // The wait ends with the supply (closed, or its worker gone): a caller that does not wait for it
      // (the warm-up) holds the process no longer than the chunks take.
      await new Promise((resolve) => setTimeout(resolve, 50));
      this.poll();
    }
    return this.ready.length;
  }

  /** Whether the worker is running. */
  get running(): boolean {
    return this.worker !== null;
  }

  /** Bytes of the chunks and page buffers held ready (not yet taken). */
  get bytesHeld(): number {
    return this.ready.length * CHUNK_SIZE * BYTES_PER_RECORD + this.readyBuffers.length * PAGE_BUFFER_BYTES;
  }

  /** Page buffers held ready. */
  get buffersReady(): number {
    return this.readyBuffers.length;
  }

  /** Stops the worker and lets the chunks held go. */
  close(): void {
    this.closed = true;
    this.ready.length = 0;
    this.readyBuffers.length = 0;
    this.port?.close();
    this.port = null;
    void this.worker?.terminate();
    this.worker = null;
  }

  /** Takes in the chunks the worker has delivered (take does it too). */
  poll(): void {
    const port = this.port;
    if (port === null) return;
    for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
      const message: unknown = m.message;
      if (message instanceof ArrayBuffer) {
        this.askedBuffers--;
        if (message.byteLength === PAGE_BUFFER_BYTES) this.readyBuffers.push(message);
        continue;
      }
      this.asked--;
      const chunk = Array.isArray(message) ? chunkOfBuffers(message) : null;
      if (chunk !== null) this.ready.push(chunk);
    }
  }

  private askForMore(): void {
    if (this.port === null) return;
    const wanted = this.ahead - this.ready.length - this.asked;
    if (wanted <= 0) return;
    this.asked += wanted;
    this.port.postMessage(wanted);
  }

  private askForMoreBuffers(): void {
    if (this.port === null) return;
    const wanted = BUFFERS_AHEAD - this.readyBuffers.length - this.askedBuffers;
    if (wanted <= 0) return;
    this.askedBuffers += wanted;
    this.port.postMessage({ buffers: wanted, bytes: PAGE_BUFFER_BYTES });
  }

  /** The worker failed or exited: chunks already here are still good; no more will come. */
  private lost(): void {
    this.worker = null;
    this.poll();
    this.port?.close();
    this.port = null;
    this.closed = true;
  }
}
