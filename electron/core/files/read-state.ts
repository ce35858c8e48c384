/**
 * State shared by the pcap and pcapng parsers: the batch being built, the interfaces seen, the counters and
 * the first error. The parsers are synchronous and work on a window of the file, so the same code serves the
 * chunked file reader and in-memory reads (tests, fuzzing).
 */
import { Direction } from '../record.js';
import { MAX_RECORD_SIZE, encodeRecordInto } from './packet.js';
import { locateIpHeader, type LinkResult } from './linktypes.js';
import type { U64Parts } from './timestamp.js';

export type CaptureFormat = 'pcap' | 'pcapng';

export interface FileInterface {
  /** Unique in the file, across pcapng sections; records carry it as their ifindex. */
  id: number;
  name: string;
  linkType: number;
}

export interface FileSummary {
  records: number;
  skippedNonIcmp: number;
  format: CaptureFormat | 'unknown';
  sections: number;
  interfaces: FileInterface[];
  linkTypes: number[];
  /** Set when the file is damaged or cut short: what is wrong and at which byte. Earlier records were read. */
  error?: { offset: number; message: string };
}

/** The part of the file the parser may look at: `bytes[pos, end)` is file offset `base + pos` on. */
export interface ParseWindow {
  bytes: Uint8Array;
  view: DataView;
  end: number;
  base: number;
  fileSize: number;
}

export interface FormatParser {
  /**
   * Parses whole units (headers, blocks, packets) from `pos` and returns the position after the last one.
   * Stops early when the batch is full, when an error was recorded, or when the next unit needs more bytes
   * than the window holds (then `state.need` says how many, counted from the returned position).
   */
  parse(window: ParseWindow, pos: number): number;
}

const MAX_BATCH_BYTES = 4 << 20;

export class RecordBatchBuilder {
  private buffer: ArrayBuffer;
  private bytes: Uint8Array;
  private view: DataView;
  used = 0;
  records = 0;

  /** Records the batch under way may hold: `firstBatchRecords`, doubling with each batch up to `batchRecords`. */
  private limit: number;

  /**
   * `fileSize` bounds the buffer for small files: a record is at most 80 bytes larger than its frame and every
   * frame costs at least 16 bytes of file framing, so records never take more than 3x the file size.
   */
  constructor(
    private readonly batchRecords: number,
    fileSize: number,
    firstBatchRecords = batchRecords,
  ) {
    this.limit = Math.max(1, Math.min(firstBatchRecords, batchRecords));
    const capacity = Math.min(MAX_BATCH_BYTES, fileSize * 3) + MAX_RECORD_SIZE;
    this.buffer = new ArrayBuffer(capacity);
    this.bytes = new Uint8Array(this.buffer);
    this.view = new DataView(this.buffer);
  }

  /** Full when another record might not fit, so `add` never has to check for room. */
  get full(): boolean {
    return this.records >= this.limit || this.used + MAX_RECORD_SIZE > this.buffer.byteLength;
  }

  add(
    src: Uint8Array,
    start: number,
    end: number,
    origLen: number,
    tsHi: number,
    tsLo: number,
    ifindex: number,
    dir: number,
  ): boolean {
    const size = encodeRecordInto(
      src,
      start,
      end,
      origLen,
      tsHi,
      tsLo,
      ifindex,
      dir,
      this.view,
      this.bytes,
      this.used,
    );
    if (size === null) return false;
    this.used += size;
    this.records++;
    return true;
  }

  /** The records built so far as their own ArrayBuffer; the builder starts over. */
  take(): { batch: ArrayBuffer; records: number } {
    const result = { batch: this.buffer.slice(0, this.used), records: this.records };
    this.used = 0;
    this.records = 0;
    this.limit = Math.min(this.batchRecords, this.limit * 2);
    return result;
  }
}

export class ReaderState {
  readonly summary: FileSummary = {
    records: 0,
    skippedNonIcmp: 0,
    format: 'unknown',
    sections: 0,
    interfaces: [],
    linkTypes: [],
  };
  /** Bytes the parser needs from the position it returned before it can go on. */
  need = 0;
  readonly ts: U64Parts = { hi: 0, lo: 0 };
  private readonly link: LinkResult = { ipStart: 0, dir: 0 };

  constructor(readonly builder: RecordBatchBuilder) {}

  get stopped(): boolean {
    return this.summary.error !== undefined || this.builder.full;
  }

  /** True when `size` bytes from `pos` are in the window; otherwise asks for them or reports the file cut. */
  has(w: ParseWindow, pos: number, size: number, what: string): boolean {
    if (w.end - pos >= size) return true;
    const offset = w.base + pos;
    if (offset + size > w.fileSize) {
      this.fail(
        offset,
        `truncated ${what}: needs ${size} bytes but the file ends ${w.fileSize - offset} bytes later`,
      );
    } else {
      this.need = size;
    }
    return false;
  }

  fail(offset: number, message: string): void {
    this.summary.error ??= { offset, message };
  }

  addInterface(name: string | undefined, linkType: number): FileInterface {
    const id = this.summary.interfaces.length;
    const iface = { id, name: name ?? `if${id}`, linkType };
    this.summary.interfaces.push(iface);
    if (!this.summary.linkTypes.includes(linkType)) this.summary.linkTypes.push(linkType);
    return iface;
  }

  /**
   * One captured frame `bytes[start, end)` of `origLen` bytes on the wire, timestamp in `this.ts`.
   * `dir` is the direction the file states (pcapng flags) or Direction.Unknown.
   */
  addFrame(
    iface: FileInterface,
    bytes: Uint8Array,
    start: number,
    end: number,
    origLen: number,
    dir: number,
  ): void {
    const link = this.link;
    if (!locateIpHeader(iface.linkType, bytes, start, end, link)) {
      this.summary.skippedNonIcmp++;
      return;
    }
    const linkHeader = link.ipStart - start;
    const ipOrigLen = Math.max(origLen, end - start) - linkHeader;
    const direction = dir !== Direction.Unknown ? dir : link.dir;
    if (this.builder.add(bytes, link.ipStart, end, ipOrigLen, this.ts.hi, this.ts.lo, iface.id, direction)) {
      this.summary.records++;
    } else {
      this.summary.skippedNonIcmp++;
    }
  }
}
