/**
 * Export rows as the capture service hands them to `exportRecords`: the packet bytes, lengths, time and
 * direction come from the spool exactly as written, every other field from the index (what the table shows).
 * Nothing is decoded again, so a record the dissector cannot make sense of (a later fragment, a cut ICMP
 * header, an unknown type, a bad checksum) is exported as captured, with the table's flags.
 */
import type { RecordFlag, RowProcess } from '../common/contract.js';
import type { Worker } from 'node:worker_threads';
import {
  defaultOsName,
  ExportFileSink,
  interfaceDescriptionBlock,
  LINKTYPE_RAW,
  MAX_RECORD_DATA,
  sectionHeaderBlock,
  type ExportResult,
  type ExportRow,
  type SpoolPacket,
} from './files/index.js';
import { EXPORT_SLICE_MS, type ExportFileOptions } from './files/export.js';
import { exportWriteError } from './files/file-sink.js';
import { pcapFileHeader } from './files/pcap-write.js';
import { processCommentOptions } from './files/pcapng-write.js';
import { yieldUntilSlice } from './radix-sort.js';
import type { CopyFormat, CopyPiece, CopyReply, CopyRequest } from './spool-copy.js';
import { startWorker } from './workers.js';
import type { Ingestor } from './ingest.js';
import { recordFlags } from './ingest.js';
import {
  REC_F_FRAGMENT,
  REC_F_HAS_ECHO,
  REC_F_NOT_FIRST,
  REC_F_SHORT,
  REC_F_TRUNCATED,
  type DecodedRecord,
} from './record.js';
import { SEGMENT_SCALE, type Spool } from './spool-store.js';
import {
  CHUNK_MASK,
  CHUNK_SHIFT,
  FLAG_FRAGMENT,
  FLAG_NOT_FIRST,
  FLAG_SHORT,
  MISC_F_HAS_ECHO,
  MISC_F_TRUNCATED,
  MISC_HOOK_NONE,
  MISC_HOOK_SHIFT,
  type Chunk,
  type RecordStore,
} from './store.js';

/** Where record `i` of chunk `c` is in the spool (spoolLocation): the one place that reads the column. */
function locationOf(c: Chunk, i: number): number {
  return c.spool.at(i);
}

/**
 * One row object, refilled for every record: `exportRecords` writes each row before it asks for the next, so
 * reusing it (and computing the 64-bit times only when a text format asks for them) saves an allocation and
 * two BigInts per record on the path users take.
 */
class SpoolRow implements ExportRow {
  no = 0;
  ifname = '';
  rttMs: number | undefined = undefined;
  flags: RecordFlag[] | undefined = undefined;
  proc: RowProcess | undefined = undefined;
  tsHi = 0;
  tsLo = 0;
  readonly record: RecordView;

  constructor(private readonly baseNs: bigint) {
    this.record = new RecordView(this);
  }

  get relativeNs(): bigint {
    return this.record.tsNs - this.baseNs;
  }
}

/** The record of a SpoolRow: plain fields (one shape), the 64-bit time computed when asked. */
class RecordView implements DecodedRecord {
  flags = 0;
  hook = 0;
  dir = 0;
  ifindex = 0;
  origLen = 0;
  capLen = 0;
  family: 4 | 6 = 4;
  ttl = 0;
  type = 0;
  code = 0;
  id = 0;
  seq = 0;
  hasEcho = false;
  src = '';
  dst = '';
  data: Uint8Array = new Uint8Array(0);

  constructor(private readonly row: { tsHi: number; tsLo: number }) {}

  get tsNs(): bigint {
    return (BigInt(this.row.tsHi) << 32n) | BigInt(this.row.tsLo);
  }
}

/**
 * Rows for the records at `indices` (in that order); records evicted meanwhile are skipped. Every row is the
 * same object, valid until the next one is asked for (what `exportRecords` needs).
 */
