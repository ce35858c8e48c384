/**
 * Turns batches of records (record.ts format) into rows of the columnar index, fast (measured by
 * electron/core/bench/service-bench.ts):
 * - the 64-bit timestamp is read as two 32-bit halves, not a BigInt per record (BigInt allocates);
 * - addresses are interned through typed-array hash tables (PairTable), not Maps of heap numbers or
 *   strings built per record;
 * - each interface index is resolved to its interned name once per batch, not once per record.
 * - echo matching (echo-match.ts) runs over each batch as its last step: replies get their RTT (and
 *   whatever else they inherit from their request), requests without a response their mark, before anyone
 *   (statistics, views, filters) reads the batch.
 */
import {
  OFF,
  REC_F_FRAGMENT,
  REC_F_HAS_ECHO,
  REC_F_NOT_FIRST,
  REC_F_SHORT,
  REC_F_TRUNCATED,
  forEachRecord,
  formatAddress,
} from './record.js';
import { icmpChecksumOk } from './checksum.js';
import { EchoMatcher, type EchoMatchOptions } from './echo-match.js';
import { PairTable } from './stats/pair-table.js';
import { wantsProcess, type ProcAttribution } from './proc/attribution.js';
import { QUOTING_TYPES, QuotedIndex } from './filter/quoted.js';
import type { RecordFlag, Row } from '../common/contract.js';
import {
  CHUNK_MASK,
  CHUNK_SHIFT,
  FLAG_BAD_CHECKSUM,
  FLAG_FRAGMENT,
  FLAG_NOT_FIRST,
  FLAG_SHORT,
  Interner,
  MISC_F_HAS_ECHO,
  MISC_F_NO_RESPONSE,
  MISC_F_TRUNCATED,
  MISC_HOOK_NONE,
  MISC_HOOK_SHIFT,
  type RecordStore,
} from './store.js';

/** Id (re)assignments remembered for `assignedSince` (a ring). */
const ASSIGN_LOG = 1 << 16;

/**
 * Ids per block of the arrays kept per address id (the table's references and words, the statistics'
 * per-address counters). They grow a block at a time and are never copied: doubling one array meant
 * copying and faulting in tens of MB in one turn once a spoofed-source flood had made millions of addresses
 * (72 MB at 2 M ids).
 */
export const ID_BLOCK_SHIFT = 12;
export const ID_BLOCK_MASK = (1 << ID_BLOCK_SHIFT) - 1;

/**
 * Addresses by id (text and family). Ids are reference counted: every record that names an address holds
 * one reference (taken when it is interned, given back when the ring buffer evicts the record), and the
 * statistics hold one per address a peer keeps (`retain`/`release`). An id whose count drops to zero is
 * reclaimed and later reused, so a ring-buffer capture under a flood from random sources keeps at most
 * about as many addresses as it holds records. Consumers that keep something per id (filter tables,
 * sort ranks, per-address counters) follow `serial` and `assignedSince`, and `onFree` for the ids that go.
 */
export class AddressTable {
  readonly text: string[] = [''];
  readonly family: (4 | 6)[] = [4];
  private v4 = new PairTable(1024);
  private v6 = new PairTable(1024);
  /** The address of each id as four 32-bit words (IPv4: the first), to confirm hash hits and to find an
   * id's hash entry when it is reclaimed: id's at `(id & ID_BLOCK_MASK) * 4` of block
   * `id >>> ID_BLOCK_SHIFT`. */
  private readonly words: Int32Array[] = [new Int32Array(4 << ID_BLOCK_SHIFT)];
  /** IPv6 addresses whose hash collided with another's (practically never). */
  private readonly v6slow = new Map<string, number>();
  /** References held on each id, in blocks as `words`. */
  private readonly refs: Int32Array[] = [new Int32Array(1 << ID_BLOCK_SHIFT)];
  /** Reclaimed ids, reused oldest first (a queue from `freeHead`): an id rests as long as possible. */
  private freeIds: number[] = [];
  private freeHead = 0;
  private readonly freeListeners: ((id: number) => void)[] = [];
  private readonly log = new Int32Array(ASSIGN_LOG);
  /** Ids assigned so far (new or reused): changes whenever an id gets an address. Never goes back. */
  serial = 0;

