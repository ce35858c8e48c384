/**
 * The in-memory columnar index of a capture: a few typed-array columns per record, in chunks of 64 Ki
 * records so growth never copies and never leaves a half-empty doubling behind. Addresses and interface
 * names are interned, so a record costs the same whether it is IPv4 or IPv6. The raw bytes live in the
 * spool file on disk; `spool` says where (spool-locations.ts: 4 bytes per record).
 *
 * Ring buffer (a capture with a limit): `evictTo` drops whole chunks from the front. Record indices stay
 * absolute (record number = index + 1 keeps counting); `firstIndex` is the first live one, always a
 * multiple of CHUNK_SIZE. A dropped chunk is replaced by one shared empty sentinel, so `chunks` stays a dense
 * array and `chunks[index >>> CHUNK_SHIFT]` is unchanged. Indices stay below 2^31 (`MAX_RECORDS`: the view
 * keeps them in Uint32Arrays and chunk math uses 32-bit shifts); a ring-buffer capture stops there.
 *
 * Chunks are recycled: those `clear` and `evictTo` let go are kept as spares and zeroed when the next records
 * need a chunk, and `releaseSpares` lets the surplus go a few at a time. Dropping a 20 M-record index at once
 * (800 MB of ArrayBuffers) had the collector free it all while the next capture or file filled fresh chunks:
 * on these machines that showed as ingest turns of up to 155 ms (that one off CPU for about 60 ms, with 173
 * voluntary context switches) while other threads freed and it allocated. A ring buffer's capture
 * reuses the chunks it evicts instead of faulting in new ones (about 9 ms a chunk at 14 µs a page fault).
 * Nothing holds a Chunk across turns: readers index `chunks` (or `chunkOf`) when they read.
 *
 * Bytes per record: tsRel 8 + src 4 + dst 4 + meta 4 + idSeq 4 + misc 4 + len 4 + spool 4 +
 * rtt 4 + flags 1 = 41.
 */
import { SpoolLocations } from './spool-locations.js';
import { touchPages } from './workers.js';

export const CHUNK_SHIFT = 16;
export const CHUNK_SIZE = 1 << CHUNK_SHIFT;
export const CHUNK_MASK = CHUNK_SIZE - 1;

export interface Chunk {
  /** ns since the capture's base time (exact to the ns for 104 days). */
  tsRel: Float64Array;
  src: Uint32Array;
  dst: Uint32Array;
  /** type | code << 8 | dir << 16 | family << 24 (family 4 or 6) */
  meta: Uint32Array;
  /** id << 16 | seq (meaningful when misc has MISC_F_HAS_ECHO) */
  idSeq: Uint32Array;
  /** ttl | ifIdx << 8 (interned interface, 16 bits) | flags << 24 | hook << 26 (7 = none) */
  misc: Uint32Array;
  /** origLen | capLen << 16 */
  len: Uint32Array;
  /** Where each record's bytes are in the spool: `spool.at(i)` (spool-store.ts spoolLocation, -1: none). */
  spool: SpoolLocations;
  /** RTT in ms for replies matched to a request, NaN otherwise. */
  rtt: Float32Array;
  /** What the table flags: FLAG_* (fragment, later fragment, short, bad checksum). */
  flags: Uint8Array;
}

/** The packet is an IP fragment (uapi ICMPCAP_REC_F_FRAGMENT). */
export const FLAG_FRAGMENT = 1;
/** A later fragment: no ICMP header in it, type and code mean nothing (ICMPCAP_REC_F_NOT_FIRST). */
export const FLAG_NOT_FIRST = 2;
/** The packet ends before a whole ICMP header (ICMPCAP_REC_F_SHORT). */
export const FLAG_SHORT = 4;
/** The whole message was captured and its ICMP checksum is wrong. */
export const FLAG_BAD_CHECKSUM = 8;

export const MISC_F_HAS_ECHO = 1 << 24;
export const MISC_F_TRUNCATED = 2 << 24;
/** An echo request with no reply within the timeout (set by the aggregator once judged; Wireshark's
 * "no response found", the filter's icmp.resp_not_found). Bit 29: above the hook's three bits. */
export const MISC_F_NO_RESPONSE = 1 << 29;
export const MISC_HOOK_SHIFT = 26;
export const MISC_HOOK_NONE = 7;
export const HOOK_NAMES = ['prerouting', 'local-in', 'forward', 'local-out', 'postrouting'] as const;

export function hookName(misc: number): string {
  return HOOK_NAMES[(misc >>> MISC_HOOK_SHIFT) & 7] ?? 'none';
}