export function* spoolExportRows(
  store: RecordStore,
  ingestor: Ingestor,
  spool: Spool,
  indices: Iterable<number>,
  processOf?: (index: number) => RowProcess | null,
): Generator<ExportRow> {
  const packet = {} as SpoolPacket;
  const addresses = ingestor.addresses.text;
  const row = new SpoolRow(store.baseNs ?? 0n);
  const record = row.record;
  for (const index of indices) {
    // The ring buffer may drop records while a long export runs: those are skipped.
    if (!store.has(index)) continue;
    const c = store.chunkOf(index);
    const i = index & CHUNK_MASK;
    // The direction comes from the index (the same record's), so the block's options need no parsing.
    spool.readPacket(locationOf(c, i), packet, false);
    const meta = c.meta[i]!;
    const misc = c.misc[i]!;
    const marks = c.flags[i]!;
    const idSeq = c.idSeq[i]!;
    const hook = (misc >>> MISC_HOOK_SHIFT) & 7;
    const ifIdx = (misc >>> 8) & 0xffff;
    record.flags =
      (misc & MISC_F_HAS_ECHO ? REC_F_HAS_ECHO : 0) |
      (misc & MISC_F_TRUNCATED ? REC_F_TRUNCATED : 0) |
      (marks & FLAG_FRAGMENT ? REC_F_FRAGMENT : 0) |
      (marks & FLAG_NOT_FIRST ? REC_F_NOT_FIRST : 0) |
      (marks & FLAG_SHORT ? REC_F_SHORT : 0);
    record.hook = hook === MISC_HOOK_NONE ? 255 : hook;
    record.dir = (meta >>> 16) & 3;
    record.ifindex = ifIdx;
    record.origLen = packet.origLen;
    record.capLen = packet.data.length;
    record.family = meta >>> 24 === 6 ? 6 : 4;
    record.ttl = misc & 0xff;
    record.type = meta & 0xff;
    record.code = (meta >>> 8) & 0xff;
    record.id = idSeq >>> 16;
    record.seq = idSeq & 0xffff;
    record.hasEcho = (misc & MISC_F_HAS_ECHO) !== 0;
    record.src = addresses[c.src[i]!]!;
    record.dst = addresses[c.dst[i]!]!;
    record.data = packet.data;
    const rtt = c.rtt[i]!;
    row.no = index + 1;
    row.tsHi = packet.tsHi;
    row.tsLo = packet.tsLo;
    row.ifname = ingestor.interfaces.get(ifIdx);
    row.rttMs = Number.isNaN(rtt) ? undefined : rtt;
    row.flags = recordFlags(marks, misc) ?? undefined;
    row.proc = processOf?.(index) ?? undefined;
    yield row;
  }
}

/** The export file's options (path, progress at most ten times a second, abort, slice length), and: */
export interface SpoolCopyOptions extends ExportFileOptions {
  /** shb_userappl (default `icmpcap`). */
  application?: string;
  /** pcapng: the local process of record `index`, written as its EPB comments (as `spoolExportRows` does). */
  processOf?: (index: number) => RowProcess | null;
}

/** Bytes per read of the spool and per write of the export, on the export's thread. */
const COPY_WINDOW = 4 << 20;
/** Records per piece sent to the export's thread, and pieces sent ahead of what it has copied. */
const PIECE = 32_768;
const PIECES_AHEAD = 3;
/** Records gathered between checks of the slice, the abort signal and progress. */
const CHECK_EVERY = 1024;
const PROGRESS_INTERVAL_MS = 100;
/** The largest block the spool writes (header, packet, direction option, end of options, trailer): a block
 * starting this far below where its segment is written for sure may not be written whole yet. */
const SPOOL_BLOCK_MAX = 28 + MAX_RECORD_DATA + 3 + 16 + 4;

