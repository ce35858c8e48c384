/**
 * The capture service's spool: every record goes to a pcapng file on disk as it arrives (as dumpcap does), so
 * a crash loses nothing already written, and details/hex views read single packets back by file offset.
 */
import fs from 'node:fs';
import {
  alignRecord,
  decodeRecord,
  OFF,
  RECORD_HEADER_SIZE,
  REC_F_PAD,
  type DecodedRecord,
} from '../record.js';
import type { SpoolRun } from '../../../native/index.js';
import { nativeSpoolEncoder, type SpoolEncoder } from '../native.js';
import { encodeRecordInto, MAX_RECORD_DATA } from './packet.js';
import { BLOCK, MAX_BLOCK_SIZE, pad4 } from './pcapng-format.js';
import { packetDirection } from './pcapng-read.js';
import {
  directionFlags,
  interfaceDescriptionBlock,
  sectionHeaderBlock,
  writeEnhancedPacketBlock,
} from './pcapng-write.js';
import { defaultOsName } from './system.js';

export interface SpoolOptions {
  /** shb_userappl, e.g. `icmpcap 0.1.0`. */
  application: string;
  /** Snap length written in each interface block (0 = none). */
  snaplen?: number;
  /**
   * Who encodes the packet blocks: the native addon (the default when it loads) or JavaScript. The bytes
   * are the same; the addon takes a fraction of the time (the spool was a sixth of a capture's main thread),
   * and on the way to the file, in the thread pool: the loop only lays the blocks out.
   */
  encoder?: 'native' | 'js';
}

/** What the native encoder reports back: [where it stopped in the batch, in the page, records, detail]. */
const encodeResult = new Float64Array(4);

/** Bytes handed to one write system call at most (a few pages of the queue). */
const MAX_WRITE = 16 << 20;
/** The queue's pages: encoded blocks wait in them until they are in the file. */
const PAGE_SIZE = 4 << 20;
/**
 * A write starts once this many bytes are queued, or WRITE_DELAY_MS after the first of them, whichever comes
 * first (at once when someone waits for them, or the file is closing): each write is a trip through the
 * thread pool, and waking a pool thread cost the event loop tens of µs on a 2-vCPU machine, once per batch
 * under a flood (4 % of its time during a sort and an export). The bytes waiting are readable all along
 * (SpoolTail); a crash of the process loses them, as it loses a write still in the pool.
 */
const MIN_WRITE = 1 << 20;
const WRITE_DELAY_MS = 20;

/**
 * Written pages kept for reuse, shared by every writer of the process: a capture's spool is a chain of segment
 * files, one writer each, and a new writer's fresh pages cost a page fault per 4 KiB on the capture's thread
 * (22 000 of them, half the capture thread's faults, in a 10 M-record ring-buffer capture's 38 segments when
 * each writer kept its own). A page is here only while no queue holds it and no write reads it.
 */
const sparePages: Uint8Array[] = [];
/** Pages kept in sparePages at most (16 MiB). */
const SPARE_PAGES = 4;

/** A page of the write queue: file bytes [start, start + filled) in bytes[0, filled). */
interface Page {
  bytes: Uint8Array;
  view: DataView;
  start: number;
  filled: number;
  source?: undefined;
}

/**
 * Packet blocks of the write queue laid out but not encoded yet (the native encoder's): file bytes
 * [start, start + filled) are the blocks of `source`'s records. They are encoded in the thread pool just
 * before their write (encodeSpoolRuns), or at once when someone reads or flushes them first; `bytes` holds
 * them once encoded (bytes[0, filled)).
 */
interface Run {
  start: number;
  filled: number;
  source: RunSource;
  bytes: Uint8Array | null;
}

/** What a Run encodes: the records of batch[byteOffset, byteOffset + byteLength) with this interface table. */
interface RunSource {
  batch: ArrayBuffer;
  byteOffset: number;
  byteLength: number;
  interfaces: Uint32Array;
}

type Entry = Page | Run;

/** What `append` was given: a batch's records, where their locations go, and how interfaces are named. */
interface BatchPart {
  batch: ArrayBuffer;
  byteOffset: number;
  byteLength: number;
  offsetsOut: Float64Array | undefined;
  offsetsOutStart: number;
  locationBase: number;
  ifname: ((ifindex: number) => string) | undefined;
}

/** An interface's name in its description block: `ifname(index)`, or `if<index>` without one. */
function interfaceName(ifindex: number, ifname: ((ifindex: number) => string) | undefined): string {
  return ifname ? ifname(ifindex) : `if${ifindex}`;
}

/**
 * Where a reader of a file still being written finds the bytes not in the file yet (SpoolReader): the file
 * is read up to `readableEnd`; what follows comes from the writer's queue.
 */