  /** The id of IPv4 address `word` (its 32 bits, signed or not: ingest reads them signed, never boxed). */
  internV4(word: number): number {
    word |= 0;
    let id = this.v4.get(word, 0);
    if (id < 0) {
      id = this.add(`${word >>> 24}.${(word >>> 16) & 255}.${(word >>> 8) & 255}.${word & 255}`, 4);
      this.v4.set(word, 0, id);
      this.words[id >>> ID_BLOCK_SHIFT]![(id & ID_BLOCK_MASK) * 4] = word;
    }
    this.refs[id >>> ID_BLOCK_SHIFT]![id & ID_BLOCK_MASK]!++;
    return id;
  }

  /** The id of the IPv6 address at `bytes[at..]`, its 32-bit words `w0`..`w3` (signed or not, as internV4). */
  internV6(bytes: Uint8Array, at: number, w0: number, w1: number, w2: number, w3: number): number {
    w0 |= 0;
    w1 |= 0;
    w2 |= 0;
    w3 |= 0;
    const a = Math.imul(w0, 0x9e3779b1) ^ w1;
    const b = Math.imul(w2, 0x85ebca6b) ^ w3;
    let id = this.v6.get(a, b);
    if (id >= 0) {
      const k = (id & ID_BLOCK_MASK) * 4;
      const words = this.words[id >>> ID_BLOCK_SHIFT]!;
      if (!(words[k] === w0 && words[k + 1] === w1 && words[k + 2] === w2 && words[k + 3] === w3))
        id = this.internV6Slow(bytes, at);
    } else {
      id = this.add(formatAddress(bytes.subarray(at, at + 16), 6), 6);
      this.v6.set(a, b, id);
      const k = (id & ID_BLOCK_MASK) * 4;
      const words = this.words[id >>> ID_BLOCK_SHIFT]!;
      words[k] = w0;
      words[k + 1] = w1;
      words[k + 2] = w2;
      words[k + 3] = w3;
    }
    this.refs[id >>> ID_BLOCK_SHIFT]![id & ID_BLOCK_MASK]!++;
    return id;
  }

  private internV6Slow(bytes: Uint8Array, at: number): number {
    const text = formatAddress(bytes.subarray(at, at + 16), 6);
    let id = this.v6slow.get(text);
    if (id === undefined) {
      id = this.add(text, 6);
      this.v6slow.set(text, id);
    }
    return id;
  }

  /**
   * The address of `id` as four big-endian 32-bit words into `out` from `at` (IPv4: the first, the others 0),
   * without parsing its text: false for an id with no address, or one kept by its text (a hash collision).
   */
  wordsOf(id: number, out: Uint32Array, at: number): boolean {
    const text = this.text[id];
    if (id === 0 || !text) return false;
    const k = (id & ID_BLOCK_MASK) * 4;
    const words = this.words[id >>> ID_BLOCK_SHIFT]!;
    if (this.family[id] === 4) {
      out[at] = words[k]!;
      out[at + 1] = out[at + 2] = out[at + 3] = 0;
      return true;
    }
    if (this.v6slow.get(text) === id) return false;
    out[at] = words[k]!;
    out[at + 1] = words[k + 1]!;
    out[at + 2] = words[k + 2]!;
    out[at + 3] = words[k + 3]!;
    return true;
  }

  /** Takes one more reference on `id` (it stays this address until released). */
  retain(id: number): void {
    this.refs[id >>> ID_BLOCK_SHIFT]![id & ID_BLOCK_MASK]!++;
  }