/**
 * Exports the records at `indices` (in that order) to pcapng by copying their Enhanced Packet Blocks from the
 * spool as they are: the spool writes each block exactly as `exportRecords` would (raw IP, the captured
 * bytes, direction flags), so the file is the same, and no packet is decoded, allocated or written one by
 * one. Blocks that follow each other in the spool go out in one copy; only each block's interface id is
 * rewritten (the export numbers its interfaces, one per interface name, in order of appearance). A record
 * with a process (`processOf`) gets its comments (`PID:`, `Cmd:`, ...) where the row writer puts them,
 * before the direction option. The copy runs on a thread of its own (spool-copy.ts); this one only says what
 * to copy, in slices. Records evicted meanwhile are skipped.
 */
export async function exportSpoolPcapng(
  store: RecordStore,
  ingestor: Ingestor,
  spool: Spool,
  indices: Iterable<number>,
  opts: SpoolCopyOptions,
): Promise<ExportResult> {
  const header = sectionHeaderBlock({ application: opts.application ?? 'icmpcap', os: defaultOsName() });
  return copyInWorker(store, spool, indices, opts, 'pcapng', header, ingestor);
}

/**
 * Exports the records at `indices` (in that order) to classic pcap straight from the spool's blocks: per
 * record the 16-byte record header (seconds and nanoseconds, as the row writer's nanosecond-magic file has
 * them; captured and original length) and the block's packet bytes, copied on the export's thread
 * (spool-copy.ts). The same bytes as `exportRecords` in pcap of `spoolExportRows`; nothing decoded.
 */
export async function exportSpoolPcap(
  store: RecordStore,
  spool: Spool,
  indices: Iterable<number>,
  opts: SpoolCopyOptions,
): Promise<ExportResult> {
  return copyInWorker(store, spool, indices, opts, 'pcap', pcapFileHeader(LINKTYPE_RAW, MAX_RECORD_DATA));
}

/** A piece's per-record arrays (the export thread hands them back once it has copied the piece). */
interface PieceArrays {
  locations: Float64Array;
  ids: Int32Array | null;
  comments: Int32Array | null;
}

/** The records of one piece, as gathered on this thread. */
class PieceBuilder {
  count = 0;
  readonly locations: Float64Array;
  readonly ids: Int32Array | null;
  readonly comments: Int32Array | null;
  readonly inserts: { before: number; bytes: Uint8Array }[] = [];
  readonly blobs: { id: number; bytes: Uint8Array }[] = [];
  /** Segments read by the piece: the highest block offset in each, and whether its descriptor is new. */
  readonly segments = new Map<number, { maxOffset: number; fd: number }>();

  constructor(pcapng: boolean, arrays: PieceArrays | undefined) {
    this.locations = arrays?.locations ?? new Float64Array(PIECE);
    this.ids = pcapng ? (arrays?.ids ?? new Int32Array(PIECE)) : null;
    this.comments = pcapng ? (arrays?.comments ?? new Int32Array(PIECE)) : null;
  }
}

/**
 * Runs an export of spool blocks on the export's thread: gathers the records' locations here (in slices of
 * `sliceMs`, yielding while the capture is behind), sends them in pieces, at most PIECES_AHEAD ahead, with the
 * descriptors of the segments they read (opened here, closed when the export ends), once the spool's writer
 * has put their blocks in the file. The file is created, synced and renamed here (ExportFileSink).
 */
