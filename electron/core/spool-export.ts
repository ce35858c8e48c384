/**
 * Export rows as the capture service hands them to `exportRecords`: the packet bytes, lengths, time and
 * direction come from the spool exactly as written, every other field from the index (what the table shows).
 * Nothing is decoded again, so a record the dissector cannot make sense of (a later fragment, a cut ICMP
 * header, an unknown type, a bad checksum) is exported as captured, with the table's flags.
 */
import type { RecordFlag, RowProcess } from '../common/contract.js';
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
  type SpoolReader,
} from './files/index.js';
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
  type RecordStore,
} from './store.js';

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
    spool.readPacket(c.spool.at(i), packet, false);
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

export interface SpoolCopyOptions {
  path: string;
  total?: number;
  /** Called at most about ten times a second, and once at the end. */
  onProgress?: (done: number, total?: number) => void;
  signal?: AbortSignal;
  /** shb_userappl (default `icmpcap`). */
  application?: string;
}

/** Bytes per read of the spool and per write of the export (two write buffers). */
const COPY_WINDOW = 4 << 20;
/** Blocks are copied in runs of at most this many bytes. */
const MAX_RUN = 1 << 20;
const PROGRESS_EVERY = 4096;

/**
 * Exports the records at `indices` (in that order) to pcapng by copying their Enhanced Packet Blocks from the
 * spool as they are: the spool writes each block exactly as `exportRecords` would (raw IP, the captured
 * bytes, direction flags), so the file is the same, and no packet is decoded, allocated or written one by
 * one. Blocks that follow each other in the spool go out in one copy; only each block's interface id is
 * rewritten (the export numbers its interfaces, one per interface name, in order of appearance). The spool is
 * read through readers of its own, in large windows. Records evicted meanwhile are skipped.
 */
export async function exportSpoolPcapng(
  store: RecordStore,
  ingestor: Ingestor,
  spool: Spool,
  indices: Iterable<number>,
  opts: SpoolCopyOptions,
): Promise<ExportResult> {
  const { signal, onProgress, total } = opts;
  signal?.throwIfAborted();
  const sink = await ExportFileSink.create(opts.path, COPY_WINDOW);
  const readers = new Map<number, { reader: SpoolReader; close(): void }>();
  let records = 0;
  try {
    const shb = sectionHeaderBlock({ application: opts.application ?? 'icmpcap', os: defaultOsName() });
    await sink.reserve(shb.length);
    sink.writeBytes(shb);
    /** Export interface id of each interned interface (-1: no IDB written yet). */
    const exportIds = new Int32Array(1 << 16).fill(-1);
    let interfaces = 0;
    let segment = -1;
    let reader: SpoolReader | null = null;
    // The run: window bytes [runFrom, runTo) of `reader`, its blocks' export interface ids.
    let runFrom = 0;
    let runTo = 0;
    let runBlocks = 0;
    let runIds = new Int32Array(8192);
    let lastProgress = performance.now();
    const flush = async (): Promise<void> => {
      const length = runTo - runFrom;
      if (length === 0 || reader === null) return;
      if (sink.room < length) await sink.reserve(length);
      const out = sink.pos;
      sink.buf.set(reader.bytes.subarray(runFrom, runTo), out);
      const view = sink.view;
      for (let k = 0, p = out; k < runBlocks; k++) {
        view.setUint32(p + 8, runIds[k]!, true);
        p += view.getUint32(p + 4, true);
      }
      sink.pos = out + length;
      runFrom = runTo = 0;
      runBlocks = 0;
    };
    // The segment being read: its locations are [segmentBase, segmentBase + SEGMENT_SCALE).
    let segmentBase = -2 * SEGMENT_SCALE;
    const chunks = store.chunks;
    for (const index of indices) {
      if (index < store.firstIndex || index >= store.length) continue; // evicted meanwhile
      const c = chunks[index >>> CHUNK_SHIFT]!;
      const i = index & CHUNK_MASK;
      const location = c.spool.at(i);
      const ifIdx = (c.misc[i]! >>> 8) & 0xffff;
      let id = exportIds[ifIdx]!;
      let offset = location - segmentBase;
      let at: number;
      if (id < 0 || offset < 0 || offset >= SEGMENT_SCALE || !reader!.holds(offset)) {
        const seg = Math.floor(location / SEGMENT_SCALE);
        offset = location - seg * SEGMENT_SCALE;
        await flush();
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
        if (seg !== segment) {
          let open = readers.get(seg);
          if (open === undefined) {
            // Exports go through the segments in order: an older one is done with.
            for (const [n, r] of readers) {
              if (n >= seg) continue;
              r.close();
              readers.delete(n);
            }
            open = spool.segmentReader(seg, COPY_WINDOW);
            readers.set(seg, open);
          }
          reader = open.reader;
          segment = seg;
          segmentBase = seg * SEGMENT_SCALE;
        }
        // An await above may have let the ring buffer drop this record.
        if (!store.has(index)) continue;
        at = reader!.locate(offset);
      } else at = offset - reader!.windowStart;
      const b = reader!.bytes;
      const length = (b[at + 4]! | (b[at + 5]! << 8) | (b[at + 6]! << 16) | (b[at + 7]! << 24)) >>> 0;
      if (at !== runTo || runTo - runFrom + length > MAX_RUN) {
        await flush();
        runFrom = runTo = at;
      }
      if (runBlocks === runIds.length) {
        const grown = new Int32Array(runIds.length * 2);
        grown.set(runIds);
        runIds = grown;
      }
      runIds[runBlocks++] = id;
      runTo += length;
      if (++records % PROGRESS_EVERY === 0) {
        signal?.throwIfAborted();
        if (onProgress && performance.now() - lastProgress >= 100) {
          lastProgress = performance.now();
          onProgress(records, total);
        }
      }
    }
    await flush();
    signal?.throwIfAborted();
    const bytes = await sink.commit();
    onProgress?.(records, total);
    return { records, bytes, path: opts.path };
  } catch (err) {
    await sink.discard();
    throw err;
  } finally {
    for (const r of readers.values()) r.close();
  }
}