export interface SpoolTail {
  /** Bytes of the file that are written for sure; past this, reading the file may see a write half done. */
  readonly readableEnd: number;
  /** Bytes appended so far (written or queued). */
  readonly size: number;
  /** Copies the queued bytes of [offset, offset + length) into `into` at `at`; returns how many. */
  copyQueued(offset: number, length: number, into: Uint8Array, at: number): number;
}

/**
 * Appends records to a pcapng file without ever blocking the event loop: blocks are queued and written in
 * order by one write at a time in libuv's thread pool (a write stuck on a slow disk holds a pool thread, never
 * the loop). With the addon, the loop only lays the packet blocks out (their locations and sizes: a read of
 * each record's header); they are encoded in the pool just before their write, straight from the batch, which
 * the queue holds until then (callers never change a batch they handed over). Records are readable at once:
 * SpoolReader takes the bytes not yet in the file from the queue (this is its SpoolTail), encoding on the spot
 * what the pool has not. The queue is unbounded here; its owner bounds it (`backlog`, `whenBacklogBelow`). A
 * write error stops the writing for good; the queued bytes stay readable.
 *
 * Why the thread pool and not a worker owning the descriptor: one encode and one `writev` per queue run is
 * the whole cost, and reads of queued bytes need no message round trip; a worker would add a copy (or a
 * transfer) per batch and make every read of a fresh record asynchronous.
 */
export class PcapngSpoolWriter implements SpoolTail {
  private readonly interfaceIds = new Map<number, number>();
  private interfaceCount = 0;
  /** (ifindex, id) pairs sorted by ifindex: the native encoder's copy of interfaceIds. */
  private interfaceTable = new Uint32Array(0);
  /** The native encoder, or null: blocks encoded in JavaScript. */
  private readonly encode: SpoolEncoder | null;
  /** Queued bytes, oldest first: pages (the last one may be being filled) and runs of packet blocks. */
  private pages: Entry[] = [];
  /** Bytes appended: the offset the next block will have. */
  private position = 0;
  /** Bytes surely in the file. */
  private written = 0;
  /** End of the bytes handed to the write in flight (or written). */
  private submitted = 0;
  private inFlight = false;
  /** The timer that starts a write of fewer than MIN_WRITE bytes (see pump). */
  private delayed: NodeJS.Timeout | null = null;
  private closed = false;
  private discarded = false;
  private fdClosed = false;
  /** The write error that stopped writing, if any. */
  private failure: Error | null = null;
  /** fdatasync calls running in the thread pool (flushAsync). */
  private syncing = 0;
  /** Called when `written` reaches their target (or writing stops). */
  private waiters: { target: number; done: () => void }[] = [];
  /** Hears the write error that stopped writing (once). */
  onError: ((err: Error) => void) | null = null;

  private constructor(
    private readonly fd: number,
    readonly path: string,
    private readonly snaplen: number,
    encoder: 'native' | 'js' | undefined,
  ) {
    this.encode = encoder === 'js' ? null : nativeSpoolEncoder();
    if (encoder === 'native' && this.encode === null)
      throw new Error(
        'The native addon is not built: the spool cannot encode with it (npm run build:native)',
      );
  }

  /** Who encodes this spool's packet blocks. */
  get encoder(): 'native' | 'js' {
    return this.encode ? 'native' : 'js';
  }

