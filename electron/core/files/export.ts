/**
 * Exports records to pcapng, pcap, CSV or NDJSON, streaming with constant memory. The file appears under its
 * name only when the export succeeded; a cancelled or failed export leaves nothing behind.
 */
import type { RecordFlag, RowProcess } from '../../common/contract.js';
import type { DecodedRecord } from '../record.js';
import { yieldUntilSlice } from '../radix-sort.js';
import { ExportFileSink } from './file-sink.js';
import { pcapFileHeader, pcapRecordSize, writePcapRecord } from './pcap-write.js';
import {
  directionFlags,
  processComments,
  enhancedPacketBlockSize,
  interfaceDescriptionBlock,
  LINKTYPE_RAW,
  sectionHeaderBlock,
  writeEnhancedPacketBlock,
} from './pcapng-write.js';
import { defaultOsName } from './system.js';
import { csvHeader, csvLine, ndjsonLine, type TextRow } from './text-write.js';
import { MAX_RECORD_DATA } from './packet.js';
import { splitSecondsNs } from './timestamp.js';

export type ExportFormat = 'pcapng' | 'pcap' | 'csv' | 'ndjson';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['pcapng', 'pcap', 'csv', 'ndjson'];

export interface ExportRow {
  /** Row number shown to the user (1-based in the UI). */
  no: number;
  record: DecodedRecord;
  ifname: string;
  rttMs?: number;
  /** Time since the capture started; when missing, since the first exported row. */
  relativeNs?: bigint;
  /** The table's flags (CSV/NDJSON); when missing, those `record.flags` tells. */
  flags?: readonly RecordFlag[] | undefined;
  /** `record.tsNs` as two 32-bit halves, when the row has them (saves a BigInt per record). */
  tsHi?: number;
  tsLo?: number;
  /** The local process the record belongs to: pcapng writes it as EPB comments, CSV/NDJSON as columns. */
  proc?: RowProcess | undefined;
}

export interface ExportOptions {
  format: ExportFormat;
  path: string;
  /** Rows expected, passed through to `onProgress`. */
  total?: number;
  /** Called at most about ten times a second, and once at the end. */
  onProgress?: (done: number, total?: number) => void;
  signal?: AbortSignal;
  /** shb_userappl for pcapng (default `icmpcap`). */
  application?: string;
}

export interface ExportResult {
  records: number;
  bytes: number;
  path: string;
}

/** Formats rows: `prepare` returns the most bytes the row takes, then `write` puts it into the sink. */
interface RowWriter {
  header(sink: ExportFileSink): void;
  prepare(row: ExportRow): number;
  write(row: ExportRow, sink: ExportFileSink): void;
}

const PROGRESS_INTERVAL_MS = 100;
/** Rows between checks of the abort signal and the clock. */
const CHECK_EVERY = 256;
/** Longest an export holds the event loop before it yields (see writeExportFile's tick), unless told. */
export const EXPORT_SLICE_MS = 8;

export async function exportRecords(
  rows: AsyncIterable<ExportRow> | Iterable<ExportRow>,
  opts: ExportOptions,
): Promise<ExportResult> {
  const writer = createRowWriter(opts);
  const { signal } = opts;
  return writeExportFile(opts, undefined, async (sink, tick) => {
    let records = 0;
    const afterRow = (): Promise<void> | undefined =>
      ++records % CHECK_EVERY === 0 ? tick(records) : undefined;
    /** Returns a promise only when the sink must hand a buffer to the disk first, or it is time to yield. */
    const writeRow = (row: ExportRow): Promise<void> | undefined => {
      const size = writer.prepare(row);
      if (sink.room < size) {
        return sink.reserve(size).then(() => {
          signal?.throwIfAborted();
          writer.write(row, sink);
          return afterRow();
        });
      }
      writer.write(row, sink);
      return afterRow();
    };

    writer.header(sink);
    if (Symbol.asyncIterator in rows) {
      for await (const row of rows) {
        const pending = writeRow(row);
        if (pending) await pending;
      }
    } else {
      for (const row of rows) {
        const pending = writeRow(row);
        if (pending) await pending;
      }
    }
    return records;
  });
}