/** Spare chunks kept without limit of time (a ring buffer's eviction unit is 4 chunks); above it, spares go
 * SPARES_RELEASED_PER_CALL at a time (the service calls `releaseSpares` on its tick, 4 times a second). */
export const SPARES_KEPT = 8;
export const SPARES_RELEASED_PER_CALL = 2;

/** Makes a recycled chunk as a new one is: every column zero, no spool locations. */
function resetChunk(chunk: Chunk): Chunk {
  chunk.tsRel.fill(0);
  chunk.src.fill(0);
  chunk.dst.fill(0);
  chunk.meta.fill(0);
  chunk.idSeq.fill(0);
  chunk.misc.fill(0);
  chunk.len.fill(0);
  chunk.spool.reset();
  chunk.rtt.fill(0);
  chunk.flags.fill(0);
  return chunk;
}

/**
 * Bytes per record of each column, in the order of `Chunk`'s fields (tsRel, src, dst, meta, idSeq, misc, len,
 * spool, rtt, flags): the buffers a chunk is made of, as `chunkBuffers` makes them.
 */
export const COLUMN_BYTES: readonly number[] = [8, 4, 4, 4, 4, 4, 4, 4, 4, 1];

/**
 * New (zeroed) buffers for one chunk's columns, every page written once so that it is in memory: a thread that
 * makes chunks ahead (chunk-supply.ts) takes the page faults of their first touch, not the one that fills them.
 */
export function chunkBuffers(touch: boolean): ArrayBuffer[] {
  return COLUMN_BYTES.map((bytes) => newBuffer(bytes * CHUNK_SIZE, touch));
}

/** A new buffer of `bytes`; `touch`: a byte of each page written, so that its page faults are taken here. */
export function newBuffer(bytes: number, touch: boolean): ArrayBuffer {
  const buffer = new ArrayBuffer(bytes);
  if (touch) touchPages(buffer);
  return buffer;
}

/** The chunk whose columns are `buffers` (as `chunkBuffers` makes them); null when they are not that. */
export function chunkOfBuffers(buffers: readonly unknown[]): Chunk | null {
  if (
    buffers.length !== COLUMN_BYTES.length ||
    !buffers.every((b, k) => b instanceof ArrayBuffer && b.byteLength === COLUMN_BYTES[k]! * CHUNK_SIZE)
  )
    return null;
  const b = buffers as ArrayBuffer[];
  // One shape for every chunk, whoever made it: code that reads chunks stays optimized for one hidden class.
  return {
    tsRel: new Float64Array(b[0]!),
    src: new Uint32Array(b[1]!),
    dst: new Uint32Array(b[2]!),
    meta: new Uint32Array(b[3]!),
    idSeq: new Uint32Array(b[4]!),
    misc: new Uint32Array(b[5]!),
    len: new Uint32Array(b[6]!),
    spool: new SpoolLocations(new Uint32Array(b[7]!)),
    rtt: new Float32Array(b[8]!),
    flags: new Uint8Array(b[9]!),
  };
}

function newChunk(): Chunk {
  return chunkOfBuffers(chunkBuffers(false))!;
}

/**
 * Where a store gets its new chunks before it makes one itself (chunk-supply.ts: made ahead on another
 * thread); undefined when none is ready.
 */
export interface ChunkSource {
  take(): Chunk | undefined;
}

/** What an evicted chunk is replaced with: zero-length columns shared by every evicted slot. */
export const EVICTED_CHUNK: Readonly<Chunk> = Object.freeze({
  tsRel: new Float64Array(0),
  src: new Uint32Array(0),
  dst: new Uint32Array(0),
  meta: new Uint32Array(0),
  idSeq: new Uint32Array(0),
  misc: new Uint32Array(0),
  len: new Uint32Array(0),
  spool: new SpoolLocations(0),
  rtt: new Float32Array(0),
  flags: new Uint8Array(0),
});

/** Record indices must fit 31 bits (see above); a capture stops before this many. */
export const MAX_RECORDS = 2 ** 31 - CHUNK_SIZE;

export const BYTES_PER_RECORD = 8 + 4 + 4 + 4 + 4 + 4 + 4 + 4 + 4 + 1;

/** Interns strings to small integers; index 0 is reserved for "none". */
export class Interner {
  private readonly ids = new Map<string, number>();
  readonly values: string[] = [''];

  intern(value: string): number {
    let id = this.ids.get(value);
    if (id === undefined) {
      id = this.values.length;
      this.values.push(value);
      this.ids.set(value, id);
    }
    return id;
  }