  /** Gives back one reference; the last one reclaims the id. */
  release(id: number): void {
    if (--this.refs[id >>> ID_BLOCK_SHIFT]![id & ID_BLOCK_MASK]! === 0 && id !== 0) this.free(id);
  }

  /** Calls `listener` with each id as it is reclaimed (its address still in `text`); returns an unsubscribe. */
  onFree(listener: (id: number) => void): () => void {
    this.freeListeners.push(listener);
    return () => {
      const k = this.freeListeners.indexOf(listener);
      if (k >= 0) this.freeListeners.splice(k, 1);
    };
  }

  /**
   * Calls `fn` with every id assigned since `serial` (an earlier value of `serial`), oldest first. False when
   * that is too long ago to tell: the caller then looks at every id again.
   */
  assignedSince(serial: number, fn: (id: number) => void): boolean {
    if (this.serial - serial > ASSIGN_LOG || serial > this.serial) return false;
    for (let s = serial; s < this.serial; s++) fn(this.log[s & (ASSIGN_LOG - 1)]!);
    return true;
  }

  /** Addresses held (ids in use). */
  get size(): number {
    return this.text.length - 1 - (this.freeIds.length - this.freeHead);
  }

  /**
   * Bytes the table holds: its typed arrays (capacity included) exactly, and its texts, families and free
   * list about (array slots of 8 bytes; a string's header and characters).
   */
  get byteLength(): number {
    let strings = 0;
    for (const text of this.text) strings += 16 + ((text.length + 7) & ~7);
    return (
      this.v4.byteLength +
      this.v6.byteLength +
      this.idBytes +
      this.log.byteLength +
      this.v6slow.size * 48 +
      (this.text.length + this.family.length + this.freeIds.length) * 8 +
      strings
    );
  }

  /** Bytes of the per-id arrays (references and words), blocks not yet filled included. */
  get idBytes(): number {
    return this.words.length * (20 << ID_BLOCK_SHIFT);
  }

  private free(id: number): void {
    for (const listener of this.freeListeners) listener(id);
    const text = this.text[id]!;
    const k = (id & ID_BLOCK_MASK) * 4;
    const w = this.words[id >>> ID_BLOCK_SHIFT]!;
    if (this.family[id] === 4) {
      if (this.v4.get(w[k]!, 0) === id) this.v4.delete(w[k]!, 0);
    } else if (this.v6slow.get(text) === id) {
      this.v6slow.delete(text);
    } else {
      const a = Math.imul(w[k]!, 0x9e3779b1) ^ w[k + 1]!;
      const b = Math.imul(w[k + 2]!, 0x85ebca6b) ^ w[k + 3]!;
      if (this.v6.get(a, b) === id) this.v6.delete(a, b);
    }
    this.text[id] = '';
    this.freeIds.push(id);
  }

  private add(text: string, family: 4 | 6): number {
    let id: number | undefined;
    if (this.freeHead < this.freeIds.length) {
      id = this.freeIds[this.freeHead++]!;
      if (this.freeHead > 4096 && this.freeHead * 2 > this.freeIds.length) {
        this.freeIds = this.freeIds.slice(this.freeHead);
        this.freeHead = 0;
      }
    }
    if (id === undefined) {
      id = this.text.length;
      this.text.push(text);
      this.family.push(family);
      if (id >>> ID_BLOCK_SHIFT === this.refs.length) {
        this.refs.push(new Int32Array(1 << ID_BLOCK_SHIFT));
        this.words.push(new Int32Array(4 << ID_BLOCK_SHIFT));
      }
    } else {
      this.text[id] = text;
      this.family[id] = family;
    }
    this.refs[id >>> ID_BLOCK_SHIFT]![id & ID_BLOCK_MASK] = 0;
    this.log[this.serial & (ASSIGN_LOG - 1)] = id;
    this.serial++;
    return id;
  }

