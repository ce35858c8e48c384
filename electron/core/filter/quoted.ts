/**
 * Columns for the datagram an ICMP error quotes, so display filters answer `ip.dst == X`,
 * `icmp.type == 8`, ... on errors (Wireshark matches every layer) without reading the spool.
 *
 * Errors are a few percent of a capture, so the index is sparse: per store chunk, the offsets of its
 * quoting records in order and, for each, the inner header in the layout of the store's own columns
 * (meta = type | code << 8 | family << 24, misc = ttl | MISC_F_HAS_ECHO, flags FLAG_NOT_FIRST when
 * the inner packet has no ICMP layer, src/dst interned like the outer addresses). The compiler
 * (compile.ts) runs the very test it runs on the outer header on these arrays.
 *
 * Only the plain case is indexed as "simple": one IP header of the outer family, not a fragment, no
 * IPv6 extension headers, and either no ICMP inside or a whole 8-byte ICMP header of a message that
 * quotes nothing and whose id/seq the columns can hold (echo or neither). Anything else (errors
 * quoting errors, truncated quotes, timestamps, cross-family tunnels) is indexed as "read the record"
 * and keeps Wireshark's exact answer through the per-record path (fields/extract.ts).
 */
import { FLAG_FRAGMENT, FLAG_NOT_FIRST, FLAG_SHORT, MISC_F_HAS_ECHO, type Chunk } from '../store.js';

/** The (family, type) pairs whose message quotes a datagram (indexed `type | (family === 6) << 8`). */
export const QUOTING_TYPES: Uint8Array = (() => {
  const t = new Uint8Array(512);
  for (const type of [3, 4, 5, 11, 12]) t[type] = 1;
  for (const type of [1, 2, 3, 4]) t[256 + type] = 1;
  return t;
})();

/** ICMPv4 types whose id/seq the columns do not hold (timestamp, information, address mask). */
const V4_OTHER_IDENT = new Set([13, 14, 15, 16, 17, 18]);

export interface AddressInterner {
  internV4(word: number): number;
  internV6(bytes: Uint8Array, at: number, w0: number, w1: number, w2: number, w3: number): number;
}

/** A QuotedChunk object and its eight typed-array objects, about (V8, 64-bit). */
const OBJECT_BYTES = 9 * 80;

/** The quoted headers of one store chunk's errors. */
export class QuotedChunk {
  count = 0;
  /** Offsets (within the chunk) of the quoting records, ascending. */
  at = new Uint16Array(64);
  /** 1: the arrays below hold the inner header; 0: read the record (see the file comment). */
  simple = new Uint8Array(64);
  meta = new Uint32Array(64);
  idSeq = new Uint32Array(64);
  misc = new Uint32Array(64);
  src = new Uint32Array(64);
  dst = new Uint32Array(64);
  flags = new Uint8Array(64);

  constructor(readonly owner: Chunk) {}

  /** The slot of chunk offset `i`, or -1. */
  slot(i: number): number {
    const at = this.at;
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (at[mid]! < i) lo = mid + 1;
      else hi = mid;
    }
    return lo < this.count && at[lo] === i ? lo : -1;
  }

  /** Bytes its arrays hold (capacity included) and the object. */
  get bytesAllocated(): number {
    return (
      OBJECT_BYTES +
      this.at.byteLength +
      this.simple.byteLength +
      this.meta.byteLength +
      this.idSeq.byteLength +
      this.misc.byteLength +
      this.src.byteLength +
      this.dst.byteLength +
      this.flags.byteLength
    );
  }

  push(i: number): number {
    if (this.count > 0 && this.at[this.count - 1]! >= i) {
      // The store slot was reused (cleared capture): start over.
      this.count = 0;
    }
    if (this.count === this.at.length) this.grow();
    const k = this.count++;
    this.at[k] = i;
    this.simple[k] = 0;
    this.meta[k] = 0;
    this.idSeq[k] = 0;
    this.misc[k] = 0;
    this.src[k] = 0;
    this.dst[k] = 0;
    this.flags[k] = 0;
    return k;
  }

  /** Drops the unused capacity (the store has moved on to its next chunk: this one takes no more). */
  trim(): void {
    if (this.count === this.at.length) return;
    const n = this.count;
    this.at = this.at.slice(0, n);
    this.simple = this.simple.slice(0, n);
    this.meta = this.meta.slice(0, n);
    this.idSeq = this.idSeq.slice(0, n);
    this.misc = this.misc.slice(0, n);
    this.src = this.src.slice(0, n);
    this.dst = this.dst.slice(0, n);
    this.flags = this.flags.slice(0, n);
  }

  private grow(): void {
    const n = Math.max(64, this.at.length * 2);
    const g = <T extends Uint8Array | Uint16Array | Uint32Array>(a: T, make: new (n: number) => T): T => {
      const b = new make(n);
      b.set(a);
      return b;
    };
    this.at = g(this.at, Uint16Array);
    this.simple = g(this.simple, Uint8Array);
    this.meta = g(this.meta, Uint32Array);
    this.idSeq = g(this.idSeq, Uint32Array);
    this.misc = g(this.misc, Uint32Array);
    this.src = g(this.src, Uint32Array);
    this.dst = g(this.dst, Uint32Array);
    this.flags = g(this.flags, Uint8Array);
  }
}

export class QuotedIndex {
  private chunks: (QuotedChunk | undefined)[] = [];
  /** Chunks below this one were dropped with the store's. */
  private dropped = 0;
  /** The chunk a record was indexed in last. */
  private last: QuotedChunk | null = null;

