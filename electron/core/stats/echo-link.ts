/**
 * Which record answers an echo request, and which request a reply answers, as Wireshark's "reply in" /
 * "request in" (icmp.resp_in, icmp.resp_to). Found on demand for the rows on screen and the details,
 * by a bounded scan from the record: a reply is looked for forward within `windowNs` of capture time,
 * a request backward (a matched reply knows its RTT, so its request's time). At most `maxScan` records
 * each way, so a flood between the two costs a bounded time and only loses the link.
 */
import { CHUNK_MASK, CHUNK_SHIFT, MISC_F_HAS_ECHO, type RecordStore } from '../store.js';

export interface EchoLink {
  replyIn?: number;
  requestIn?: number;
}

const MAX_SCAN = 20_000;

/** (family, type) of a record's meta: 1 request, 2 reply, 0 neither. */
function echoRole(meta: number): number {
  const type = meta & 255;
  if (meta >>> 24 === 6) return type === 128 ? 1 : type === 129 ? 2 : 0;
  return type === 8 ? 1 : type === 0 ? 2 : 0;
}

export function echoLink(store: RecordStore, index: number, windowNs = 4e9, maxScan = MAX_SCAN): EchoLink {
  if (!store.has(index)) return {};
  const c = store.chunks[index >>> CHUNK_SHIFT]!;
  const i = index & CHUNK_MASK;
  if (!(c.misc[i]! & MISC_F_HAS_ECHO)) return {};
  const role = echoRole(c.meta[i]!);
  if (role === 0) return {};
  const family = c.meta[i]! >>> 24;
  const src = c.src[i]!;
  const dst = c.dst[i]!;
  const idSeq = c.idSeq[i]!;
  const ts = c.tsRel[i]!;
  const want = role === 1 ? 2 : 1;
  const step = role === 1 ? 1 : -1;
  const stop =
    role === 1
      ? Math.min(store.length, index + 1 + maxScan)
      : Math.max(store.firstIndex - 1, index - 1 - maxScan);
  for (let j = index + step; j !== stop; j += step) {
    const cj = store.chunks[j >>> CHUNK_SHIFT]!;
    const k = j & CHUNK_MASK;
    if (Math.abs(cj.tsRel[k]! - ts) > windowNs) break;
    const meta = cj.meta[k]!;
    if (
      cj.src[k] === dst &&
      cj.dst[k] === src &&
      cj.idSeq[k] === idSeq &&
      meta >>> 24 === family &&
      echoRole(meta) === want &&
      cj.misc[k]! & MISC_F_HAS_ECHO
    )
      return role === 1 ? { replyIn: j + 1 } : { requestIn: j + 1 };
  }
  return {};
}