  /** Forgets every address (the index was cleared). `serial` goes on counting. */
  clear(): void {
    this.v4 = new PairTable(1024);
    this.v6 = new PairTable(1024);
    this.v6slow.clear();
    this.text.length = 1;
    this.family.length = 1;
    // A new capture makes the blocks it needs; the first is kept (its words are written before read).
    this.refs.length = this.words.length = 1;
    this.refs[0]!.fill(0);
    this.freeIds = [];
    this.freeHead = 0;
  }
}

export class Ingestor {
  readonly addresses = new AddressTable();
  readonly interfaces = new Interner();
  /** The headers ICMP errors quote, for the display filters (filter/quoted.ts). */
  readonly quoted = new QuotedIndex();
  /** Matches echo replies to requests as records come in. */
  readonly echo: EchoMatcher;
  private baseHi = 0;
  private baseLo = 0;
  /** Attributes records to local processes as they come in (proc/attribution.ts); null: not at all. */
  attribution: ProcAttribution | null = null;

  constructor(
    readonly store: RecordStore,
    private readonly ifname: (ifindex: number) => string,
    echoOptions: EchoMatchOptions = {},
  ) {
    this.echo = new EchoMatcher({ ...echoOptions, addresses: this.addresses });
    // Records leaving the ring buffer give their addresses back.
    store.onEvict((from, to) => {
      const addresses = this.addresses;
      for (let c = from >>> CHUNK_SHIFT; c < to >>> CHUNK_SHIFT; c++) {
        const { src, dst } = store.chunks[c]!;
        for (let i = 0; i < src.length; i++) {
          addresses.release(src[i]!);
          addresses.release(dst[i]!);
        }
      }
    });
  }

  /**
   * Adds a batch's records to the store and matches their echoes; returns how many there were. A slice of the
   * batch: the records in bytes [byteOffset, byteOffset + byteLength), `spoolOffsets` theirs.
   */
  ingest(batch: ArrayBuffer, spoolOffsets?: Float64Array, byteOffset = 0, byteLength?: number): number {
    const from = this.store.length;
    // Records the ring buffer dropped have no process any more.
    this.attribution?.column.evictTo(this.store.firstIndex);
    const n = this.addRecords(batch, spoolOffsets, byteOffset, byteLength ?? batch.byteLength - byteOffset);
    this.echo.inheritance = this.attribution;
    this.echo.match(this.store, from, this.store.length);
    return n;
  }

