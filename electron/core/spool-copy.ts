/**
 * The pcapng and pcap exports' copy of the spool's blocks, on a thread of their own (export-worker.ts): the
 * reads of the spool, the copy into the export's buffer, the writes of the file and the kernel's work for them
 * (first-touch page faults of a new file's page cache: 2-3 ms a MB on a VM) are not the capture's thread's.
 * The capture's thread only says what to copy, in pieces (spool-export.ts): per record its spool location and,
 * for pcapng, its interface's export id and its process's comment options; the interface blocks to write
 * before a record; and the spool segments' descriptors (opened there, the same process's table) with how far
 * each is written for sure. This thread never reads past that: a block not there (its segment was dropped by
 * the ring buffer before its bytes reached the disk) is skipped, as the capture's thread skips records
 * evicted meanwhile.
 */
import fs from 'node:fs';
import { SpoolReader, type SpoolTail } from './files/index.js';
import { pad4 } from './files/pcapng-format.js';
import { PCAP_RECORD_HEADER_SIZE } from './files/pcap-format.js';
import { splitSecondsNs } from './files/timestamp.js';
import { SEGMENT_SCALE } from './spool-store.js';

export type CopyFormat = 'pcapng' | 'pcap';

/** Starts a copy: `out` is the export file's descriptor (written from byte 0: `header` first). */
export interface CopyStart {
  type: 'start';
  format: CopyFormat;
  out: number;
  header: Uint8Array;
  /** Bytes per read of the spool and per write of the file. */
  window: number;
}

/** Records to copy, in order. */
export interface CopyPiece {
  type: 'piece';
  count: number;
  /** Spool location (spoolLocation) of each record. */
  locations: Float64Array;
  /** pcapng: each record's interface id in the export. */
  ids: Int32Array | null;
  /** pcapng: each record's comment options (a `blobs` id), -1 for none. */
  comments: Int32Array | null;
  /** Bytes (interface description blocks) to write before record `before` of this piece, in order. */
  inserts: { before: number; bytes: Uint8Array }[];
  /** Comment options met for the first time in this piece. */
  blobs: { id: number; bytes: Uint8Array }[];
  /**
   * Segments the piece reads: their descriptor when first given (else -1), how far each is written, and the
   * bytes after that which its writer will never write (a full disk): they were in its queue.
   */
  segments: { segment: number; fd: number; readableEnd: number; queued?: Uint8Array }[];
}

export interface CopyEnd {
  type: 'end';
}

export type CopyRequest = CopyStart | CopyPiece | CopyEnd;

export type CopyReply =
  | {
      type: 'piece-done';
      records: number;
      skipped: number;
      /** The piece's arrays, handed back to be filled again. */
      arrays: { locations: Float64Array; ids: Int32Array | null; comments: Int32Array | null };
    }
  | { type: 'finished'; records: number; bytes: number; skipped: number }
  | {
      type: 'error';
      message: string;
      code?: string;
      /** What failed: the export file's writes, the spool's reads, or the thread itself. */
      failed: 'write' | 'read' | 'thread';
    };

/** Blocks are copied in runs of at most this many bytes. */
const MAX_RUN = 1 << 20;
/** Bytes written between datasyncs started while the copy goes on (the last one then has little left). */
const SYNC_EVERY = 32 << 20;

/** An error of the export file's writes (not of the spool's reads). */
export class CopyWriteError extends Error {
  constructor(override readonly cause: NodeJS.ErrnoException) {
    super(cause.message);
  }
}

/**
 * How far a segment is written for sure (what the capture's thread last said: the reader reads the file no
 * further), and the bytes after it that only its writer's queue had.
 */
class KnownEnd implements SpoolTail {
  readableEnd = 0;
  queued: Uint8Array | null = null;
  get size(): number {
    return this.readableEnd + (this.queued?.length ?? 0);
  }
  copyQueued(offset: number, length: number, into: Uint8Array, at: number): number {
    const q = this.queued;
    const from = offset - this.readableEnd;
    if (q === null || from < 0 || from >= q.length) return 0;
    const n = Math.min(length, q.length - from);
    into.set(q.subarray(from, from + n), at);
    return n;
  }
}

/** Little-endian 32-bit word of `b` at `at`. */
function u32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

