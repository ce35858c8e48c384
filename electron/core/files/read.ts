/**
 * Opens pcap and pcapng files as batches of records in the live-capture format (`../record.ts`), reading in
 * chunks so file size does not matter, and reporting damage as a summary error after yielding everything
 * read before it.
 */
import fs from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { decodeRecord, forEachRecord, type DecodedRecord } from '../record.js';
import { MAX_BLOCK_SIZE } from './pcapng-format.js';
import { isPcapMagic, PcapParser } from './pcap-read.js';
import { isPcapngMagic, PcapngParser } from './pcapng-read.js';
import {
  ReaderState,
  RecordBatchBuilder,
  type FileSummary,
  type FormatParser,
  type ParseWindow,
} from './read-state.js';

export type { CaptureFormat, FileInterface, FileSummary } from './read-state.js';

export interface OpenCaptureOptions {
  signal?: AbortSignal;
  /** Called at most about ten times a second, and once at the end. */
  onProgress?: (bytesRead: number, totalBytes: number) => void;
  /** Records per yielded batch (default 8192). */
  batchRecords?: number;
  /**
   * Records in the first batch; each next one holds twice as many, up to `batchRecords` (default: all of them
   * from the first). The first batches run code not compiled yet, tens of times slower per record: a caller
   * that takes each batch in one turn of its event loop keeps those turns short.
   */
  firstBatchRecords?: number;
}

export interface CaptureBatch {
  /** Records back to back, as from a live source; each record's ifindex is an `interfaces` id. */
  batch: ArrayBuffer;
  records: number;
  /** Every interface seen so far in the file. */
  interfaces: { id: number; name: string }[];
}

const DEFAULT_BATCH_RECORDS = 8192;
const READ_CHUNK = 4 << 20;
const PROGRESS_INTERVAL_MS = 100;

/** Detects the format on the first bytes and then drives that format's parser over a window of the file. */
class CaptureParseLoop {
  readonly state: ReaderState;
  private parser: FormatParser | null = null;

  constructor(batchRecords: number, fileSize: number, firstBatchRecords?: number) {
    this.state = new ReaderState(new RecordBatchBuilder(batchRecords, fileSize, firstBatchRecords));
  }

  get summary(): FileSummary {
    return this.state.summary;
  }

  /** Parses from `pos` and returns the new position; `state.need` then says what the parser waits for. */
  run(w: ParseWindow, pos: number): number {
    const state = this.state;
    state.need = 0;
    if (this.parser === null) {
      if (w.fileSize < 4) {
        state.fail(0, 'the file is too short to be a pcap or pcapng capture');
        return pos;
      }
      if (!state.has(w, pos, 4, 'file header')) return pos;
      if (isPcapngMagic(w.view, pos)) this.parser = new PcapngParser(state);
      else if (isPcapMagic(w.view, pos)) this.parser = new PcapParser(state);
      else {
        state.fail(
          0,
          'not a pcap or pcapng file (unknown magic number); open a file saved by icmpcap, tcpdump or Wireshark',
        );
        return pos;
      }
    }
    const before = pos;
    pos = this.parser.parse(w, pos);
    const stalled =
      pos === before && !state.stopped && state.need <= w.end - pos && w.base + pos < w.fileSize;
    if (stalled) state.fail(w.base + pos, 'the reader made no progress here (internal error)');
    return pos;
  }

  takeBatch(): CaptureBatch {
    const { batch, records } = this.state.builder.take();
    const interfaces = this.state.summary.interfaces.map(({ id, name }) => ({ id, name }));
    return { batch, records, interfaces };
  }
}

/**
 * Reads a capture file. Yields batches of records; returns the summary. A damaged or truncated file is not an
 * exception: the records before the damage are yielded and the summary's `error` says where and what.
 * Throws only when the file cannot be opened or read, or when `signal` aborts.
 */