/** What `writeExportFile` needs of an export's options. */
export interface ExportFileOptions {
  path: string;
  total?: number;
  onProgress?: (done: number, total?: number) => void;
  signal?: AbortSignal;
  /** How long a slice may hold the event loop now (asked at every check; default EXPORT_SLICE_MS); SLICE_WAIT
   * (negative): no slice now, ask again next turn. */
  sliceMs?: () => number;
}

/**
 * Runs `write` into a new export file (an ExportFileSink of `bufferSize`-byte buffers): the file takes its
 * name (fsync, rename) with the record count `write` returns, or is discarded when it throws. `tick(records)`
 * checks the abort signal and reports progress at most ten times a second; call it every few hundred records.
 * It returns a promise when the export has held the event loop for EXPORT_SLICE_MS: await it (the writer
 * yields to the loop there; a full buffer alone is no yield, as the disk may take it at once and a sink of
 * 4 MiB holds 40 k CSV rows, over 100 ms of work).
 */
export async function writeExportFile(
  opts: ExportFileOptions,
  bufferSize: number | undefined,
  write: (sink: ExportFileSink, tick: (records: number) => Promise<void> | undefined) => Promise<number>,
): Promise<ExportResult> {
  const { signal, onProgress, total } = opts;
  signal?.throwIfAborted();
  const sink = await ExportFileSink.create(opts.path, bufferSize);
  let lastProgress = performance.now();
  let sliceStart = performance.now();
  const resume = (): void => {
    sliceStart = performance.now();
    signal?.throwIfAborted();
  };
  const tick = (records: number): Promise<void> | undefined => {
    signal?.throwIfAborted();
    const now = performance.now();
    if (onProgress && now - lastProgress >= PROGRESS_INTERVAL_MS) {
      lastProgress = now;
      onProgress(records, total);
    }
    if (now - sliceStart < (opts.sliceMs?.() ?? EXPORT_SLICE_MS)) return undefined;
    return pause();
  };
  // Yields a turn, and more while the budget says SLICE_WAIT (the service's capture is behind: it comes first).
  const pause = async (): Promise<void> => {
    await yieldUntilSlice(
      () => opts.sliceMs?.() ?? EXPORT_SLICE_MS,
      () => signal?.throwIfAborted(),
    );
    resume();
  };
  try {
    const records = await write(sink, tick);
    signal?.throwIfAborted();
    const bytes = await sink.commit();
    onProgress?.(records, total);
    return { records, bytes, path: opts.path };
  } catch (err) {
    await sink.discard();
    throw err;
  }
}

function createRowWriter(opts: ExportOptions): RowWriter {
  switch (opts.format) {
    case 'pcapng':
      return new PcapngRowWriter(opts.application ?? 'icmpcap');
    case 'pcap':
      return new PcapRowWriter();
    case 'csv':
      return new TextRowWriter(csvHeader(), csvLine);
    case 'ndjson':
      return new TextRowWriter('', ndjsonLine);
    default:
      throw new Error(
        `Unknown export format "${String(opts.format)}": use one of ${EXPORT_FORMATS.join(', ')}`,
      );
  }
}

/** Splits a 64-bit timestamp into 32-bit halves without allocating BigInts. */
const splitView = new DataView(new ArrayBuffer(8));
function splitTimestamp(tsNs: bigint): void {
  splitView.setBigUint64(0, tsNs, true);
}
const tsHi = (): number => splitView.getUint32(4, true);
const tsLo = (): number => splitView.getUint32(0, true);

class PcapngRowWriter implements RowWriter {
  /** ifindex -> interfaces seen with that index (by name), to give each (ifindex, name) one IDB. */
  private readonly interfaces = new Map<number, { name: string; id: number }[]>();
  private interfaceCount = 0;
  private pendingIdb: Uint8Array | null = null;
  private currentId = 0;
  private comments: readonly Uint8Array[] = [];

  constructor(private readonly application: string) {}

  header(sink: ExportFileSink): void {
    sink.writeBytes(sectionHeaderBlock({ application: this.application, os: defaultOsName() }));
  }