export class SpoolCopier {
  private out: Buffer;
  private view: DataView;
  private pos = 0;
  /** Bytes in the file so far. */
  private filePos = 0;
  private syncedAt = 0;
  private syncing: Promise<void> | null = null;
  private readonly files = new Map<number, { fd: number; end: KnownEnd }>();
  private readonly readers = new Map<number, SpoolReader>();
  private reader: SpoolReader | null = null;
  private segment = -1;
  /** Locations of the current segment are [segmentBase, segmentBase + SEGMENT_SCALE). */
  private segmentBase = -2 * SEGMENT_SCALE;
  private readonly blobs = new Map<number, Uint8Array>();
  // The run: bytes [runFrom, runTo) of the current reader's window, its blocks' export interface ids.
  private runFrom = 0;
  private runTo = 0;
  private runBlocks = 0;
  private runIds = new Int32Array(8192);
  private readonly time = { seconds: 0, ns: 0 };
  records = 0;
  skipped = 0;

  constructor(
    private readonly format: CopyFormat,
    private readonly fd: number,
    private readonly window: number,
    header: Uint8Array,
  ) {
    this.out = Buffer.allocUnsafe(Math.max(window, header.length));
    this.view = new DataView(this.out.buffer, this.out.byteOffset, this.out.byteLength);
    this.writeBytes(header);
  }

  /** Copies a piece's records; the run of the last ones may wait for the next piece. */
  piece(p: CopyPiece): void {
    for (const s of p.segments) {
      let file = this.files.get(s.segment);
      if (file === undefined) {
        if (s.fd < 0) throw new Error(`spool segment ${s.segment} was never given`);
        file = { fd: s.fd, end: new KnownEnd() };
        this.files.set(s.segment, file);
      }
      if (s.readableEnd > file.end.readableEnd) {
        file.end.readableEnd = s.readableEnd;
        file.end.queued = null;
      }
      if (s.queued !== undefined) file.end.queued = s.queued;
    }
    for (const b of p.blobs) this.blobs.set(b.id, b.bytes);
    let insert = 0;
    const inserts = p.inserts;
    const { locations, ids, comments } = p;
    const pcapng = this.format === 'pcapng';
    for (let k = 0; k < p.count; k++) {
      while (insert < inserts.length && inserts[insert]!.before === k) {
        this.flushRun();
        this.writeBytes(inserts[insert++]!.bytes);
      }
      const location = locations[k]!;
      let at = this.peek(location);
      if (at < 0) {
        this.flushRun();
        at = this.locate(location);
        if (at < 0) {
          this.skipped++;
          continue;
        }
        this.runFrom = this.runTo = at;
      }
      if (pcapng) this.copyBlock(at, ids![k]!, comments === null ? -1 : comments[k]!);
      else this.copyPacket(at);
      this.records++;
    }
    // Interface blocks after the piece's last record go before the next piece's first.
    while (insert < inserts.length) {
      this.flushRun();
      this.writeBytes(inserts[insert++]!.bytes);
    }
  }

  /** Writes what is left and waits for the last datasync started; returns the file's length. */
  async finish(): Promise<number> {
    this.flushRun();
    this.writeOut();
    await this.syncing;
    return this.filePos;
  }

  /** An Enhanced Packet Block at `at` of the window, with its interface id and, when `comment` >= 0, comments. */
  private copyBlock(at: number, id: number, comment: number): void {
    const b = this.reader!.bytes;
    const length = u32(b, at + 4);
    const options = comment < 0 ? undefined : this.blobs.get(comment);
    if (options !== undefined && options.length > 0) {
      // Written on its own, its comments inserted before its direction option (where the row writer puts
      // them): the run so far goes first.
      this.flushRun();
      const body = 28 + pad4(u32(b, at + 20));
      const rest = length - 4 - body; // the direction option and the end of options, or nothing
      const size = length + options.length + (rest === 0 ? 4 : 0);
      this.reserve(size); // the window stays: the reader is ours
      const buf = this.out;
      const view = this.view;
      const out = this.pos;
      buf.set(b.subarray(at, at + body), out);
      buf.set(options, out + body);
      let p = out + body + options.length;
      if (rest > 0) buf.set(b.subarray(at + body, at + body + rest), p);
      else view.setUint32(p, 0, true); // opt_endofopt
      p += rest > 0 ? rest : 4;
      view.setUint32(out + 4, size, true);
      view.setUint32(out + 8, id, true);
      view.setUint32(p, size, true);
      this.pos = p + 4;
      this.runFrom = this.runTo = at + length;
      return;
    }
    if (at !== this.runTo || this.runTo - this.runFrom + length > MAX_RUN) {
      this.flushRun();
      this.runFrom = this.runTo = at;
    }
    if (this.runBlocks === this.runIds.length) {
      const grown = new Int32Array(this.runIds.length * 2);
      grown.set(this.runIds);
      this.runIds = grown;
    }
    this.runIds[this.runBlocks++] = id;
    this.runTo += length;
  }