  /**
   * Creates (or truncates) the spool file and writes its Section Header Block. `opened`: the file, created
   * empty and opened for writing already (a capture's spool opens each next segment ahead, off the event loop).
   */
  static create(path: string, opts: SpoolOptions, opened?: number): PcapngSpoolWriter {
    let fd: number;
    try {
      fd = opened ?? fs.openSync(path, 'w', 0o600);
    } catch (err) {
      throw new Error(
        `Cannot create the capture spool ${path}: ${(err as Error).message}. ` +
          'Choose a spool directory you can write to with free space.',
        { cause: err },
      );
    }
    let writer: PcapngSpoolWriter;
    try {
      writer = new PcapngSpoolWriter(fd, path, opts.snaplen ?? 0, opts.encoder);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    writer.writeBytes(sectionHeaderBlock({ application: opts.application, os: defaultOsName() }));
    return writer;
  }

  /** Bytes appended so far (written or queued); also the offset the next block will have. */
  get size(): number {
    return this.position;
  }

  get readableEnd(): number {
    return this.written;
  }

  /** Bytes appended but not yet in the file. */
  get backlog(): number {
    return this.position - this.written;
  }

  /** Whether a write (with the encoding of its blocks before it) is under way. */
  get writing(): boolean {
    return this.inFlight;
  }

  /** The write error that stopped writing, or null. */
  get error(): Error | null {
    return this.failure;
  }

  /** The file's interface id for `ifindex`, writing its Interface Description Block the first time. */
  interfaceId(ifindex: number, name: string): number {
    const known = this.interfaceIds.get(ifindex);
    if (known !== undefined) return known;
    const id = this.interfaceCount;
    this.writeBytes(this.newInterface(ifindex, name));
    return id;
  }

  /** The next interface id goes to `ifindex`; returns its Interface Description Block (the caller's to queue). */
  private newInterface(ifindex: number, name: string): Uint8Array {
    this.interfaceIds.set(ifindex, this.interfaceCount++);
    this.tableInterfaces();
    return interfaceDescriptionBlock({ name, snaplen: this.snaplen });
  }

  /** Rebuilds interfaceTable, the native encoder's copy of interfaceIds. */
  private tableInterfaces(): void {
    this.interfaceTable = Uint32Array.from([...this.interfaceIds].sort((a, b) => a[0] - b[0]).flat());
  }

  /**
   * Queues one Enhanced Packet Block per record of `batch[byteOffset, byteOffset + byteLength)` for writing
   * and stores each block's location, `locationBase` + its file offset, in `offsetsOut[offsetsOutStart + i]`
   * (readable at once through a SpoolReader given this writer). A record of an interface not announced with
   * `interfaceId` announces it, named `ifname(index)` (`if<index>` without it), before its block. Returns the
   * number of records appended.
   */
  append(
    batch: ArrayBuffer,
    byteOffset: number,
    byteLength: number,
    offsetsOut?: Float64Array,
    offsetsOutStart = 0,
    locationBase = 0,
    ifname?: (ifindex: number) => string,
  ): number {
    if (this.closed) throw new Error(`The capture spool ${this.path} is closed`);
    const known = this.interfaceCount;
    const part: BatchPart = {
      batch,
      byteOffset,
      byteLength,
      offsetsOut,
      offsetsOutStart,
      locationBase,
      ifname,
    };
    try {
      return this.encode ? this.appendNative(this.encode, part) : this.appendJs(part);
    } catch (err) {
      // Nothing of a refused batch is queued, its interfaces' blocks neither: the next batch announces them.
      this.forgetInterfacesFrom(known);
      throw err;
    }
  }

  /** Forgets the interfaces numbered `count` and up (announced by a batch that was then refused). */
  private forgetInterfacesFrom(count: number): void {
    if (this.interfaceCount === count) return;
    for (const [ifindex, id] of this.interfaceIds) if (id >= count) this.interfaceIds.delete(ifindex);
    this.interfaceCount = count;
    this.tableInterfaces();
  }

  /** `append` with the JavaScript encoder: the blocks encoded into the queue's last page, here. */
  private appendJs(part: BatchPart): number {
    const { batch, byteOffset, byteLength, offsetsOut, offsetsOutStart, locationBase, ifname } = part;
    const src = new Uint8Array(batch, byteOffset, byteLength);
    const srcView = new DataView(batch, byteOffset, byteLength);
    // An EPB (at most 44 bytes of framing) is never larger than the 72-byte-header record it comes from, so
    // the page is sized once per batch instead of checked per record; IDBs on the way are checked.
    const page = this.pageWithRoom(byteLength + 4096);
    const base = page.filled;
    let out = base;
    let count = 0;
    let lastIfindex = -1;
    let lastId = 0;
    for (let at = 0; at + 8 <= byteLength;) {
      const len = srcView.getUint32(at + OFF.len, true);
      const flags = srcView.getUint16(at + OFF.flags, true);
      if (len < 8 || at + len > byteLength)
        throw new Error(`bad record length ${len} at byte ${at} of the batch`);
      if (flags & REC_F_PAD) {
        at += alignRecord(len);
        continue;
      }
      const ifindex = srcView.getUint32(at + OFF.ifindex, true);
      if (ifindex !== lastIfindex) {
        let id = this.interfaceIds.get(ifindex);
        if (id === undefined) {
          out = this.announce(page, out, ifindex, ifname, byteLength - at);
          id = this.interfaceIds.get(ifindex)!;
        }
        lastIfindex = ifindex;
        lastId = id;
      }
      const capLen = srcView.getUint16(at + OFF.capLen, true);
      if (RECORD_HEADER_SIZE + capLen !== len) {
        throw new Error(`captured length ${capLen} does not match record length ${len} at byte ${at}`);
      }
      if (offsetsOut) offsetsOut[offsetsOutStart + count] = locationBase + page.start + out;
      out = writeEnhancedPacketBlock(
        page.view,
        page.bytes,
        out,
        lastId,
        srcView.getUint32(at + OFF.tsNs + 4, true),
        srcView.getUint32(at + OFF.tsNs, true),
        src,
        at + OFF.data,
        capLen,
        srcView.getUint32(at + OFF.origLen, true),
        directionFlags(src[at + OFF.dir]!),
      );
      count++;
      at += alignRecord(len);
    }
    page.filled = out;
    this.position += out - base;
    this.pump();
    return count;
  }

  /**
   * An interface met in a batch before it was announced: a new id, and its description block (named
   * `ifname(index)`, `if<index>` without it) written at `out` of `page`, before its first packet; the page grows
   * to hold it and the `rest` of the batch's bytes. Returns where the next block goes.
   */
  private announce(
    page: Page,
    out: number,
    ifindex: number,
    ifname: ((ifindex: number) => string) | undefined,
    rest: number,
  ): number {
    const idb = this.newInterface(ifindex, interfaceName(ifindex, ifname));
    this.growPage(page, out, out + idb.length + rest + 4096).bytes.set(idb, out);
    return out + idb.length;
  }

  /**
   * `append` with the addon's encoder: the same blocks, the same errors. Here the blocks are only laid out
   * (their locations, their size); they are encoded in the thread pool on their way to the file (pumpNow).
   * Nothing of a batch with a broken record is queued.
   */
  private appendNative(encode: SpoolEncoder, part: BatchPart): number {
    const { batch, byteOffset, byteLength, offsetsOut, offsetsOutStart, locationBase, ifname } = part;
    const result = encodeResult;
    const queued: (Run | Uint8Array)[] = [];
    let position = this.position;
    let count = 0;
    let at = 0;
    for (;;) {
      const interfaces = this.interfaceTable;
      const status = encode.blocks(
        batch,
        byteOffset + at,
        byteLength - at,
        null,
        0,
        interfaces,
        offsetsOut ?? null,
        offsetsOutStart + count,
        locationBase + position,
        result,
      );
      const used = result[0]!;
      const length = result[1]!;
      if (length > 0) {
        const source = { batch, byteOffset: byteOffset + at, byteLength: used, interfaces };
        queued.push({ start: position, filled: length, source, bytes: null });
        position += length;
      }
      at += used;
      count += result[2]!;
      const detail = result[3]!;
      if (status === 0) break;
      if (status === 1) {
        const idb = this.newInterface(detail, interfaceName(detail, ifname));
        queued.push(idb);
        position += idb.length;
      } else if (status === 2) {
        throw new Error(`bad record length ${detail} at byte ${at} of the batch`);
      } else if (status === 3) {
        const len = new DataView(batch, byteOffset + at, 8).getUint32(OFF.len, true);
        throw new Error(`captured length ${detail} does not match record length ${len} at byte ${at}`);
      } else {
        throw new Error(`the record locations (${offsetsOut?.length ?? 0}) have no room for record ${count}`);
      }
    }
    for (const part of queued) {
      if (part instanceof Uint8Array) this.queueBytes(part);
      else {
        this.pages.push(part);
        this.position += part.filled;
      }
    }
    this.pump();
    return count;
  }

  /** The bytes of a queued entry (entry.start at index 0): a run not encoded yet is encoded now, here. */
  private bytesOf(entry: Entry): Uint8Array {
    if (entry.source === undefined) return entry.bytes;
    if (entry.bytes === null) {
      const { batch, byteOffset, byteLength, interfaces } = entry.source;
      const bytes = new Uint8Array(entry.filled);
      const status = this.encode!.blocks(
        batch,
        byteOffset,
        byteLength,
        bytes,
        0,
        interfaces,
        null,
        0,
        0,
        encodeResult,
      );
      if (status !== 0 || encodeResult[1] !== entry.filled)
        throw new Error(
          `the spool's blocks at byte ${entry.start} did not encode as laid out (status ${status})`,
        );
      entry.bytes = bytes;
    }
    return entry.bytes;
  }

  copyQueued(offset: number, length: number, into: Uint8Array, at: number): number {
    const end = Math.min(offset + length, this.position);
    let copied = 0;
    for (const entry of this.pages) {
      const from = Math.max(offset + copied, entry.start);
      const to = Math.min(end, entry.start + entry.filled);
      if (from !== offset + copied) break; // the queue starts later than asked: nothing contiguous to give
      if (to <= from) continue;
      into.set(this.bytesOf(entry).subarray(from - entry.start, to - entry.start), at + copied);
      copied += to - from;
    }
    return copied;
  }

  /** Calls `done` once every byte appended so far is in the file (or writing has stopped). */
  whenWritten(done: () => void, target = this.position): void {
    if (this.written >= target || this.failure || this.discarded) done();
    else {
      this.waiters.push({ target, done });
      this.pump(); // someone waits: the bytes go now, not at the end of the delay
    }
  }

  /** Resolves once every byte appended so far is in the file (or writing has stopped). */
  drained(): Promise<void> {
    return new Promise((resolve) => this.whenWritten(resolve));
  }

  /**
   * Writes the queue and forces it to the disk before returning: blocks the caller. Tests and benchmarks
   * only; the service uses flushAsync.
   */
  flush(): void {
    if (this.fdClosed || this.discarded) return;
    if (this.failure) throw this.failure;
    // From `written` on: a write in flight may be half done; writing the same bytes again is harmless.
    for (const entry of this.pages) {
      let from = Math.max(this.written - entry.start, 0);
      const bytes = from < entry.filled ? this.bytesOf(entry) : null;
      while (bytes && from < entry.filled)
        from += fs.writeSync(this.fd, bytes, from, entry.filled - from, entry.start + from);
    }
    this.written = this.submitted = this.position;
    this.cancelDelay();
    this.release();
    fs.fdatasyncSync(this.fd);
    this.settle();
  }

  /**
   * Forces the bytes appended so far to the disk, off the event loop: waits for their writes, then runs
   * fdatasync in the thread pool (one of a second of a flood can take hundreds of ms). A write error was
   * reported already (onError): `done` hears only an fdatasync error.
   */
  flushAsync(done: (err: Error | null) => void): void {
    if (this.fdClosed || this.discarded) return done(null);
    this.syncing++;
    this.whenWritten(() => {
      if (this.failure || this.discarded) {
        this.syncing--;
        this.settle();
        return done(null);
      }
      fs.fdatasync(this.fd, (err) => {
        this.syncing--;
        this.settle();
        done(err);
      });
    });
  }

  /** No more appends; the queue is still written, then the descriptor closes (drained() tells when). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.release(); // all written already: the last page goes to the next writer now
    this.pump();
    this.settle();
  }

  /** The file is being deleted: stops writing, drops the queue, closes the descriptor when it can. */
  discard(): void {
    this.closed = true;
    this.discarded = true;
    // Not given to sparePages: a write in flight may still read them.
    this.pages = [];
    this.cancelDelay();
    this.settle();
  }

  /** The page to encode `need` bytes into: the last one if they fit, else a new one. */
  private pageWithRoom(need: number): Page {
    const last = this.pages[this.pages.length - 1];
    if (last && last.source === undefined && last.bytes.length - last.filled >= need) return last;
    const bytes = (need <= PAGE_SIZE && sparePages.pop()) || new Uint8Array(Math.max(PAGE_SIZE, need));
    const page = { bytes, view: new DataView(bytes.buffer), start: this.position, filled: 0 };
    this.pages.push(page);
    return page;
  }

  /**
   * Makes the last page hold `size` bytes, keeping its first `used`: a bigger copy replaces it (a write in
   * flight keeps the old buffer, whose bytes are the same).
   */
  private growPage(page: Page, used: number, size: number): Page {
    if (page.bytes.length >= size) return page;
    const bytes = new Uint8Array(Math.max(size, page.bytes.length * 2));
    bytes.set(page.bytes.subarray(0, used));
    page.bytes = bytes;
    page.view = new DataView(bytes.buffer);
    return page;
  }

  private writeBytes(bytes: Uint8Array): void {
    if (this.closed) throw new Error(`The capture spool ${this.path} is closed`);
    this.queueBytes(bytes);
    this.pump();
  }

  /** Queues `bytes` (a block or two) at the end of the queue. */
  private queueBytes(bytes: Uint8Array): void {
    const page = this.pageWithRoom(bytes.length);
    page.bytes.set(bytes, page.filled);
    page.filled += bytes.length;
    this.position += bytes.length;
  }

  /**
   * Starts the next write when none is in flight: everything queued, in file order, in one writev; fewer than
   * MIN_WRITE bytes wait for more (WRITE_DELAY_MS at most) unless someone waits for them or the file is closing.
   */
  private pump(): void {
    if (this.inFlight || this.failure || this.discarded || this.submitted === this.position) return;
    if (this.position - this.submitted < MIN_WRITE && !this.closed && this.waiters.length === 0) {
      this.delayed ??= setTimeout(() => {
        this.delayed = null;
        this.pumpNow();
      }, WRITE_DELAY_MS);
      return;
    }
    this.pumpNow();
  }

  private cancelDelay(): void {
    if (this.delayed === null) return;
    clearTimeout(this.delayed);
    this.delayed = null;
  }

  private pumpNow(): void {
    if (this.inFlight || this.failure || this.discarded || this.submitted === this.position) return;
    this.cancelDelay();
    const chosen: { entry: Entry; from: number }[] = [];
    const missing: Run[] = [];
    let length = 0;
    for (const entry of this.pages) {
      const from = Math.max(this.submitted - entry.start, 0);
      if (entry.filled > from) {
        chosen.push({ entry, from });
        length += entry.filled - from;
        if (entry.source !== undefined && entry.bytes === null) missing.push(entry);
      }
      if (length >= MAX_WRITE) break;
    }
    const start = this.submitted;
    this.submitted = start + length;
    this.inFlight = true;
    if (missing.length === 0) return this.writeChosen(chosen, start, length, [], []);
    // The runs' blocks are encoded in the thread pool, into pages no one else holds, then written.
    const runs: SpoolRun[] = [];
    const buffers: Uint8Array[] = [];
    let buffer: Uint8Array | null = null;
    let at = 0;
    for (const run of missing) {
      if (buffer === null || buffer.length - at < run.filled) {
        buffer =
          (run.filled <= PAGE_SIZE && sparePages.pop()) || new Uint8Array(Math.max(PAGE_SIZE, run.filled));
        buffers.push(buffer);
        at = 0;
      }
      runs.push({ ...run.source, out: buffer, outAt: at, length: run.filled });
      at += run.filled;
    }
    const done = (err?: Error): void => {
      if (this.discarded || this.failure) {
        this.inFlight = false;
        this.settle();
        return;
      }
      if (err) return this.writeFailed(err);
      // A run read or flushed meanwhile was encoded then, the same bytes: that copy is written.
      const encoded: Run[] = [];
      missing.forEach((run, k) => {
        if (run.bytes !== null) return;
        const { out, outAt } = runs[k]!;
        run.bytes = out.subarray(outAt, outAt + run.filled);
        encoded.push(run);
      });
      this.writeChosen(chosen, start, length, encoded, buffers);
    };
    try {
      this.encode!.runs(runs, done);
    } catch (err) {
      // A batch taken from the queue's hands (detached): what it held cannot be written.
      this.writeFailed(err as Error);
    }
  }

  /**
   * Writes the chosen entries (each from `from` to its end) at `start`, `length` bytes in all; `encoded` are
   * the runs encoded for this write into `buffers`, given back to sparePages once the write is whole.
   */
  private writeChosen(
    chosen: { entry: Entry; from: number }[],
    start: number,
    length: number,
    encoded: Run[],
    buffers: Uint8Array[],
  ): void {
    let parts: Uint8Array[];
    try {
      parts = chosen.map(({ entry, from }) => this.bytesOf(entry).subarray(from, entry.filled));
    } catch (err) {
      return this.writeFailed(err as Error);
    }
    fs.writev(this.fd, parts, start, (err, n) => {
      if (err) return this.writeFailed(err);
      this.inFlight = false;
      this.written = Math.max(this.written, start + n);
      // A short write: the rest goes again (flush() may have written it already).
      if (this.submitted > this.written && n < length) this.submitted = this.written;
      this.release();
      if (n === length) {
        // Written whole, so out of the queue: their pages can take the next write's runs.
        for (const run of encoded) run.bytes = null;
        for (const buffer of buffers)
          if (buffer.length === PAGE_SIZE && sparePages.length < SPARE_PAGES) sparePages.push(buffer);
      }
      this.pump();
      this.settle();
    });
  }

  /** A write (or the encode before it) failed: writing stops for good; the queued bytes stay readable. */
  private writeFailed(err: Error): void {
    this.inFlight = false;
    if (!this.discarded && !this.failure) {
      this.failure = err;
      this.settle();
      this.onError?.(err);
    }
    this.settle();
  }

  /**
   * Lets go of the pages wholly in the file (to sparePages); the last one is reused once it is, or, once the
   * writer is closed, let go too (the next segment's writer takes it).
   */
  private release(): void {
    while (this.pages.length > 0) {
      const first = this.pages[0]!;
      if (first.start + first.filled > this.written) break;
      if (this.pages.length === 1 && first.source === undefined && !this.closed) {
        // The page being filled: filled again from its start once no write reads it.
        if (!this.inFlight) {
          first.start = this.position;
          first.filled = 0;
        }
        break;
      }
      this.pages.shift();
      if (first.source === undefined) this.letGo(first);
    }
  }

  /** A page wholly in the file and in no queue: kept for the next page any writer needs. */
  private letGo(page: Page): void {
    // A write in flight (flush() wrote its bytes already) may still read it: not reused then.
    if (!this.inFlight && page.bytes.length === PAGE_SIZE && sparePages.length < SPARE_PAGES)
      sparePages.push(page.bytes);
  }

  /** Calls the waiters whose bytes are written; closes the descriptor when nothing needs it any more. */
  private settle(): void {
    if (this.waiters.length) {
      const stopped = this.failure !== null || this.discarded;
      const ready = this.waiters.filter((w) => stopped || this.written >= w.target);
      if (ready.length) {
        this.waiters = this.waiters.filter((w) => !ready.includes(w));
        for (const w of ready) w.done();
      }
    }
    const idle = !this.inFlight && this.syncing === 0 && this.waiters.length === 0;
    const nothingLeft = this.submitted === this.position || this.failure !== null || this.discarded;
    if (this.closed && !this.fdClosed && idle && nothingLeft) {
      this.fdClosed = true;
      // A closed segment's last bytes are forced to the disk too (not those of a file being deleted).
      if (this.discarded || this.failure) fs.close(this.fd, () => {});
      else fs.fdatasync(this.fd, () => fs.close(this.fd, () => {}));
    }
  }
}

/**
 * Reads the Enhanced Packet Block at `offset` of a spool written by PcapngSpoolWriter and returns it as a
 * record (ifindex = the file's interface id). Throws when there is no such block at that offset.
 * Two small reads per call: right for one record (details, hex); use SpoolReader for many.
 */
export function readSpoolRecord(fd: number, offset: number): SpoolRecord {
  const head = new Uint8Array(28);
  readExactly(fd, head, offset);
  const total = checkBlockHeader(new DataView(head.buffer), 0, offset);
  const block = new Uint8Array(total);
  readExactly(fd, block, offset);
  return decodeSpoolBlock(block, new DataView(block.buffer), 0, offset);
}

export type SpoolRecord = DecodedRecord & { ifaceId: number };

/**
 * One packet of the spool exactly as it was written: no decoding, so whatever the bytes are, they come back.
 * `data` is a view into the reader's window, valid until its next read.
 */
export interface SpoolPacket {
  ifaceId: number;
  tsHi: number;
  tsLo: number;
  origLen: number;
  dir: number;
  data: Uint8Array;
}

/** readSpoolRecord without decoding: the packet as written (`data` is a copy of its own). */
export function readSpoolPacket(fd: number, offset: number): SpoolPacket {
  const head = new Uint8Array(28);
  readExactly(fd, head, offset);
  const total = checkBlockHeader(new DataView(head.buffer), 0, offset);
  const block = new Uint8Array(total);
  readExactly(fd, block, offset);
  return packetOfBlock(block, new DataView(block.buffer), 0, offset, {} as SpoolPacket);
}

function packetOfBlock(
  bytes: Uint8Array,
  view: DataView,
  at: number,
  offset: number,
  out: SpoolPacket,
  withDirection = true,
): SpoolPacket {
  const total = view.getUint32(at + 4, true);
  const capLen = view.getUint32(at + 20, true);
  if (28 + capLen + 4 > total) throw new Error(`The packet block at byte ${offset} of the spool is damaged`);
  out.ifaceId = view.getUint32(at + 8, true);
  out.tsHi = view.getUint32(at + 12, true);
  out.tsLo = view.getUint32(at + 16, true);
  out.origLen = view.getUint32(at + 24, true);
  out.dir = withDirection ? packetDirection(view, at + 28 + pad4(capLen), at + total - 4, true) : 3;
  out.data = bytes.subarray(at + 28, at + 28 + capLen);
  return out;
}

/** Bytes read about a block reached by a jump: most blocks (and often their neighbours) in one read. */
const JUMP_READ = 4096;

/**
 * Reads many spool records, in any order but fastest in file order (exports): keeps a 1 MiB window of the
 * file so consecutive records cost no system call; a record reached by a jump costs a read of about itself.
 * The spool only grows, so the window never goes stale; a spool still being written gives its queued bytes
 * (SpoolTail), so a record is readable as soon as it is appended.
 */
export class SpoolReader {
  private window: Uint8Array;
  private view: DataView;
  /** File offsets covered by the window: [start, end). */
  private start = 0;
  private end = 0;