  /** The quoted headers of `chunk` (number `c`), or null when none were indexed for it. */
  of(chunk: Chunk, c: number): QuotedChunk | null {
    const q = this.chunks[c];
    return q !== undefined && q.owner === chunk ? q : null;
  }

  clear(): void {
    this.chunks = [];
    this.dropped = 0;
    this.last = null;
  }

  /** Bytes held by the indexed chunks (the dropped ones' slots in `chunks` included). */
  get bytesAllocated(): number {
    let bytes = this.chunks.length * 8;
    for (const q of this.chunks) if (q !== undefined) bytes += q.bytesAllocated;
    return bytes;
  }

  /**
   * Indexes record `index` (in `chunk` at `i`), an ICMP error of `family` whose packet is
   * `bytes[dataAt, dataAt + capLen)` from the IP header on; `marks` are its store flags.
   */
  add(
    index: number,
    chunk: Chunk,
    i: number,
    bytes: Uint8Array,
    dataAt: number,
    capLen: number,
    family: 4 | 6,
    marks: number,
    addresses: AddressInterner,
    firstIndex: number,
  ): void {
    const c = index >>> 16;
    let q = this.chunks[c];
    if (q === undefined || q.owner !== chunk) {
      // The store has moved past the chunk indexed last: its capacity beyond what it holds goes.
      this.last?.trim();
      q = new QuotedChunk(chunk);
      this.last = q;
      // The chunks the store dropped (ring buffer) go.
      for (; this.dropped < firstIndex >>> 16; this.dropped++) this.chunks[this.dropped] = undefined;
      this.chunks[c] = q;
    }
    const k = q.push(i);
    if (marks & (FLAG_FRAGMENT | FLAG_NOT_FIRST | FLAG_SHORT)) return;
    const end = dataAt + capLen;
    let at: number;
    if (family === 4) {
      if (capLen < 20) return;
      at = dataAt + (bytes[dataAt]! & 15) * 4 + 8;
    } else {
      // Extension headers before the ICMPv6 header: the record path walks them.
      if (capLen < 40 || bytes[dataAt + 6] !== 58) return;
      at = dataAt + 48;
    }
    if (family === 4) {
      if (at + 20 > end || bytes[at]! >>> 4 !== 4) return;
      const ihl = (bytes[at]! & 15) * 4;
      if (ihl < 20 || at + ihl > end) return;
      if ((((bytes[at + 6]! << 8) | bytes[at + 7]!) & 0x3fff) !== 0) return;
      const ttl = bytes[at + 8]!;
      const proto = bytes[at + 9]!;
      const word = (o: number): number =>
        ((bytes[o]! << 24) | (bytes[o + 1]! << 16) | (bytes[o + 2]! << 8) | bytes[o + 3]!) >>> 0;
      const src = word(at + 12);
      const dst = word(at + 16);
      if (proto === 1) {
        const icmp = at + ihl;
        if (icmp + 8 > end) return;
        const type = bytes[icmp]!;
        if (QUOTING_TYPES[type] === 1 || V4_OTHER_IDENT.has(type)) return;
        const echo = type === 0 || type === 8;
        q.meta[k] = (type | (bytes[icmp + 1]! << 8) | (4 << 24)) >>> 0;
        q.idSeq[k] = echo ? word(icmp + 4) : 0;
        q.misc[k] = (ttl | (echo ? MISC_F_HAS_ECHO : 0)) >>> 0;
      } else if (proto === 6 || proto === 17) {
        q.meta[k] = (4 << 24) >>> 0;
        q.misc[k] = ttl;
        q.flags[k] = FLAG_NOT_FIRST;
      } else {
        // Tunnels (IPv6 in IPv4 ...) and the rest: the record path decides.
        return;
      }
      q.src[k] = addresses.internV4(src);
      q.dst[k] = addresses.internV4(dst);
    } else {
      if (at + 40 > end || bytes[at]! >>> 4 !== 6) return;
      const next = bytes[at + 6]!;
      const hlim = bytes[at + 7]!;
      const word = (o: number): number =>
        ((bytes[o]! << 24) | (bytes[o + 1]! << 16) | (bytes[o + 2]! << 8) | bytes[o + 3]!) >>> 0;
      if (next === 58) {
        const icmp = at + 40;
        if (icmp + 8 > end) return;
        const type = bytes[icmp]!;
        if (QUOTING_TYPES[256 + type] === 1) return;
        const echo = type === 128 || type === 129;
        q.meta[k] = (type | (bytes[icmp + 1]! << 8) | (6 << 24)) >>> 0;
        q.idSeq[k] = echo ? word(icmp + 4) : 0;
        q.misc[k] = (hlim | (echo ? MISC_F_HAS_ECHO : 0)) >>> 0;
      } else if (next === 6 || next === 17 || next === 59) {
        q.meta[k] = (6 << 24) >>> 0;
        q.misc[k] = hlim;
        q.flags[k] = FLAG_NOT_FIRST;
      } else {
        // An extension header (or something Wireshark may dissect further): the record path decides.
        return;
      }
      const s = at + 8;
      const d = at + 24;
      q.src[k] = addresses.internV6(bytes, s, word(s), word(s + 4), word(s + 8), word(s + 12));
      q.dst[k] = addresses.internV6(bytes, d, word(d), word(d + 4), word(d + 8), word(d + 12));
    }
    q.simple[k] = 1;
  }
}