async function copyInWorker(
  store: RecordStore,
  spool: Spool,
  indices: Iterable<number>,
  opts: SpoolCopyOptions,
  format: CopyFormat,
  header: Uint8Array,
  ingestor?: Ingestor,
): Promise<ExportResult> {
  const { signal, onProgress, total } = opts;
  signal?.throwIfAborted();
  const sink = await ExportFileSink.create(opts.path, 4096);
  /** The segments' files opened for the worker; `queuedFrom`: where the queue's bytes it was given start. */
  const files = new Map<
    number,
    { fd: number; writer: SpoolWriterState; close(): void; queuedFrom?: number; queuedTo?: number }
  >();
  const worker = new CopyThread(signal);
  try {
    worker.send({ type: 'start', format, out: sink.fd, header, window: COPY_WINDOW });
    const pcapng = format === 'pcapng';
    const processOf = pcapng ? opts.processOf : undefined;
    /** Export interface id of each interned interface (-1: no IDB written yet). */
    const exportIds = pcapng ? new Int32Array(1 << 16).fill(-1) : null;
    let interfaces = 0;
    // Comment options by process (a capture has few processes, in long stretches).
    const blobIds = new Map<RowProcess, number>();
    let lastProc: RowProcess | null = null;
    let lastBlob = -1;
    let nextBlob = 0;
    let lastProgress = performance.now();
    let sliceStart = performance.now();
    const sliceMs = (): number => opts.sliceMs?.() ?? EXPORT_SLICE_MS;
    const check = (): void => {
      signal?.throwIfAborted();
      worker.throwIfFailed();
    };
    const progress = (): void => {
      const now = performance.now();
      if (onProgress && now - lastProgress >= PROGRESS_INTERVAL_MS) {
        lastProgress = now;
        onProgress(worker.records, total);
      }
    };
    let piece = new PieceBuilder(pcapng, undefined);
    // The segment of the last record and its bounds: most records are in the same one as the one before.
    let segment = -1;
    let segmentBase = 0;
    let segmentEntry: { maxOffset: number; fd: number } | undefined;
    const send = async (): Promise<void> => {
      const p = piece;
      piece = new PieceBuilder(pcapng, worker.spare.pop());
      segment = -1;
      segmentEntry = undefined;
      if (p.count === 0 && p.inserts.length === 0) return;
      const segments: CopyPiece['segments'] = [];
      for (const [seg, entry] of p.segments) {
        const file = files.get(seg)!;
        const writer = file.writer;
        // The worker reads the file only: a block not wholly written yet waits for the spool's writer.
        const target = writer.size;
        const wait = writer.readableEnd < entry.maxOffset + SPOOL_BLOCK_MAX && writer.readableEnd < target;
        if (wait) await writtenOrSoon(writer, signal);
        check();
        const readableEnd = writer.readableEnd;
        const s: CopyPiece['segments'][number] = { segment: seg, fd: entry.fd, readableEnd };
        // Not written yet (a disk that holds its writes) or never (a full disk): the rest is in the writer's
        // queue, and goes along (once for each stretch: the worker keeps it until the file has it).
        if (wait && readableEnd < target && (file.queuedFrom !== readableEnd || file.queuedTo !== target)) {
          const queued = new Uint8Array(target - readableEnd);
          const n = writer.copyQueued(readableEnd, queued.length, queued, 0);
          s.queued = queued.subarray(0, n);
          file.queuedFrom = readableEnd;
          file.queuedTo = target;
        }
        segments.push(s);
      }
      const { locations, ids, comments } = p;
      const transfer: ArrayBuffer[] = [locations.buffer as ArrayBuffer];
      if (ids) transfer.push(ids.buffer as ArrayBuffer);
      if (comments) transfer.push(comments.buffer as ArrayBuffer);
      await worker.room(PIECES_AHEAD);
      check();
      worker.send(
        {
          type: 'piece',
          count: p.count,
          locations,
          ids,
          comments,
          inserts: p.inserts,
          blobs: p.blobs,
          segments,
        },
        transfer,
      );
      progress();
    };
    const chunks = store.chunks;
    let gathered = 0;
    for (const index of indices) {
      if (++gathered % CHECK_EVERY === 0) {
        check();
        progress();
        if (performance.now() - sliceStart >= sliceMs()) {
          await yieldUntilSlice(sliceMs, check);
          sliceStart = performance.now();
        }
      }
      if (index < store.firstIndex || index >= store.length) continue; // evicted meanwhile
      const c = chunks[index >>> CHUNK_SHIFT]!;
      const i = index & CHUNK_MASK;
      const location = locationOf(c, i);
      const offset = location - segmentBase;
      if (segment < 0 || offset < 0 || offset >= SEGMENT_SCALE) {
        segment = Math.floor(location / SEGMENT_SCALE);
        segmentBase = segment * SEGMENT_SCALE;
        segmentEntry = piece.segments.get(segment);
        if (segmentEntry === undefined) {
          let file = files.get(segment);
          let fd = -1;
          if (file === undefined) {
            try {
              file = spool.segmentFile(segment);
            } catch {
              segment = -1;
              continue; // dropped by the ring buffer (the record with it)
            }
            files.set(segment, file);
            fd = file.fd;
          }
          segmentEntry = { maxOffset: 0, fd };
          piece.segments.set(segment, segmentEntry);
        }
      }
      const n = piece.count;
      if (location - segmentBase > segmentEntry!.maxOffset) segmentEntry!.maxOffset = location - segmentBase;
      piece.locations[n] = location;
      if (exportIds !== null) {
        const ifIdx = (c.misc[i]! >>> 8) & 0xffff;
        let id = exportIds[ifIdx]!;
        if (id < 0) {
          id = exportIds[ifIdx] = interfaces++;
          piece.inserts.push({
            before: n,
            bytes: interfaceDescriptionBlock({
              name: ingestor!.interfaces.get(ifIdx),
              linkType: LINKTYPE_RAW,
              snaplen: MAX_RECORD_DATA,
            }),
          });
        }
        piece.ids![n] = id;
        const proc = processOf === undefined ? null : processOf(index);
        if (proc !== null && proc !== lastProc) {
          lastProc = proc;
          let blob = blobIds.get(proc);
          if (blob === undefined) {
            if (blobIds.size === 4096) blobIds.clear(); // processes come and go: remember the recent
            blob = nextBlob++;
            blobIds.set(proc, blob);
            const options = processCommentOptions(proc);
            piece.blobs.push({ id: blob, bytes: options });
          }
          lastBlob = blob;
        }
        piece.comments![n] = proc === null ? -1 : lastBlob;
      }
      piece.count = n + 1;
      if (piece.count === PIECE) await send();
    }
    await send();
    const { records, bytes } = await worker.finish();
    check();
    sink.adopt(bytes);
    await sink.commit();
    onProgress?.(records, total);
    return { records, bytes, path: opts.path };
  } catch (err) {
    await worker.release();
    await sink.discard();
    throw worker.failure ? worker.failureFor(opts.path) : err;
  } finally {
    // The thread is stopped (or done with the descriptors) before they close.
    await worker.release();
    for (const file of files.values()) file.close();
  }
}