  private addRecords(
    batch: ArrayBuffer,
    spoolOffsets: Float64Array | undefined,
    byteOffset: number,
    byteLength: number,
  ): number {
    const bytes = new Uint8Array(batch);
    const store = this.store;
    const addresses = this.addresses;
    // Interface names can change between batches (an index reused), not within one.
    const ifIdxOf = new Map<number, number>();
    const attribution = this.attribution;
    attribution?.beginBatch();
    let n = 0;
    return forEachRecord(
      batch,
      (view, o) => {
        const lo = view.getUint32(o + OFF.tsNs, true);
        const hi = view.getUint32(o + OFF.tsNs + 4, true);
        if (store.baseNs === null) {
          store.baseNs = (BigInt(hi) << 32n) | BigInt(lo);
          this.baseHi = hi;
          this.baseLo = lo;
        }
        const tsRel = (hi - this.baseHi) * 4294967296 + (lo - this.baseLo);
        const family = view.getUint8(o + OFF.family) === 6 ? 6 : 4;
        let src: number;
        let dst: number;
        if (family === 4) {
          // Read signed: a word of 2^31 or more read unsigned is a heap number when passed (an allocation a
          // record).
          src = addresses.internV4(view.getInt32(o + OFF.saddr, false));
          dst = addresses.internV4(view.getInt32(o + OFF.daddr, false));
        } else {
          const s = o + OFF.saddr;
          const d = o + OFF.daddr;
          // `bytes` is the whole batch; `o` counts from the view's start (the view may be a slice of it).
          src = addresses.internV6(
            bytes,
            view.byteOffset + s,
            view.getInt32(s, false),
            view.getInt32(s + 4, false),
            view.getInt32(s + 8, false),
            view.getInt32(s + 12, false),
          );
          dst = addresses.internV6(
            bytes,
            view.byteOffset + d,
            view.getInt32(d, false),
            view.getInt32(d + 4, false),
            view.getInt32(d + 8, false),
            view.getInt32(d + 12, false),
          );
        }
        const ifindex = view.getUint32(o + OFF.ifindex, true);
        let ifIdx = ifIdxOf.get(ifindex);
        if (ifIdx === undefined) {
          ifIdx = this.interfaces.intern(this.ifname(ifindex));
          ifIdxOf.set(ifindex, ifIdx);
        }
        let flags = view.getUint16(o + OFF.flags, true);
        const hook = view.getUint8(o + OFF.hook);
        const capLen = view.getUint16(o + OFF.capLen, true);
        const origLen = Math.min(view.getUint32(o + OFF.origLen, true), 0xffff);
        const dataAt = view.byteOffset + o + OFF.data;
        let type = view.getUint8(o + OFF.type);
        let code = view.getUint8(o + OFF.code);
        if (family === 4 && capLen >= 20) {
          // Sources that predate the fragment and short flags (and files written by them) still get these
          // right: a later fragment carries no ICMP header, so whatever type the source read there means nothing.
          const fragment = ((bytes[dataAt + 6]! << 8) | bytes[dataAt + 7]!) & 0x3fff;
          if (fragment !== 0) flags |= fragment & 0x1fff ? REC_F_FRAGMENT | REC_F_NOT_FIRST : REC_F_FRAGMENT;
          else if (origLen - (bytes[dataAt]! & 0x0f) * 4 < 8) flags |= REC_F_SHORT;
        } else if (family === 6 && capLen >= 40) {
          const next = bytes[dataAt + 6];
          if (next === 44 && capLen >= 48) {
            flags |=
              (bytes[dataAt + 42]! << 8) | (bytes[dataAt + 43]! & 0xf8)
                ? REC_F_FRAGMENT | REC_F_NOT_FIRST
                : REC_F_FRAGMENT;
          } else if (next === 58 && origLen < 48) flags |= REC_F_SHORT;
        }
        let marks =
          (flags & REC_F_FRAGMENT ? FLAG_FRAGMENT : 0) |
          (flags & REC_F_NOT_FIRST ? FLAG_NOT_FIRST : 0) |
          (flags & REC_F_SHORT ? FLAG_SHORT : 0);
        if (flags & REC_F_NOT_FIRST) {
          type = 0;
          code = 0;
          flags &= ~REC_F_HAS_ECHO;
        } else if (flags & REC_F_SHORT) {
          flags &= ~REC_F_HAS_ECHO;
        } else if (
          !(flags & (REC_F_TRUNCATED | REC_F_FRAGMENT | REC_F_SHORT)) &&
          !icmpChecksumOk(bytes, dataAt, capLen, family)
        ) {
          marks |= FLAG_BAD_CHECKSUM;
        }
        const { chunk, i, index } = store.next();
        const dir = view.getUint8(o + OFF.dir);
        if (attribution !== null && wantsProcess(family, type, dir, flags)) {
          attribution.attribute(index, view, o, addresses.text, src, dst);
        }
        if (QUOTING_TYPES[type | (family === 6 ? 256 : 0)] === 1 && !(flags & REC_F_NOT_FIRST))
          this.quoted.add(index, chunk, i, bytes, dataAt, capLen, family, marks, addresses, store.firstIndex);
        chunk.tsRel[i] = tsRel;
        chunk.src[i] = src;
        chunk.dst[i] = dst;
        chunk.meta[i] = (type | (code << 8) | (dir << 16) | (family << 24)) >>> 0;
        chunk.idSeq[i] = ((view.getUint16(o + OFF.id, true) << 16) | view.getUint16(o + OFF.seq, true)) >>> 0;
        chunk.misc[i] =
          (view.getUint8(o + OFF.ttl) |
            ((hook < MISC_HOOK_NONE ? hook : MISC_HOOK_NONE) << MISC_HOOK_SHIFT) |
            ((ifIdx & 0xffff) << 8) |
            (flags & REC_F_HAS_ECHO ? MISC_F_HAS_ECHO : 0) |
            (flags & REC_F_TRUNCATED ? MISC_F_TRUNCATED : 0)) >>>
          0;
        chunk.len[i] = (origLen | (capLen << 16)) >>> 0;
        chunk.spool.set(i, spoolOffsets ? spoolOffsets[n]! : -1);
        chunk.rtt[i] = NaN;
        chunk.flags[i] = marks;
        n++;
      },
      byteOffset,
      byteLength,
    );
  }

