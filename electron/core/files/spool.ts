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
}

export class PcapngSpoolWriter {
  private readonly interfaceIds = new Map<number, number>();
  private interfaceCount = 0;
  private scratch = new Uint8Array(1 << 20);
  private scratchView = new DataView(this.scratch.buffer);
  private position = 0;
  private closed = false;
  /** fdatasync calls running in the thread pool (flushAsync). */
  private syncing = 0;

  private constructor(
    private readonly fd: number,
    readonly path: string,
    private readonly snaplen: number,
  ) {}

  /** Creates (or truncates) the spool file and writes its Section Header Block. */
  static create(path: string, opts: SpoolOptions): PcapngSpoolWriter {
    let fd: number;
    try {
      fd = fs.openSync(path, 'w', 0o600);
    } catch (err) {
      throw new Error(
        `Cannot create the capture spool ${path}: ${(err as Error).message}. ` +
          'Choose a spool directory you can write to with free space.',
        { cause: err },
      );
    }
    const writer = new PcapngSpoolWriter(fd, path, opts.snaplen ?? 0);
    writer.writeBytes(sectionHeaderBlock({ application: opts.application, os: defaultOsName() }));
    return writer;
  }

  /** Bytes written so far; also the offset the next block will have. */
  get size(): number {
    return this.position;
  }

  /** The file's interface id for `ifindex`, writing its Interface Description Block the first time. */
  interfaceId(ifindex: number, name: string): number {
    const known = this.interfaceIds.get(ifindex);
    if (known !== undefined) return known;
    const id = this.interfaceCount++;
    this.interfaceIds.set(ifindex, id);
    this.writeBytes(interfaceDescriptionBlock({ name, snaplen: this.snaplen }));
    return id;
  }

  /**
   * Writes one Enhanced Packet Block per record of `batch[byteOffset, byteOffset + byteLength)` with a single
   * synchronous write, and stores each block's file offset in `offsetsOut[offsetsOutStart + i]`.
   * Records of an interface not announced with `interfaceId` get an interface named `if<index>`.
   * Returns the number of records written.
   */
  append(
    batch: ArrayBuffer,
    byteOffset: number,
    byteLength: number,
    offsetsOut?: Float64Array,
    offsetsOutStart = 0,
  ): number {
    if (this.closed) throw new Error(`The capture spool ${this.path} is closed`);
    const src = new Uint8Array(batch, byteOffset, byteLength);
    const srcView = new DataView(batch, byteOffset, byteLength);
    // An EPB (at most 44 bytes of framing) is never larger than the 72-byte-header record it comes from, so
    // the scratch buffer is sized once per batch instead of checked per record; IDBs on the way are checked.
    this.ensureScratch(byteLength + 4096);
    let out = 0;
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
          id = this.interfaceCount++;
          this.interfaceIds.set(ifindex, id);
          const idb = interfaceDescriptionBlock({ name: `if${ifindex}`, snaplen: this.snaplen });
          this.ensureScratch(out + idb.length + (byteLength - at) + 4096);
          this.scratch.set(idb, out);
          out += idb.length;
        }
        lastIfindex = ifindex;
        lastId = id;
      }
      const capLen = srcView.getUint16(at + OFF.capLen, true);
      if (RECORD_HEADER_SIZE + capLen !== len) {
        throw new Error(`captured length ${capLen} does not match record length ${len} at byte ${at}`);
      }
      if (offsetsOut) offsetsOut[offsetsOutStart + count] = this.position + out;
      out = writeEnhancedPacketBlock(
        this.scratchView,
        this.scratch,
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
    this.writeBytes(this.scratch.subarray(0, out));
    return count;
  }

  /** Forces written blocks to the disk (the page cache already survives a crash of this process). */
  flush(): void {
    if (!this.closed) fs.fdatasyncSync(this.fd);
  }

  /**
   * flush() off the event loop (libuv's thread pool): a fdatasync of a second of a flood can take hundreds of
   * ms. Writes go on meanwhile; close() waits for it before letting the descriptor go.
   */
  flushAsync(done: (err: Error | null) => void): void {
    if (this.closed) return done(null);
    this.syncing++;
    fs.fdatasync(this.fd, (err) => {
      if (--this.syncing === 0 && this.closed) fs.close(this.fd, () => {});
      done(err);
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // A fdatasync still running in the thread pool closes the descriptor when it ends (see flushAsync).
    if (this.syncing === 0) fs.closeSync(this.fd);
  }

  private ensureScratch(size: number): void {
    if (this.scratch.length >= size) return;
    const grown = new Uint8Array(Math.max(size, this.scratch.length * 2));
    grown.set(this.scratch);
    this.scratch = grown;
    this.scratchView = new DataView(grown.buffer);
  }

  private writeBytes(bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.length) {
      done += fs.writeSync(this.fd, bytes, done, bytes.length - done, this.position + done);
    }
    this.position += bytes.length;
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

/**
 * Reads many spool records, in any order but fastest in file order (exports): keeps a 1 MiB window of the
 * file so consecutive records cost no system call. The spool only grows, so the window never goes stale.
 */
export class SpoolReader {
  private window: Uint8Array;
  private view: DataView;
  /** File offsets covered by the window: [start, end). */
  private start = 0;
  private end = 0;

  constructor(
    private readonly fd: number,
    windowSize = 1 << 20,
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
    if (offset < this.start || offset + 28 > this.end) this.fill(offset, 28);
    const total = checkBlockHeader(this.view, offset - this.start, offset);
    if (offset + total > this.end) this.fill(offset, total);
  }

  private fill(offset: number, need: number): void {
    if (need > this.window.length) {
      this.window = new Uint8Array(need);
      this.view = new DataView(this.window.buffer);
    }
    let done = 0;
    while (done < this.window.length) {
      const n = fs.readSync(this.fd, this.window, done, this.window.length - done, offset + done);
      if (n === 0) break;
      done += n;
    }
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
