/**
 * Turns batches of records (record.ts format) into rows of the columnar index: interns addresses and
 * interfaces, and matches echo replies to their requests to give each reply its RTT.
 */
import { isEchoReply, isEchoRequest } from '../common/icmp.js';
import { OFF, REC_F_HAS_ECHO, REC_F_TRUNCATED, forEachRecord, formatAddress } from './record.js';
import {
  Interner,
  MISC_F_HAS_ECHO,
  MISC_F_TRUNCATED,
  MISC_HOOK_NONE,
  MISC_HOOK_SHIFT,
  type RecordStore,
} from './store.js';

/** Interns addresses by their bytes, formatting each distinct address once. */
export class AddressTable {
  private readonly v4 = new Map<number, number>();
  private readonly v6 = new Map<string, number>();
  readonly text: string[] = [''];
  readonly family: (4 | 6)[] = [4];

  intern(bytes: Uint8Array, at: number, family: 4 | 6): number {
    if (family === 4) {
      const key =
        ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
      let id = this.v4.get(key);
      if (id === undefined) {
        id = this.add(formatAddress(bytes.subarray(at, at + 4), 4), 4);
        this.v4.set(key, id);
      }
      return id;
    }
    let key = '';
    for (let i = 0; i < 16; i += 2) key += String.fromCharCode((bytes[at + i]! << 8) | bytes[at + i + 1]!);
    let id = this.v6.get(key);
    if (id === undefined) {
      id = this.add(formatAddress(bytes.subarray(at, at + 16), 6), 6);
      this.v6.set(key, id);
    }
    return id;
  }

  private add(text: string, family: 4 | 6): number {
    this.text.push(text);
    this.family.push(family);
    return this.text.length - 1;
  }

  clear(): void {
    this.v4.clear();
    this.v6.clear();
    this.text.length = 1;
    this.family.length = 1;
  }
}

/**
 * Outstanding echo requests keyed by (requester, responder, id, seq). Entries older than `maxAgeNs`
 * are dropped in bulk so a peer that never answers cannot grow this without bound.
 */
export class EchoMatcher {
  private pending = new Map<number, Map<number, number>>();
  private older = new Map<number, Map<number, number>>();
  private rotatedAtNs = 0;

  constructor(private readonly maxAgeNs = 60e9) {}

  private static pairKey(from: number, to: number): number {
    return from * 0x4000000 + to; // 26 bits each: 67 M distinct addresses before collisions
  }

  request(from: number, to: number, idSeq: number, tsRel: number): void {
    this.rotate(tsRel);
    const key = EchoMatcher.pairKey(from, to);
    let inner = this.pending.get(key);
    if (inner === undefined) this.pending.set(key, (inner = new Map<number, number>()));
    if (!inner.has(idSeq)) inner.set(idSeq, tsRel);
  }

  /** Returns the request's time for this reply (reply goes `from` the responder `to` the requester). */
  reply(from: number, to: number, idSeq: number): number | undefined {
    const key = EchoMatcher.pairKey(to, from);
    return this.pending.get(key)?.get(idSeq) ?? this.older.get(key)?.get(idSeq);
  }

  private rotate(tsRel: number): void {
    if (tsRel - this.rotatedAtNs < this.maxAgeNs) return;
    this.older = this.pending;
    this.pending = new Map();
    this.rotatedAtNs = tsRel;
  }

  clear(): void {
    this.pending.clear();
    this.older.clear();
    this.rotatedAtNs = 0;
  }
}

export class Ingestor {
  readonly addresses = new AddressTable();
  readonly interfaces = new Interner();
  readonly echo = new EchoMatcher();

  constructor(
    readonly store: RecordStore,
    private readonly ifname: (ifindex: number) => string,
  ) {}

  /** Appends every record of the batch; returns how many. `spoolOffsets[i]` is record i's place on disk. */
  ingest(batch: ArrayBuffer, spoolOffsets?: Float64Array): number {
    const bytes = new Uint8Array(batch);
    const store = this.store;
    let n = 0;
    return forEachRecord(batch, (view, o) => {
      const tsNs = view.getBigUint64(o + OFF.tsNs, true);
      if (store.baseNs === null) store.baseNs = tsNs;
      const tsRel = Number(tsNs - store.baseNs);
      const family = view.getUint8(o + OFF.family) === 6 ? 6 : 4;
      const type = view.getUint8(o + OFF.type);
      const code = view.getUint8(o + OFF.code);
      const dir = view.getUint8(o + OFF.dir);
      const flags = view.getUint16(o + OFF.flags, true);
      const src = this.addresses.intern(bytes, o + OFF.saddr, family);
      const dst = this.addresses.intern(bytes, o + OFF.daddr, family);
      const idSeq = ((view.getUint16(o + OFF.id, true) << 16) | view.getUint16(o + OFF.seq, true)) >>> 0;
      const ifIdx = this.interfaces.intern(this.ifname(view.getUint32(o + OFF.ifindex, true)));
      const { chunk, i } = store.next();
      chunk.tsRel[i] = tsRel;
      chunk.src[i] = src;
      chunk.dst[i] = dst;
      chunk.meta[i] = (type | (code << 8) | (dir << 16) | (family << 24)) >>> 0;
      chunk.idSeq[i] = idSeq;
      const hook = view.getUint8(o + OFF.hook);
      chunk.misc[i] =
        (view.getUint8(o + OFF.ttl) |
          ((hook < MISC_HOOK_NONE ? hook : MISC_HOOK_NONE) << MISC_HOOK_SHIFT) |
          ((ifIdx & 0xffff) << 8) |
          (flags & REC_F_HAS_ECHO ? MISC_F_HAS_ECHO : 0) |
          (flags & REC_F_TRUNCATED ? MISC_F_TRUNCATED : 0)) >>>
        0;
      const origLen = Math.min(view.getUint32(o + OFF.origLen, true), 0xffff);
      chunk.len[i] = (origLen | (view.getUint16(o + OFF.capLen, true) << 16)) >>> 0;
      chunk.spoolOffset[i] = spoolOffsets ? spoolOffsets[n]! : -1;
      chunk.rtt[i] = NaN;
      if (flags & REC_F_HAS_ECHO) {
        if (isEchoRequest(family, type)) this.echo.request(src, dst, idSeq, tsRel);
        else if (isEchoReply(family, type)) {
          const sent = this.echo.reply(src, dst, idSeq);
          if (sent !== undefined && sent <= tsRel) chunk.rtt[i] = (tsRel - sent) / 1e6;
        }
      }
      n++;
    });
  }

  clear(): void {
    this.store.clear();
    this.addresses.clear();
    this.echo.clear();
  }
}