  /**
   * `tail`: the writer of a file still being written; the bytes it has not written yet come from its queue
   * (reading the file there could see a write half done).
   */
  constructor(
    private readonly fd: number,
    windowSize = 1 << 20,
    private readonly tail: SpoolTail | null = null,
  ) {
    this.window = new Uint8Array(windowSize);
    this.view = new DataView(this.window.buffer);
  }

  /** The window: `locate` says where a block is in it (valid until the next read that moves it). */
  get bytes(): Uint8Array {
    return this.window;
  }

  /** The file offset of `bytes[0]`. */
  get windowStart(): number {
    return this.start;
  }

  /** True when the whole block at `offset` is in the window (so `locate` reads nothing). */
  holds(offset: number): boolean {
    const at = offset - this.start;
    return at >= 0 && offset + 28 <= this.end && offset + this.view.getUint32(at + 4, true) <= this.end;
  }

  /**
   * Makes sure the whole Enhanced Packet Block at `offset` is in the window and returns where it starts in
   * `bytes` (its total length at +4): exports copy blocks from there as they are.
   */
  locate(offset: number): number {
    this.load(offset);
    return offset - this.start;
  }

  /** Records go into 1 MiB slabs rather than a small buffer each: far less allocation and GC. */
  private readonly slab = new RecordSlab();