  /** A classic pcap record (header and packet bytes) of the block at `at` of the window. */
  private copyPacket(at: number): void {
    const b = this.reader!.bytes;
    const capLen = u32(b, at + 20);
    const size = PCAP_RECORD_HEADER_SIZE + capLen;
    this.reserve(size); // the window stays: the reader is ours
    splitSecondsNs(u32(b, at + 12), u32(b, at + 16), this.time);
    const view = this.view;
    const out = this.pos;
    view.setUint32(out, this.time.seconds, true);
    view.setUint32(out + 4, this.time.ns, true);
    view.setUint32(out + 8, capLen, true);
    view.setUint32(out + 12, u32(b, at + 24), true);
    this.out.set(b.subarray(at + 28, at + 28 + capLen), out + PCAP_RECORD_HEADER_SIZE);
    this.pos = out + size;
  }

  /** Where the block at `location` starts in the window when all of it is there already, else -1. */
  private peek(location: number): number {
    const offset = location - this.segmentBase;
    if (offset < 0 || offset >= SEGMENT_SCALE || !this.reader!.holds(offset)) return -1;
    return offset - this.reader!.windowStart;
  }

  /**
   * Where the block at `location` starts in the window, reading it in (positions given before are void); -1
   * when it is not in the spool as far as it is written (its segment dropped before its bytes were).
   */
  private locate(location: number): number {
    const seg = Math.floor(location / SEGMENT_SCALE);
    if (seg !== this.segment) {
      let reader = this.readers.get(seg);
      if (reader === undefined) {
        const file = this.files.get(seg);
        if (file === undefined) return -1;
        // Exports go through the segments mostly forward: older windows go as a newer segment opens.
        for (const n of this.readers.keys()) if (n < seg) this.readers.delete(n);
        reader = new SpoolReader(file.fd, this.window, file.end);
        this.readers.set(seg, reader);
      }
      this.reader = reader;
      this.segment = seg;
      this.segmentBase = seg * SEGMENT_SCALE;
    }
    try {
      return this.reader!.locate(location - this.segmentBase);
    } catch (err) {
      // A read that failed is the disk's; a block cut short or missing is one the ring buffer let go.
      if ((err as NodeJS.ErrnoException).code !== undefined) throw err;
      return -1;
    }
  }

  /** Copies the run to the buffer, its interface ids rewritten. */
  private flushRun(): void {
    const length = this.runTo - this.runFrom;
    if (length === 0) return;
    this.reserve(length);
    const out = this.pos;
    this.out.set(this.reader!.bytes.subarray(this.runFrom, this.runTo), out);
    const view = this.view;
    for (let k = 0, p = out; k < this.runBlocks; k++) {
      view.setUint32(p + 8, this.runIds[k]!, true);
      p += view.getUint32(p + 4, true);
    }
    this.pos = out + length;
    this.runFrom = this.runTo;
    this.runBlocks = 0;
  }

  private writeBytes(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.out.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** Room for `size` bytes at `pos`: the buffer goes to the file first when it has less. */
  private reserve(size: number): void {
    if (this.out.length - this.pos >= size) return;
    this.writeOut();
    if (this.out.length < size) {
      this.out = Buffer.allocUnsafe(size);
      this.view = new DataView(this.out.buffer, this.out.byteOffset, this.out.byteLength);
    }
  }

  private writeOut(): void {
    let done = 0;
    try {
      while (done < this.pos)
        done += fs.writeSync(this.fd, this.out, done, this.pos - done, this.filePos + done);
    } catch (err) {
      throw new CopyWriteError(err as NodeJS.ErrnoException);
    }
    this.filePos += this.pos;
    this.pos = 0;
    if (this.filePos - this.syncedAt >= SYNC_EVERY && this.syncing === null) {
      // The disk writes back what we have so far while we go on: the commit's datasync finds little left. A
      // failure here shows again in the commit's own datasync, which reports it.
      this.syncedAt = this.filePos;
      this.syncing = new Promise<void>((resolve) => fs.fdatasync(this.fd, () => resolve())).finally(() => {
        this.syncing = null;
      });
    }
  }
}