/** How long a piece waits for the spool's writer before it takes the bytes from the writer's queue. */
const QUEUE_WAIT_MS = 100;

/**
 * Resolves once `writer` has written what was appended so far, after QUEUE_WAIT_MS (a disk that holds its
 * writes: the caller takes the bytes from the queue), or when `signal` aborts.
 */
function writtenOrSoon(writer: SpoolWriterState, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, QUEUE_WAIT_MS);
    signal?.addEventListener('abort', done);
    writer.whenWritten(done);
  });
}

/** What the export needs of a segment's writer (PcapngSpoolWriter). */
interface SpoolWriterState {
  readonly readableEnd: number;
  readonly size: number;
  whenWritten(done: () => void): void;
  copyQueued(offset: number, length: number, into: Uint8Array, at: number): number;
}

/** An export thread waiting for the next export (started ahead by `prestartExportThread`, or kept). */
let idleThread: Worker | null = null;

function exportThread(): Worker {
  const w = idleThread ?? startWorker(import.meta.url, './export-worker');
  idleThread = null;
  if (!w.listenerCount('exit')) {
    // Kept between exports: one that dies while it waits is simply not used again.
    w.on('exit', () => {
      if (idleThread === w) idleThread = null;
    });
    w.on('error', () => undefined); // told to the export using it, if any (CopyThread)
  }
  w.ref();
  return w;
}

