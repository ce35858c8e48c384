/**
 * Export rows as the capture service hands them to `exportRecords`: the packet bytes, lengths, time and
 * direction come from the spool exactly as written, every other field from the index (what the table shows).
 * Nothing is decoded again, so a record the dissector cannot make sense of (a later fragment, a cut ICMP
 * header, an unknown type, a bad checksum) is exported as captured, with the table's flags.
 */
import type { RecordFlag, RowProcess } from '../common/contract.js';
import {
  defaultOsName,
  type ExportFileSink,
  interfaceDescriptionBlock,
  LINKTYPE_RAW,
  MAX_RECORD_DATA,
  sectionHeaderBlock,
  type ExportResult,
  type ExportRow,
  type SpoolPacket,
  type SpoolReader,
} from './files/index.js';
import { type ExportFileOptions, writeExportFile } from './files/export.js';
import { pcapFileHeader } from './files/pcap-write.js';
import { PCAP_RECORD_HEADER_SIZE } from './files/pcap-format.js';
import { pad4 } from './files/pcapng-format.js';
import { processCommentOptions } from './files/pcapng-write.js';
import { splitSecondsNs } from './files/timestamp.js';
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

/** Bytes per read of the spool and per write of the export (two write buffers). */
const COPY_WINDOW = 4 << 20;
/** Blocks are copied in runs of at most this many bytes. */
const MAX_RUN = 1 << 20;
const PROGRESS_EVERY = 1024;

/**
 * Reads the spool's blocks for an export: a reader of its own per segment (its own descriptor, COPY_WINDOW
 * windows), so nothing else moves its window. Exports go through the segments in order (a sorted view jumps
 * about, but mostly forward), so older readers are closed as a newer segment opens.
 */
class SpoolBlocks {
  /** The current segment's window: blocks are at the positions `peek` and `locate` return. */
  bytes: Uint8Array = new Uint8Array(0);
  private readonly readers = new Map<number, { reader: SpoolReader; close(): void }>();
  private reader: SpoolReader | null = null;
  private segment = -1;
  /** Locations of the current segment are [segmentBase, segmentBase + SEGMENT_SCALE). */
  private segmentBase = -2 * SEGMENT_SCALE;

  constructor(private readonly spool: Spool) {}

  /** Where the block at `location` starts in `bytes` when all of it is in the window already, else -1. */
  peek(location: number): number {
    const offset = location - this.segmentBase;
    if (offset < 0 || offset >= SEGMENT_SCALE || !this.reader!.holds(offset)) return -1;
    return offset - this.reader!.windowStart;
  }

  /** Where the block at `location` starts in `bytes`, reading it in: positions given before are void. */
  locate(location: number): number {
    const seg = Math.floor(location / SEGMENT_SCALE);
    if (seg !== this.segment) {
      let open = this.readers.get(seg);
      if (open === undefined) {
        for (const [n, r] of this.readers) {
          if (n >= seg) continue;
          r.close();
          this.readers.delete(n);
        }
        open = this.spool.segmentReader(seg, COPY_WINDOW);
        this.readers.set(seg, open);
      }
      this.reader = open.reader;
      this.segment = seg;
      this.segmentBase = seg * SEGMENT_SCALE;
    }
    const at = this.reader!.locate(location - this.segmentBase);
    this.bytes = this.reader!.bytes; // a block larger than the window gets a larger one
    return at;
  }

  close(): void {
    for (const r of this.readers.values()) r.close();
    this.readers.clear();
  }
}

/** Little-endian 32-bit word of `b` at `at`. */
function u32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

/** writeExportFile with the spool's blocks read through readers of the export's own. */
async function copyToFile(
  spool: Spool,
  opts: SpoolCopyOptions,
  copy: (
    sink: ExportFileSink,
    blocks: SpoolBlocks,
    tick: (records: number) => Promise<void> | undefined,
  ) => Promise<number>,
): Promise<ExportResult> {
  return writeExportFile(opts, COPY_WINDOW, async (sink, tick) => {
    const blocks = new SpoolBlocks(spool);
    try {
      return await copy(sink, blocks, tick);
    } finally {
      blocks.close();
    }
  });
}