  get(id: number): string {
    return this.values[id] ?? '';
  }

  lookup(value: string): number | undefined {
    return this.ids.get(value);
  }

  get size(): number {
    return this.values.length;
  }
}

export class RecordStore {
  readonly chunks: Chunk[] = [];
  /** Chunks let go, for the next records (see the file's comment). */
  private readonly spares: Chunk[] = [];
  private count = 0;
  private first = 0;
  /** Absolute time of tsRel == 0, in ns since the epoch. */
  baseNs: bigint | null = null;
  /** Chunks made ahead (chunk-supply.ts), taken before a new one is made here; spares come first. */
  supply: ChunkSource | null = null;
  private readonly evictListeners: ((from: number, to: number) => void)[] = [];

  /**
   * Calls `listener(from, to)` when records `from..to-1` (whole chunks) are about to be evicted, while their
   * columns can still be read: what refers to them (address references, peers) lets go.
   */
  onEvict(listener: (from: number, to: number) => void): void {
    this.evictListeners.push(listener);
  }

  /** One past the last record's index (absolute: evicted records still count). */
  get length(): number {
    return this.count;
  }

  /** The first live record index (0 until records are evicted; always a multiple of CHUNK_SIZE). */
  get firstIndex(): number {
    return this.first;
  }

  /** Records held (length - firstIndex). */
  get live(): number {
    return this.count - this.first;
  }

  /** True when record `index` exists and has not been evicted. */
  has(index: number): boolean {
    return index >= this.first && index < this.count;
  }

  /**
   * Drops every record below `index` (a multiple of CHUNK_SIZE, at most the start of the chunk being
   * filled) and releases their chunks. Returns how many records were dropped.
   */
  evictTo(index: number): number {
    if (index <= this.first) return 0;
    if (index & CHUNK_MASK || index > this.count)
      throw new RangeError(`cannot evict to ${index}: not a chunk boundary within ${this.count} records`);
    for (const listener of this.evictListeners) listener(this.first, index);
    for (let c = this.first >>> CHUNK_SHIFT; c < index >>> CHUNK_SHIFT; c++) {
      this.spares.push(this.chunks[c]!);
      this.chunks[c] = EVICTED_CHUNK;
    }
    const dropped = index - this.first;
    this.first = index;
    return dropped;
  }

  /** Reserves the next slot and returns its chunk and offset; the caller fills the columns. */
  next(): { chunk: Chunk; i: number; index: number } {
    const index = this.count;
    const c = index >>> CHUNK_SHIFT;
    let chunk = this.chunks[c];
    if (chunk === undefined) {
      const spare = this.spares.pop();
      chunk = spare !== undefined ? resetChunk(spare) : (this.supply?.take() ?? newChunk());
      this.chunks.push(chunk);
    }
    this.count++;
    return { chunk, i: index & CHUNK_MASK, index };
  }

  chunkOf(index: number): Chunk {
    const chunk = this.chunks[index >>> CHUNK_SHIFT];
    if (chunk === undefined || index >= this.count || index < this.first)
      throw new RangeError(
        index < this.first && index >= 0
          ? `record ${index} was evicted (the first live record is ${this.first})`
          : `record ${index} does not exist`,
      );
    return chunk;
  }

  clear(): void {
    for (let c = this.first >>> CHUNK_SHIFT; c < this.chunks.length; c++) this.spares.push(this.chunks[c]!);
    this.chunks.length = 0;
    this.count = 0;
    this.first = 0;
    this.baseNs = null;
  }

  /** Spare chunks held (let go by `clear` or `evictTo`, not yet reused or released). */
  get spareChunks(): number {
    return this.spares.length;
  }

  /** Lets go of up to SPARES_RELEASED_PER_CALL spares above SPARES_KEPT (the oldest first). */
  releaseSpares(): void {
    const surplus = Math.min(SPARES_RELEASED_PER_CALL, this.spares.length - SPARES_KEPT);
    if (surplus > 0) this.spares.splice(0, surplus);
  }

  /**
   * Bytes held by the live chunks' columns, the unfilled end of the last chunk included (what
   * `service.bytes_per_record` divides), and the spool locations' extra runs, if any.
   */
  get bytesAllocated(): number {
    let runs = 0;
    for (let c = this.first >>> CHUNK_SHIFT; c < this.chunks.length; c++)
      runs += this.chunks[c]!.spool.byteLength - CHUNK_SIZE * 4;
    return (this.chunks.length - (this.first >>> CHUNK_SHIFT)) * CHUNK_SIZE * BYTES_PER_RECORD + runs;
  }
}
