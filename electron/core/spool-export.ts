/**
 * Export rows as the capture service hands them to `exportRecords`: the packet bytes, lengths, time and
 * direction come from the spool exactly as written, every other field from the index (what the table shows).
 * Nothing is decoded again, so a record the dissector cannot make sense of (a later fragment, a cut ICMP
 * header, an unknown type, a bad checksum) is exported as captured, with the table's flags.
 */
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

/** Rows for the records at `indices` (in that order); records evicted meanwhile are skipped. */
export function* spoolExportRows(
  store: RecordStore,
  ingestor: Ingestor,
  spool: Spool,
  indices: Iterable<number>,
): Generator<ExportRow> {
  const baseNs = store.baseNs ?? 0n;
  const packet = {} as SpoolPacket;
  const addresses = ingestor.addresses.text;
  for (const index of indices) {
    // The ring buffer may drop records while a long export runs: those are skipped.
    if (!store.has(index)) continue;
    const c = store.chunkOf(index);
    const i = index & CHUNK_MASK;
    spool.readPacket(c.spoolOffset[i]!, packet);
    const meta = c.meta[i]!;
    const misc = c.misc[i]!;
    const marks = c.flags[i]!;
    const idSeq = c.idSeq[i]!;
    const hook = (misc >>> MISC_HOOK_SHIFT) & 7;
    const ifIdx = (misc >>> 8) & 0xffff;
    const tsNs = (BigInt(packet.tsHi) << 32n) | BigInt(packet.tsLo);
    const record: DecodedRecord = {
      flags:
        (misc & MISC_F_HAS_ECHO ? REC_F_HAS_ECHO : 0) |
        (misc & MISC_F_TRUNCATED ? REC_F_TRUNCATED : 0) |
        (marks & FLAG_FRAGMENT ? REC_F_FRAGMENT : 0) |
        (marks & FLAG_NOT_FIRST ? REC_F_NOT_FIRST : 0) |
        (marks & FLAG_SHORT ? REC_F_SHORT : 0),
      hook: hook === MISC_HOOK_NONE ? 255 : hook,
      dir: packet.dir,
      tsNs,
      ifindex: ifIdx,
      origLen: packet.origLen,
      capLen: packet.data.length,
      family: meta >>> 24 === 6 ? 6 : 4,
      ttl: misc & 0xff,
      type: meta & 0xff,
      code: (meta >>> 8) & 0xff,
      id: idSeq >>> 16,
      seq: idSeq & 0xffff,
      hasEcho: (misc & MISC_F_HAS_ECHO) !== 0,
      src: addresses[c.src[i]!]!,
      dst: addresses[c.dst[i]!]!,
      data: packet.data,
    };
    const rtt = c.rtt[i]!;
    const flags = recordFlags(marks, misc);
    yield {
      no: index + 1,
      record,
      ifname: ingestor.interfaces.get(ifIdx),
      ...(Number.isNaN(rtt) ? {} : { rttMs: rtt }),
      relativeNs: tsNs - baseNs,
      ...(flags ? { flags } : {}),
    };
  }
}
