/**
 * The capture's spool on disk: every record is appended to pcapng as it arrives (as dumpcap does), so a
 * crash loses nothing already written, and details and exports read the packets back from it.
 * A spool belongs to one capture: a new capture or file open starts a new one; a clean shutdown removes it,
 * a crash leaves it for `icmpcap` to reopen.
 *
 * Segments: the spool is a sequence of files `capture-<time>-<pid>-0000.pcapng`, `-0001`, ..., each a
 * complete pcapng (its own Section Header Block, Interface Description Blocks repeated as interfaces appear
 * in it), so every file still on disk opens after `kill -9`. The writer moves to a new segment at a chunk
 * boundary (a record index that is a multiple of 65536) when the caller's `cut` says so (ring-buffer units),
 * or when a segment passes SEGMENT_SOFT_MAX bytes. `dropBefore(index)` deletes the segments whose records
 * are all below `index` (records evicted by the ring buffer).
 *
 * Record locations: (segment, offset) encoded exactly in one Float64 (the store: spool-locations.ts) as
 * segment * 2^36 + offset: offsets below 2^36 (64 GiB; segments are cut at SEGMENT_SOFT_MAX = 32 GiB and a
 * chunk of records is at most 65536 * 65,580 bytes = 4.3 GB) and segment numbers below 2^17 (131,072; each
 * holds at least one chunk of records or 32 GiB, so at least 8.5 G records per capture, more than the
 * store's 2^31 indices).
 */
import { close, closeSync, existsSync, mkdirSync, open, openSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { DecodedRecord } from './record.js';
import { OFF, RECORD_HEADER_SIZE, REC_F_PAD, alignRecord } from './record.js';
import { PcapngSpoolWriter, SpoolReader, type SpoolPacket } from './files/index.js';
import { CHUNK_MASK } from './store.js';

export const SEGMENT_SHIFT = 36;
export const SEGMENT_SCALE = 2 ** SEGMENT_SHIFT;
export const MAX_SEGMENTS = 2 ** 17;
export const SEGMENT_SOFT_MAX = 2 ** 35;
/** Readers kept open at once (each holds a descriptor and a 1 MiB window). */
const OPEN_READERS = 8;

export function defaultSpoolDir(): string {
  const cache = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(cache, 'icmpcap', 'spool');
}

function stamp(ms = Date.now()): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}

/** Spool names this process has used (see `Spool.create`). */
const usedBases = new Set<string>();

/**
 * A spool name in `dir` no spool of this process has had and no file has: two spools started in the same
 * second would otherwise share one, and the replaced one's files, removed in the background, would take the
 * new one's with them. The time moves on by a second until the name is free.
 */
function freshBase(dir: string): string {
  for (let ms = Date.now(); ; ms += 1000) {
    const base = join(dir, `capture-${stamp(ms)}-${process.pid}`);
    if (!usedBases.has(base) && !existsSync(`${base}-0000.pcapng`)) {
      usedBases.add(base);
      return base;
    }
  }
}

/** Encodes a record's location in a segment as one exact Float64. */
export function spoolLocation(segment: number, offset: number): number {
  return segment * SEGMENT_SCALE + offset;
}

/** Decodes spoolLocation. */
export function splitLocation(location: number): { segment: number; offset: number } {
  const segment = Math.floor(location / SEGMENT_SCALE);
  return { segment, offset: location - segment * SEGMENT_SCALE };
}

interface Segment {
  number: number;
  path: string;
  /** Absolute index of its first record. */
  firstRecord: number;
  /** Its writer: after the segment is closed it still writes what it queued, and readers read the queue. */
  writer: PcapngSpoolWriter;
}

/**
 * Tells the spool, at a chunk boundary, whether to start a new segment there: `index` is the absolute
 * record index about to be written, `tsNs` its capture time (ns since the epoch, as a double).
 */
export type SegmentCut = (index: number, tsNs: number, segmentFirstTsNs: number) => boolean;

export class Spool {
  private writer: PcapngSpoolWriter;
  /** Live segments, oldest first; the last is the one being written. */
  private readonly segments: Segment[] = [];
  private readonly readers = new Map<number, { fd: number; reader: SpoolReader }>();
  private offsets = new Float64Array(8192);
  private segmentFirstTs = -1;
  private closed = false;
  private lastSegment = -1;
  private lastReader: SpoolReader | null = null;
  /** Segment files being deleted in the thread pool (see dropBefore). */
  private readonly removing = new Set<Promise<void>>();
  /**
   * The next segment's file, opened in the thread pool while this one is written (see openAhead): a cut then
   * opens nothing on the event loop, where creating a file waits for the file system's journal (4-16 ms on
   * this machine's disk while the previous segment's bytes are forced out, far longer on a slow disk).
   */
  private ahead: { number: number; path: string; fd: number | null } | null = null;
  /** Hears the first write error of any segment (writes run in the thread pool: see PcapngSpoolWriter). */
  onWriteError: ((err: Error) => void) | null = null;