/**
 * Exports the records at `indices` (in that order) to pcapng by copying their Enhanced Packet Blocks from the
 * spool as they are: the spool writes each block exactly as `exportRecords` would (raw IP, the captured
 * bytes, direction flags), so the file is the same, and no packet is decoded, allocated or written one by
 * one. Blocks that follow each other in the spool go out in one copy; only each block's interface id is
 * rewritten (the export numbers its interfaces, one per interface name, in order of appearance). A record
 * with a process (`processOf`) gets its comments (`PID:`, `Cmd:`, ...) where the row writer puts them,
 * before the direction option. The spool is read through readers of its own, in large windows. Records
 * evicted meanwhile are skipped.
 */
export async function exportSpoolPcapng(
  store: RecordStore,
  ingestor: Ingestor,
  spool: Spool,
  indices: Iterable<number>,
  opts: SpoolCopyOptions,
): Promise<ExportResult> {
  const processOf = opts.processOf;
  return copyToFile(spool, opts, async (sink, blocks, tick) => {
    let records = 0;
    const shb = sectionHeaderBlock({ application: opts.application ?? 'icmpcap', os: defaultOsName() });
    await sink.reserve(shb.length);
    sink.writeBytes(shb);
    /** Export interface id of each interned interface (-1: no IDB written yet). */
    const exportIds = new Int32Array(1 << 16).fill(-1);
    let interfaces = 0;
    // The run: bytes [runFrom, runTo) of the window, its blocks' export interface ids.
    let runFrom = 0;
    let runTo = 0;
    let runBlocks = 0;
    let runIds = new Int32Array(8192);
    // The comment options of the last record's process (a capture has few processes, in long stretches).
    let lastProc: RowProcess | null = null;
    let lastOptions: Uint8Array = new Uint8Array(0);
    const copyRun = (): void => {
      const out = sink.pos;
      const length = runTo - runFrom;
      sink.buf.set(blocks.bytes.subarray(runFrom, runTo), out);
      const view = sink.view;
      for (let k = 0, p = out; k < runBlocks; k++) {
        view.setUint32(p + 8, runIds[k]!, true);
        p += view.getUint32(p + 4, true);
      }
      sink.pos = out + length;
      runFrom = runTo;
      runBlocks = 0;
    };
    /** Writes the run out; a promise only when the sink must hand a buffer to the disk first. */
    const flush = (): Promise<void> | undefined => {
      const length = runTo - runFrom;
      if (length === 0) return undefined;
      if (sink.room < length) return sink.reserve(length).then(copyRun);
      copyRun();
      return undefined;
    };
    const chunks = store.chunks;
    for (const index of indices) {
      if (index < store.firstIndex || index >= store.length) continue; // evicted meanwhile
      const c = chunks[index >>> CHUNK_SHIFT]!;
      const i = index & CHUNK_MASK;
      const location = locationOf(c, i);
      const ifIdx = (c.misc[i]! >>> 8) & 0xffff;
      let id = exportIds[ifIdx]!;
      let at = id < 0 ? -1 : blocks.peek(location);
      if (at < 0) {
        const flushing = flush();
        if (flushing) await flushing;
        if (id < 0) {
          id = exportIds[ifIdx] = interfaces++;
          const idb = interfaceDescriptionBlock({
            name: ingestor.interfaces.get(ifIdx),
            linkType: LINKTYPE_RAW,
            snaplen: MAX_RECORD_DATA,
          });
          if (sink.room < idb.length) await sink.reserve(idb.length);
          sink.writeBytes(idb);
        }
        // An await above may have let the ring buffer drop this record.
        if (!store.has(index)) continue;
        at = blocks.locate(location);
        runFrom = runTo = at;
      }
      const b = blocks.bytes;
      const length = u32(b, at + 4);
      const proc = processOf === undefined ? null : processOf(index);
      if (proc !== null && proc !== lastProc) {
        lastProc = proc;
        lastOptions = processCommentOptions(proc);
      }
      if (proc !== null && lastOptions.length > 0) {
        // Written on its own, its comments inserted before its direction option (where the row writer puts
        // them): the run so far goes first.
        const flushing = flush();
        if (flushing) await flushing;
        const body = 28 + pad4(u32(b, at + 20));
        const rest = length - 4 - body; // the direction option and the end of options, or nothing
        const size = length + lastOptions.length + (rest === 0 ? 4 : 0);
        if (sink.room < size) await sink.reserve(size); // the window stays: the reader is ours
        const buf = sink.buf;
        const view = sink.view;
        const out = sink.pos;
        buf.set(b.subarray(at, at + body), out);
        buf.set(lastOptions, out + body);
        let p = out + body + lastOptions.length;
        if (rest > 0) buf.set(b.subarray(at + body, at + body + rest), p);
        else view.setUint32(p, 0, true); // opt_endofopt
        p += rest > 0 ? rest : 4;
        view.setUint32(out + 4, size, true);
        view.setUint32(out + 8, id, true);
        view.setUint32(p, size, true);
        sink.pos = p + 4;
        runFrom = runTo = at + length;
      } else {
        if (at !== runTo || runTo - runFrom + length > MAX_RUN) {
          const flushing = flush();
          if (flushing) await flushing;
          runFrom = runTo = at;
        }
        if (runBlocks === runIds.length) {
          const grown = new Int32Array(runIds.length * 2);
          grown.set(runIds);
          runIds = grown;
        }
        runIds[runBlocks++] = id;
        runTo += length;
      }
      if (++records % PROGRESS_EVERY === 0) {
        const yielding = tick(records);
        if (yielding) {
          // The run goes out first: nothing of this loop's state waits across the yield.
          const flushing = flush();
          if (flushing) await flushing;
          await yielding;
        }
      }
    }
    const flushing = flush();
    if (flushing) await flushing;
    return records;
  });
}