/**
 * Starts the export thread before the first export needs it (the service's warm-up): starting one costs tens
 * of ms of CPU (hundreds from the TypeScript sources), better spent before a capture than during it.
 */
export function prestartExportThread(): void {
  if (idleThread !== null) return;
  idleThread = exportThread();
  idleThread.unref();
}

/** The export's thread (export-worker.ts), and its answers. */
class CopyThread {
  private readonly worker: Worker;
  private sent = 0;
  private done = 0;
  records = 0;
  /** Arrays of pieces copied, to fill again. */
  readonly spare: PieceArrays[] = [];
  failure: (CopyReply & { type: 'error' }) | null = null;
  private finished: { records: number; bytes: number } | null = null;
  private wake: (() => void) | null = null;
  private released = false;
  private readonly onMessage = (m: CopyReply): void => {
    if (m.type === 'piece-done') {
      this.done++;
      this.records = m.records;
      this.spare.push(m.arrays);
    } else if (m.type === 'finished') {
      this.records = m.records;
      this.finished = { records: m.records, bytes: m.bytes };
    } else this.failure ??= m;
    this.notify();
  };
  private readonly onError = (err: Error): void => {
    this.failure ??= { type: 'error', message: err.message, failed: 'thread' };
    this.notify();
  };
  private readonly onAbort = (): void => this.notify();
  private readonly onExit = (): void => {
    this.failure ??= { type: 'error', message: 'it stopped', failed: 'thread' };
    this.notify();
  };

  /** `signal`: an abort wakes whoever waits for the thread (it is stopped then, not waited for). */
  constructor(private readonly signal: AbortSignal | undefined) {
    signal?.addEventListener('abort', this.onAbort);
    this.worker = exportThread();
    this.worker.on('message', this.onMessage);
    this.worker.on('error', this.onError);
    this.worker.on('exit', this.onExit);
  }

  send(m: CopyRequest, transfer: ArrayBuffer[] = []): void {
    if (m.type === 'piece') this.sent++;
    this.worker.postMessage(m, transfer);
  }

  throwIfFailed(): void {
    if (this.failure) throw new Error(this.failure.message);
  }

  /** The export's error for a failure of the thread: the file's writes say what to do about the disk. */
  failureFor(path: string): Error {
    const f = this.failure!;
    if (f.failed === 'write')
      return exportWriteError(Object.assign(new Error(f.message), { code: f.code }), path);
    if (f.failed === 'read')
      return new Error(
        `Cannot export to ${path}: reading the capture's spool failed (${f.message}); try again`,
      );
    return new Error(
      `Cannot export to ${path}: the export's thread failed (${f.message}); try again, or export as CSV`,
    );
  }

  /** Resolves once fewer than `ahead` pieces wait to be copied; throws on an abort or a failure. */
  async room(ahead: number): Promise<void> {
    while (this.sent - this.done >= ahead && !this.failure) {
      this.signal?.throwIfAborted();
      await this.next();
    }
    this.signal?.throwIfAborted();
  }

  async finish(): Promise<{ records: number; bytes: number }> {
    this.send({ type: 'end' });
    while (this.finished === null && !this.failure) {
      this.signal?.throwIfAborted();
      await this.next();
    }
    this.throwIfFailed();
    return this.finished!;
  }

  /**
   * Lets the thread go: kept for the next export when this one finished (its copier is done with every
   * descriptor), stopped otherwise (it may still be copying a piece, or be broken).
   */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.signal?.removeEventListener('abort', this.onAbort);
    this.worker.off('message', this.onMessage);
    this.worker.off('error', this.onError);
    this.worker.off('exit', this.onExit);
    if (this.finished !== null && this.failure === null && idleThread === null) {
      this.worker.unref();
      idleThread = this.worker;
      return;
    }
    // A thread in a write to a disk that holds it stops only when the write returns: not waited for longer
    // than a moment (terminated, it runs no more of its code after that write).
    const stopped = this.worker.terminate();
    await Promise.race([stopped, new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
  }

  private next(): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
    });
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}