  private constructor(
    /** Path prefix: segment k is `${base}-${k padded to 4}.pcapng`. */
    readonly base: string,
    private readonly application: string,
    private readonly snaplen: number,
  ) {
    this.writer = this.openSegment(0, 0);
  }

  static create(dir: string, application: string, snaplen: number): Spool {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new Error(
        `cannot create the spool folder ${dir}: ${(err as Error).message}; set XDG_CACHE_HOME to a writable folder`,
      );
    }
    return new Spool(freshBase(dir), application, snaplen);
  }

  /** The segment being written. */
  get path(): string {
    return this.segments[this.segments.length - 1]!.path;
  }

  /** The segment files on disk, oldest first. */
  get paths(): string[] {
    return this.segments.map((s) => s.path);
  }

  private segmentPath(number: number): string {
    return `${this.base}-${String(number).padStart(4, '0')}.pcapng`;
  }

  private openSegment(number: number, firstRecord: number): PcapngSpoolWriter {
    if (number >= MAX_SEGMENTS) throw new Error(`the spool has run out of segment numbers (${MAX_SEGMENTS})`);
    const path = this.segmentPath(number);
    // Opened ahead, or (not opened yet, or that failed) here: a late open ahead then finds the file and is let go.
    const ahead = this.ahead?.number === number ? this.ahead : null;
    this.ahead = null;
    const options = { application: this.application, snaplen: this.snaplen };
    const writer = PcapngSpoolWriter.create(path, options, ahead?.fd ?? undefined);
    writer.onError = (err) => this.onWriteError?.(err);
    this.segments.push({ number, path, firstRecord, writer });
    this.segmentFirstTs = -1;
    this.openAhead(number + 1);
    return writer;
  }

  /**
   * Creates segment `number`'s file in the thread pool, for the cut that will need it. Created exclusively
   * ('wx'): if the cut came first and opened the file itself, this open fails and changes nothing; if it
   * lands after the cut or the spool's end, its descriptor is closed (and at the end, the empty file removed).
   */
  private openAhead(number: number): void {
    if (number >= MAX_SEGMENTS || this.closed) return;
    const ahead = { number, path: this.segmentPath(number), fd: null as number | null };
    this.ahead = ahead;
    open(ahead.path, 'wx', 0o600, (err, fd) => {
      if (err) return; // the cut opens it (and says why, if it cannot)
      if (this.ahead === ahead && !this.closed) {
        ahead.fd = fd;
        return;
      }
      close(fd, () => undefined);
      if (!this.segments.some((s) => s.path === ahead.path)) this.remove(ahead.path);
    });
  }

  /** The file opened ahead and never used is closed and removed (the spool ends). */
  private dropAhead(): void {
    const ahead = this.ahead;
    this.ahead = null;
    if (ahead?.fd == null) return; // an open still under way cleans up after itself
    // At once, as close() removes the segments: an empty file, nothing waits for its pages.
    closeSync(ahead.fd);
    rmSync(ahead.path, { force: true });
  }

  private rotate(firstRecord: number): void {
    const number = this.segments[this.segments.length - 1]!.number + 1;
    const next = this.openSegment(number, firstRecord);
    // Its queue is still written, in order, by the closed writer; readers of it read that queue meanwhile.
    this.writer.close();
    this.writer = next;
  }

  /**
   * Appends every record of the batch, the first having absolute index `firstIndex`, and returns each
   * one's location (spoolLocation; valid until the next call). Interfaces are announced with their names
   * the first time they appear in a segment. At chunk boundaries, `cut` may start a new segment.
   */
  append(
    batch: ArrayBuffer,
    records: number,
    ifname: (ifindex: number) => string,
    firstIndex = 0,
    cut?: SegmentCut,
  ): Float64Array {
    // Each record takes 72 bytes or more: a batch has no more records than that, whatever `records` says.
    const most = Math.floor(batch.byteLength / RECORD_HEADER_SIZE);
    if (this.offsets.length < Math.max(records, most))
      this.offsets = new Float64Array(Math.max(records, most, this.offsets.length * 2));
    // Segments start at a chunk's first record: a batch that cannot hold one goes whole to the writer,
    // whose encoder walks it once (most batches: one in 16 of 4096 records holds a chunk's start).
    const inChunk = firstIndex & CHUNK_MASK;
    if (this.segmentFirstTs >= 0 && inChunk !== 0 && inChunk + most <= CHUNK_MASK + 1) {
      this.writeRun(batch, 0, batch.byteLength, 0, ifname);
      return this.offsets;
    }
    const view = new DataView(batch);
    let index = firstIndex;
    let runStart = 0; // byte offset where the current segment's part of the batch starts
    let runFirst = 0; // offsets[] slot of its first record
    let at = 0;
    for (; at + 8 <= batch.byteLength;) {
      const len = view.getUint32(at + OFF.len, true);
      if (len < 8) break; // the writer reports the damage with its offset
      if (!(view.getUint16(at + OFF.flags, true) & REC_F_PAD)) {
        if ((index & CHUNK_MASK) === 0) {
          const ts =
            view.getUint32(at + OFF.tsNs + 4, true) * 4294967296 + view.getUint32(at + OFF.tsNs, true);
          const current = this.segments[this.segments.length - 1]!;
          if (
            index > current.firstRecord &&
            (this.writer.size >= SEGMENT_SOFT_MAX || (cut?.(index, ts, this.segmentFirstTs) ?? false))
          ) {
            runFirst += this.writeRun(batch, runStart, at, runFirst, ifname);
            runStart = at;
            this.rotate(index);
          }
          if (this.segmentFirstTs < 0) this.segmentFirstTs = ts;
        } else if (this.segmentFirstTs < 0) {
          this.segmentFirstTs =
            view.getUint32(at + OFF.tsNs + 4, true) * 4294967296 + view.getUint32(at + OFF.tsNs, true);
        }
        index++;
      }
      at += alignRecord(len);
    }
    this.writeRun(batch, runStart, batch.byteLength, runFirst, ifname);
    return this.offsets;
  }

  /** Writes batch[from, to) to the current segment; fills locations from `slot`; returns records written. */
  private writeRun(
    batch: ArrayBuffer,
    from: number,
    to: number,
    slot: number,
    ifname: (ifindex: number) => string,
  ): number {
    if (to <= from) return 0;
    const base = this.segments[this.segments.length - 1]!.number * SEGMENT_SCALE;
    return this.writer.append(batch, from, to - from, this.offsets, slot, base, ifname);
  }

  read(location: number): DecodedRecord & { ifaceId: number } {
    const { segment, offset } = splitLocation(location);
    return this.readerOf(segment).read(offset);
  }

  /** The packet at `location` as written, never decoded (see SpoolReader.readPacket). */
  readPacket(location: number, into?: SpoolPacket, withDirection = true): SpoolPacket {
    const segment = Math.floor(location / SEGMENT_SCALE);
    return this.readerOf(segment).readPacket(location - segment * SEGMENT_SCALE, into, withDirection);
  }

  private readerOf(segment: number): SpoolReader {
    // Exports read one segment after another: the last reader serves most calls without touching the map.
    if (segment === this.lastSegment && this.lastReader) return this.lastReader;
    let open = this.readers.get(segment);
    if (open === undefined) {
      const first = this.segments[0]?.number ?? 0;
      const seg = this.segments[segment - first];
      if (seg === undefined || seg.number !== segment)
        throw new Error(`spool segment ${segment} is gone (dropped by the ring buffer)`);
      if (this.readers.size >= OPEN_READERS) {
        const [oldest, r] = this.readers.entries().next().value as [number, { fd: number }];
        closeSync(r.fd);
        this.readers.delete(oldest);
        if (oldest === this.lastSegment) this.lastReader = null;
      }
      const fd = openSync(seg.path, 'r');
      open = { fd, reader: new SpoolReader(fd, undefined, seg.writer) };
    } else this.readers.delete(segment);
    this.readers.set(segment, open); // most recently used last
    this.lastSegment = segment;
    this.lastReader = open.reader;
    return open.reader;
  }

  /**
   * Segment `segment`'s file opened for reading (a descriptor of its own, which keeps the file readable after
   * the ring buffer deletes it) and its writer: how far the file is written for sure (`readableEnd`), and
   * `whenWritten`. For a reader on another thread, which cannot read the writer's queue. Close it when done.
   */
  segmentFile(segment: number): { fd: number; writer: PcapngSpoolWriter; close(): void } {
    const first = this.segments[0]?.number ?? 0;
    const seg = this.segments[segment - first];
    if (seg === undefined || seg.number !== segment)
      throw new Error(`spool segment ${segment} is gone (dropped by the ring buffer)`);
    const fd = openSync(seg.path, 'r');
    return { fd, writer: seg.writer, close: () => closeSync(fd) };
  }

  /** Deletes the segments whose records all have indices below `index`; returns how many. */
  dropBefore(index: number): number {
    let dropped = 0;
    while (this.segments.length > 1 && this.segments[1]!.firstRecord <= index) {
      const seg = this.segments.shift()!;
      const open = this.readers.get(seg.number);
      if (open) {
        closeSync(open.fd);
        this.readers.delete(seg.number);
        if (seg.number === this.lastSegment) this.lastReader = null;
      }
      seg.writer.discard(); // its queued writes would go to a deleted file
      this.remove(seg.path);
      dropped++;
    }
    return dropped;
  }

  /**
   * Deletes a dropped segment's file in the thread pool: unlinking tens of megabytes whose pages are still
   * being written back takes the file system 100-300 ms, which the capture's turn must not wait for. The
   * spool no longer lists it (nor counts its bytes); a crash before the unlink lands leaves it with the
   * spool's other files, whose recovery reads what is on disk.
   */
  private remove(path: string): void {
    const done: Promise<void> = rm(path, { force: true })
      .catch(() => undefined) // already gone, or a folder we may not write: nothing the capture can do
      .finally(() => this.removing.delete(done));
    this.removing.add(done);
  }

  /** Resolves when the segment files dropped so far are deleted. */
  async removals(): Promise<void> {
    while (this.removing.size > 0) await Promise.all([...this.removing]);
  }

  /**
   * Record numbering starts again at 0 (the index was cleared): the segments before the current one are
   * deleted (nothing refers to them any more) and the current one counts as holding only older records, so
   * the next chunk boundary may cut a new segment and the next `dropBefore` deletes it.
   */
  restartNumbering(): void {
    const current = this.segments[this.segments.length - 1]!;
    this.dropBefore(current.firstRecord);
    current.firstRecord = -1;
  }

  /** Bytes in the segment being written. */
  get bytes(): number {
    return this.writer.size;
  }

  /** Bytes of every segment still on disk (or queued for it). */
  get totalBytes(): number {
    let total = 0;
    for (const seg of this.segments) total += seg.writer.size;
    return total;
  }

  /** Bytes appended but not yet in the files: the write queue, which the service keeps bounded. */
  get backlog(): number {
    let total = 0;
    for (const seg of this.segments) total += seg.writer.backlog;
    return total;
  }

  /** Resolves when every byte appended so far is in the files (or writing stopped on an error). */
  async drained(): Promise<void> {
    for (const seg of [...this.segments]) await seg.writer.drained();
  }

  /**
   * Writes what is queued and forces it to the disk, blocking the caller (tests and benchmarks; the service
   * uses syncAsync).
   */
  sync(): void {
    if (!this.closed) for (const seg of this.segments) seg.writer.flush();
  }

  /**
   * Forces the bytes appended so far to the disk off the event loop (their writes first, then fdatasync),
   * so a crash of the machine loses at most what came since; `done` gets the error, if any. A segment closed
   * by a rotation is forced here while its writes are queued, and by its writer once they are done.
   */
  syncAsync(done: (err: Error | null) => void): void {
    if (this.closed) return done(null);
    let left = this.segments.length;
    let first: Error | null = null;
    for (const seg of this.segments) {
      seg.writer.flushAsync((err) => {
        first ??= err;
        if (--left === 0) done(first);
      });
    }
  }

  /**
   * Closes the files without writing what is still queued (the caller deletes them, e.g. off the event loop).
   */
  abandon(): void {
    if (this.closed) return;
    for (const seg of this.segments) seg.writer.discard();
    this.close(true);
  }

  /**
   * Closes the files; removes the spool unless asked to keep it (then its queued bytes are still written:
   * `drained()` tells when they are).
   */
  close(keep = false): void {
    if (this.closed) return;
    this.closed = true;
    for (const seg of this.segments) {
      if (keep) seg.writer.close();
      else seg.writer.discard();
    }
    for (const { fd } of this.readers.values()) closeSync(fd);
    this.readers.clear();
    this.lastReader = null;
    this.dropAhead();
    if (!keep) for (const seg of this.segments) rmSync(seg.path, { force: true });
  }
}
