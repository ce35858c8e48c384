/**
 * Export rows as the capture service hands them to `exportRecords`: the packet bytes, lengths, time and
 * direction come from the spool exactly as written, every other field from the index (what the table shows).
 * Nothing is decoded again, so a record the dissector cannot make sense of (a later fragment, a cut ICMP
 * header, an unknown type, a bad checksum) is exported as captured, with the table's flags.
 */
import type { RecordFlag, RowProcess } from '../common/contract.js';
import type { ExportRow, SpoolPacket } from './files/index.js';
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
import type { Spool } from './spool-store.js';
import {
  CHUNK_MASK,
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
    spool.readPacket(c.spoolOffset[i]!, packet, false);
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