  read(offset: number): SpoolRecord {
    this.load(offset);
    return decodeSpoolBlock(this.window, this.view, offset - this.start, offset, this.slab);
  }

  /**
   * The packet at `offset` as written, without decoding it (exports: the bytes go out whatever they are).
   * Fills and returns `into` (one object reused for every packet costs no allocation); `data` is valid until
   * the next read. Without `withDirection` the block's options are not parsed and `dir` is 3 (unknown).
   */
  readPacket(offset: number, into: SpoolPacket = {} as SpoolPacket, withDirection = true): SpoolPacket {
    this.load(offset);
    return packetOfBlock(this.window, this.view, offset - this.start, offset, into, withDirection);
  }

  private load(offset: number): void {
    let size = this.window.length;
    if (offset < this.start || offset + 28 > this.end) {
      // Going on through the file (the block starts in the window or soon after its end; or the window holds
      // nothing yet): a whole window. Jumping about (a view sorted by RTT): about the block, as the window's
      // next bytes would not be used either (a 1 MiB read per record read 2.5 GB for 6000 records of 3 MiB).
      const onward = this.end === 0 || (offset >= this.start && offset <= this.end + JUMP_READ);
      if (!onward) size = JUMP_READ;
      this.fill(offset, 28, size);
    }
    const total = checkBlockHeader(this.view, offset - this.start, offset);
    if (offset + total > this.end) this.fill(offset, total, size);
  }