  private interfaceId(row: ExportRow): number {
    const ifindex = row.record.ifindex;
    let known = this.interfaces.get(ifindex);
    if (known === undefined) {
      known = [];
      this.interfaces.set(ifindex, known);
    }
    for (const entry of known) if (entry.name === row.ifname) return entry.id;
    const id = this.interfaceCount++;
    known.push({ name: row.ifname, id });
    this.pendingIdb = interfaceDescriptionBlock({
      name: row.ifname,
      linkType: LINKTYPE_RAW,
      snaplen: MAX_RECORD_DATA,
    });
    return id;
  }

  prepare(row: ExportRow): number {
    // Resolving the interface here lets a new interface's IDB count in the room this row needs.
    this.currentId = this.interfaceId(row);
    const idbSize = this.pendingIdb?.length ?? 0;
    this.comments = processComments(row.proc);
    return (
      idbSize + enhancedPacketBlockSize(row.record.data.length, directionFlags(row.record.dir), this.comments)
    );
  }

  write(row: ExportRow, sink: ExportFileSink): void {
    if (this.pendingIdb !== null) {
      sink.writeBytes(this.pendingIdb);
      this.pendingIdb = null;
    }
    const r = row.record;
    let hi: number;
    let lo: number;
    if (row.tsHi !== undefined && row.tsLo !== undefined) {
      hi = row.tsHi;
      lo = row.tsLo;
    } else {
      splitTimestamp(r.tsNs);
      hi = tsHi();
      lo = tsLo();
    }
    sink.pos = writeEnhancedPacketBlock(
      sink.view,
      sink.buf,
      sink.pos,
      this.currentId,
      hi,
      lo,
      r.data,
      0,
      r.data.length,
      r.origLen,
      directionFlags(r.dir),
      true,
      this.comments,
    );
  }
}

class PcapRowWriter implements RowWriter {
  header(sink: ExportFileSink): void {
    sink.writeBytes(pcapFileHeader(LINKTYPE_RAW, MAX_RECORD_DATA));
  }

  prepare(row: ExportRow): number {
    return pcapRecordSize(row.record.data.length);
  }

  private readonly time = { seconds: 0, ns: 0 };

  write(row: ExportRow, sink: ExportFileSink): void {
    const r = row.record;
    if (row.tsHi !== undefined && row.tsLo !== undefined) splitSecondsNs(row.tsHi, row.tsLo, this.time);
    else {
      splitTimestamp(r.tsNs);
      splitSecondsNs(tsHi(), tsLo(), this.time);
    }
    sink.pos = writePcapRecord(
      sink.view,
      sink.buf,
      sink.pos,
      this.time.seconds,
      this.time.ns,
      r.data,
      r.origLen,
    );
  }
}

class TextRowWriter implements RowWriter {
  private firstTs: bigint | null = null;
  private line = '';
  /** One row object handed to the formatter, refilled per row. */
  private readonly text: TextRow = {
    no: 0,
    record: undefined as unknown as DecodedRecord,
    ifname: '',
    rttMs: undefined,
    relativeNs: 0n,
    flags: undefined,
    proc: undefined,
    tsHi: undefined,
    tsLo: undefined,
  };

  constructor(
    private readonly headerText: string,
    private readonly format: (row: TextRow) => string,
  ) {}

  header(sink: ExportFileSink): void {
    sink.writeText(this.headerText);
  }

  prepare(row: ExportRow): number {
    const text = this.text;
    text.no = row.no;
    text.record = row.record;
    text.ifname = row.ifname;
    text.rttMs = row.rttMs;
    let relativeNs = row.relativeNs;
    if (relativeNs === undefined) {
      this.firstTs ??= row.record.tsNs;
      relativeNs = row.record.tsNs - this.firstTs;
    }
    text.relativeNs = relativeNs;
    text.flags = row.flags;
    text.proc = row.proc;
    text.tsHi = row.tsHi;
    text.tsLo = row.tsLo;
    this.line = this.format(text);
    return this.line.length * 3;
  }

  write(_row: ExportRow, sink: ExportFileSink): void {
    sink.writeText(this.line);
  }
}