/**
 * Exports the records at `indices` (in that order) to classic pcap straight from the spool's blocks: per
 * record the 16-byte record header (seconds and nanoseconds, as the row writer's nanosecond-magic file has
 * them; captured and original length) and the block's packet bytes, copied from large windows of the spool.
 * The same bytes as `exportRecords` in pcap of `spoolExportRows`; no row, no BigInt, nothing decoded.
 */
export async function exportSpoolPcap(
  store: RecordStore,
  spool: Spool,
  indices: Iterable<number>,
  opts: SpoolCopyOptions,
): Promise<ExportResult> {
  return copyToFile(spool, opts, async (sink, blocks, tick) => {
    const time = { seconds: 0, ns: 0 };
    let records = 0;
    const header = pcapFileHeader(LINKTYPE_RAW, MAX_RECORD_DATA);
    await sink.reserve(header.length);
    sink.writeBytes(header);
    const chunks = store.chunks;
    for (const index of indices) {
      if (index < store.firstIndex || index >= store.length) continue; // evicted meanwhile
      const location = locationOf(chunks[index >>> CHUNK_SHIFT]!, index & CHUNK_MASK);
      let at = blocks.peek(location);
      if (at < 0) at = blocks.locate(location);
      const b = blocks.bytes;
      const capLen = u32(b, at + 20);
      const size = PCAP_RECORD_HEADER_SIZE + capLen;
      if (sink.room < size) await sink.reserve(size); // the window stays: the reader is ours
      splitSecondsNs(u32(b, at + 12), u32(b, at + 16), time);
      const view = sink.view;
      const out = sink.pos;
      view.setUint32(out, time.seconds, true);
      view.setUint32(out + 4, time.ns, true);
      view.setUint32(out + 8, capLen, true);
      view.setUint32(out + 12, u32(b, at + 24), true);
      sink.buf.set(b.subarray(at + 28, at + 28 + capLen), out + PCAP_RECORD_HEADER_SIZE);
      sink.pos = out + size;
      if (++records % PROGRESS_EVERY === 0) {
        const yielding = tick(records);
        if (yielding) await yielding;
      }
    }
    return records;
  });
}