  /** Reads `size` bytes (at least `need`, at most the window) of the file from `offset` into the window. */
  private fill(offset: number, need: number, size: number): void {
    if (need > this.window.length) {
      this.window = new Uint8Array(need);
      this.view = new DataView(this.window.buffer);
    }
    const want = Math.max(need, Math.min(size, this.window.length));
    const tail = this.tail;
    const fileEnd = tail ? tail.readableEnd : Infinity;
    const fromFile = Math.max(0, Math.min(want, fileEnd - offset));
    let done = 0;
    while (done < fromFile) {
      const n = fs.readSync(this.fd, this.window, done, fromFile - done, offset + done);
      if (n === 0) break;
      done += n;
    }
    if (tail && done === fromFile && done < want)
      done += tail.copyQueued(offset + done, want - done, this.window, done);
    this.start = offset;
    this.end = offset + done;
    if (done < need) throw new Error(`The spool ends before byte ${offset + need}`);
  }
}

/** Checks the EPB header at `at` and returns its total length. */
function checkBlockHeader(view: DataView, at: number, offset: number): number {
  const type = view.getUint32(at, true);
  const total = view.getUint32(at + 4, true);
  if (type !== BLOCK.ENHANCED_PACKET || total < 32 || total > MAX_BLOCK_SIZE) {
    throw new Error(`No packet block at byte ${offset} of the spool (type ${type}, length ${total})`);
  }
  return total;
}

/** Where decoded records live: one slab shared by many records, or a buffer of their own. */
class RecordSlab {
  bytes = new Uint8Array(0);
  view = new DataView(this.bytes.buffer);
  used = 0;