export async function* openCaptureFile(
  path: string,
  opts: OpenCaptureOptions = {},
): AsyncGenerator<CaptureBatch, FileSummary> {
  const { signal, onProgress } = opts;
  signal?.throwIfAborted();
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(path, 'r');
  } catch (err) {
    throw new Error(`Cannot open the capture file ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const fileSize = (await handle.stat()).size;
    const loop = new CaptureParseLoop(
      opts.batchRecords ?? DEFAULT_BATCH_RECORDS,
      fileSize,
      opts.firstBatchRecords,
    );
    const state = loop.state;
    // A plain Uint8Array, not a Buffer: its subarray (one per packet copied) is cheaper.
    let bytes = new Uint8Array(Math.max(64, Math.min(READ_CHUNK, fileSize)));
    const w: ParseWindow = { bytes, view: viewOf(bytes), end: 0, base: 0, fileSize };
    let pos = 0;
    let lastProgress = 0;
    const reportProgress = (force: boolean): void => {
      if (!onProgress) return;
      const now = performance.now();
      if (!force && now - lastProgress < PROGRESS_INTERVAL_MS) return;
      lastProgress = now;
      onProgress(Math.min(w.base + w.end, fileSize), fileSize);
    };

    for (;;) {
      signal?.throwIfAborted();
      pos = loop.run(w, pos);
      const done = state.summary.error !== undefined || w.base + pos >= w.fileSize;
      if (state.builder.records > 0 && (state.builder.full || done)) {
        yield loop.takeBatch();
        await nextTurn(); // let the capture UI breathe between batches
        continue;
      }
      if (done) break;
      if (state.need <= w.end - pos) continue;

      // Keep the unparsed tail, make room for the next unit (never more than the file still holds: the
      // parser has already rejected lengths beyond it) and fill the buffer.
      bytes.copyWithin(0, pos, w.end);
      w.base += pos;
      w.end -= pos;
      pos = 0;
      if (state.need > bytes.length) {
        const grown = new Uint8Array(Math.min(Math.max(state.need, bytes.length * 2), MAX_BLOCK_SIZE + 64));
        grown.set(bytes.subarray(0, w.end));
        bytes = grown;
        w.bytes = grown;
        w.view = viewOf(grown);
      }
      while (w.end < bytes.length && w.base + w.end < w.fileSize) {
        const { bytesRead } = await handle.read(bytes, w.end, bytes.length - w.end, w.base + w.end);
        if (bytesRead === 0) {
          w.fileSize = w.base + w.end; // the file shrank while we read it
          break;
        }
        w.end += bytesRead;
        if (w.end - pos >= state.need) break;
      }
      reportProgress(false);
    }
    reportProgress(true);
    return state.summary;
  } finally {
    await handle.close();
  }
}

/** The same reader over bytes in memory (tests, fuzzing, small embedded files). */
export function readCaptureBytes(
  data: Uint8Array,
  onBatch?: (batch: CaptureBatch) => void,
  batchRecords = DEFAULT_BATCH_RECORDS,
): FileSummary {
  const loop = new CaptureParseLoop(batchRecords, data.length);
  const state = loop.state;
  const w: ParseWindow = {
    bytes: data,
    view: viewOf(data),
    end: data.length,
    base: 0,
    fileSize: data.length,
  };
  let pos = 0;
  for (;;) {
    pos = loop.run(w, pos);
    const done = state.summary.error !== undefined || pos >= data.length;
    if (state.builder.records > 0 && (state.builder.full || done)) {
      const batch = loop.takeBatch();
      onBatch?.(batch);
      continue;
    }
    if (done) return state.summary;
    if (!state.builder.full) {
      // With the whole file in the window the parser can only stop for a full batch or an error.
      state.fail(pos, 'the reader stopped early (internal error)');
    }
  }
}

export interface CaptureFileContents {
  summary: FileSummary;
  batches: CaptureBatch[];
  records: DecodedRecord[];
}

/** Reads a whole capture file into memory and decodes every record: for tests, the CLI and small files. */
export async function readCaptureFileAll(
  path: string,
  opts: OpenCaptureOptions = {},
): Promise<CaptureFileContents> {
  const batches: CaptureBatch[] = [];
  const records: DecodedRecord[] = [];
  const reader = openCaptureFile(path, opts);
  for (;;) {
    const next = await reader.next();
    if (next.done) return { summary: next.value, batches, records };
    batches.push(next.value);
    forEachRecord(next.value.batch, (view, offset) => records.push(decodeRecord(view, offset)));
  }
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