  /**
   * Bytes held for the records besides the store's columns: the address table, the quoted headers of
   * errors, echo matching and the process column (what `service.bytes_per_record_with_stats` adds).
   */
  get bytesAllocated(): number {
    return (
      this.addresses.byteLength +
      this.quoted.bytesAllocated +
      this.echo.bytesAllocated +
      (this.attribution?.column.bytesAllocated ?? 0)
    );
  }

  clear(): void {
    this.store.clear();
    this.addresses.clear();
    this.quoted.clear();
    this.echo.clear();
  }
}

const DIRS = ['in', 'out', 'fwd', '?'] as const;

/** One record of the index as a table row (what the renderer shows and the CLI prints). */
export function rowOf(store: RecordStore, ingestor: Ingestor, index: number): Row {
  const c = store.chunkOf(index);
  const i = index & CHUNK_MASK;
  const meta = c.meta[i]!;
  const misc = c.misc[i]!;
  const hasEcho = (misc & MISC_F_HAS_ECHO) !== 0;
  const idSeq = c.idSeq[i]!;
  const rtt = c.rtt[i]!;
  const flags = recordFlags(c.flags[i]!, misc);
  return {
    no: index + 1,
    tsNs: ((store.baseNs ?? 0n) + BigInt(c.tsRel[i]!)).toString(),
    dir: DIRS[(meta >>> 16) & 3]!,
    iface: ingestor.interfaces.get((misc >>> 8) & 0xffff),
    family: meta >>> 24 === 6 ? 6 : 4,
    src: ingestor.addresses.text[c.src[i]!]!,
    dst: ingestor.addresses.text[c.dst[i]!]!,
    type: meta & 0xff,
    code: (meta >>> 8) & 0xff,
    id: hasEcho ? idSeq >>> 16 : null,
    seq: hasEcho ? idSeq & 0xffff : null,
    ttl: misc & 0xff,
    len: c.len[i]! & 0xffff,
    rttMs: Number.isNaN(rtt) ? null : Math.round(rtt * 1000) / 1000,
    ...(flags ? { flags } : {}),
    ...(misc & MISC_F_NO_RESPONSE ? { noResponse: true as const } : {}),
  };
}

/** The table's flags of a record from its `flags` and `misc` columns; null when it has none. */
export function recordFlags(marks: number, misc: number): RecordFlag[] | null {
  if (marks === 0 && !(misc & MISC_F_TRUNCATED)) return null;
  const out: RecordFlag[] = [];
  if (marks & FLAG_FRAGMENT) out.push('fragment');
  if (marks & FLAG_NOT_FIRST) out.push('not-first');
  if (marks & FLAG_SHORT) out.push('short');
  if (misc & MISC_F_TRUNCATED) out.push('truncated');
  if (marks & FLAG_BAD_CHECKSUM) out.push('bad-checksum');
  return out;
}