  /** Makes room for `size` bytes and returns where they start. */
  reserve(size: number, slabSize: number): number {
    if (this.used + size > this.bytes.length) {
      this.bytes = new Uint8Array(Math.max(slabSize, size));
      this.view = new DataView(this.bytes.buffer);
      this.used = 0;
    }
    const at = this.used;
    this.used += size;
    return at;
  }
}

function decodeSpoolBlock(
  bytes: Uint8Array,
  view: DataView,
  at: number,
  offset: number,
  slab: RecordSlab | null = null,
): SpoolRecord {
  const total = view.getUint32(at + 4, true);
  const ifaceId = view.getUint32(at + 8, true);
  const capLen = view.getUint32(at + 20, true);
  const origLen = view.getUint32(at + 24, true);
  if (28 + capLen + 4 > total) throw new Error(`The packet block at byte ${offset} of the spool is damaged`);
  const dir = packetDirection(view, at + 28 + pad4(capLen), at + total - 4, true);
  const size = alignRecord(RECORD_HEADER_SIZE + Math.min(capLen, MAX_RECORD_DATA));
  const target = slab ?? new RecordSlab();
  const outAt = target.reserve(size, slab ? 1 << 20 : size);
  const tsHi = view.getUint32(at + 12, true);
  const tsLo = view.getUint32(at + 16, true);
  const end = at + 28 + capLen;
  const written = encodeRecordInto(
    bytes,
    at + 28,
    end,
    origLen,
    tsHi,
    tsLo,
    ifaceId,
    dir,
    target.view,
    target.bytes,
    outAt,
  );
  if (written === null) throw new Error(`The packet at byte ${offset} of the spool is not ICMP`);
  // Assigning (not spreading) keeps one object shape for every record; a spread costs more than decoding.
  const record = decodeRecord(target.view, outAt) as SpoolRecord;
  record.ifaceId = ifaceId;
  return record;
}

function readExactly(fd: number, into: Uint8Array, position: number): void {
  let done = 0;
  while (done < into.length) {
    const n = fs.readSync(fd, into, done, into.length - done, position + done);
    if (n === 0) throw new Error(`The spool ends before byte ${position + into.length}`);
    done += n;
  }
}
