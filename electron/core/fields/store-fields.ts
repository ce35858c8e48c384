/**
 * The fields of a stored record, for the display filters' per-record path (compile.ts `env.fields`):
 * the bytes come from the spool, the frame context from the columns (number, times, interface, RTT).
 * Echo matching state (icmp.resp_to, resptime...) comes from icmpcap's matcher: a reply whose RTT the
 * aggregator wrote has `icmp.resptime` (and `icmpcap.rtt`), a request it judged unanswered `icmp.no_resp`
 * (the filter reads both from the columns: compile.ts `matchedColumns`); `resp_to`/`resp_in` need Wireshark's
 * whole-capture pass and are available where the caller keeps a FieldSession (files, the CLI).
 */
import type { RowProcess } from '../../common/contract.js';
import type { DecodedRecord } from '../record.js';
import { CHUNK_MASK, MISC_F_NO_RESPONSE, type RecordStore } from '../store.js';
import { type FieldMap, extractFields } from './extract.js';

export function storeFieldReader(
  store: RecordStore,
  read: (location: number) => DecodedRecord | null,
  interfaceName: (id: number) => string,
  processOf?: (index: number) => RowProcess | null,
): (index: number) => FieldMap | null {
  return (index) => {
    if (!store.has(index) || store.baseNs === null) return null;
    const c = store.chunkOf(index);
    const i = index & CHUNK_MASK;
    let record: DecodedRecord | null;
    try {
      record = read(c.spool.at(i));
    } catch {
      return null;
    }
    if (record === null) return null;
    const prev =
      index > store.firstIndex ? store.chunkOf(index - 1).tsRel[(index - 1) & CHUNK_MASK]! : c.tsRel[i]!;
    const rtt = c.rtt[i]!;
    const reply = record.family === 4 ? record.type === 0 : record.type === 129;
    return extractFields(record, {
      number: index + 1,
      ifname: interfaceName((c.misc[i]! >>> 8) & 0xffff),
      firstTsNs: store.baseNs,
      prevTsNs: store.baseNs + BigInt(Math.round(prev)),
      rttMs: Number.isNaN(rtt) ? undefined : rtt,
      resptimeMs: reply && !Number.isNaN(rtt) ? rtt : undefined,
      proc: processOf?.(index) ?? undefined,
      // A request judged unanswered by the matcher (the filter's icmp.resp_not_found column too).
      noResp: (c.misc[i]! & MISC_F_NO_RESPONSE) !== 0,
    });
  };
}
