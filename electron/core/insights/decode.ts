/**
 * decodeRecord (../record.ts) with the address strings cached: formatting two addresses is most of the cost
 * of decoding a record, and a flood repeats the same few addresses. The insights tap decodes every echo
 * record (passive traceroute needs the probes), so this keeps it off the ingest path's critical cost.
 */
import { formatAddress } from '../../common/address.js';
import { type DecodedRecord, OFF, REC_F_HAS_ECHO } from '../record.js';

const MAX_CACHED = 4096;
const V6_RECENT = 8;

export class CachedDecoder {
  private readonly v4 = new Map<number, string>();
  /** The last IPv6 addresses seen (raw and as text), newest first: a flood repeats a few. */
  private readonly v6Raw: Uint8Array[] = [];
  private readonly v6Text: string[] = [];

  private address(bytes: Uint8Array, at: number, family: 4 | 6): string {
    if (family === 4) {
      const key =
        ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
      let text = this.v4.get(key);
      if (text === undefined) {
        if (this.v4.size >= MAX_CACHED) this.v4.clear();
        text = formatAddress(bytes.subarray(at, at + 16), 4);
        this.v4.set(key, text);
      }
      return text;
    }
    search: for (let k = 0; k < this.v6Raw.length; k++) {
      const raw = this.v6Raw[k]!;
      for (let i = 15; i >= 0; i--) if (raw[i] !== bytes[at + i]) continue search;
      return this.v6Text[k]!;
    }
    const raw = bytes.slice(at, at + 16);
    const text = formatAddress(raw, 6);
    this.v6Raw.unshift(raw);
    this.v6Text.unshift(text);
    if (this.v6Raw.length > V6_RECENT) {
      this.v6Raw.pop();
      this.v6Text.pop();
    }
    return text;
  }

  decode(view: DataView, offset: number): DecodedRecord {
    const family = view.getUint8(offset + OFF.family) === 6 ? 6 : 4;
    const flags = view.getUint16(offset + OFF.flags, true);
    const capLen = view.getUint16(offset + OFF.capLen, true);
    const base = view.byteOffset + offset;
    const bytes = new Uint8Array(view.buffer);
    return {
      flags,
      hook: view.getUint8(offset + OFF.hook),
      dir: view.getUint8(offset + OFF.dir),
      tsNs: view.getBigUint64(offset + OFF.tsNs, true),
      ifindex: view.getUint32(offset + OFF.ifindex, true),
      origLen: view.getUint32(offset + OFF.origLen, true),
      capLen,
      family,
      ttl: view.getUint8(offset + OFF.ttl),
      type: view.getUint8(offset + OFF.type),
      code: view.getUint8(offset + OFF.code),
      id: view.getUint16(offset + OFF.id, true),
      seq: view.getUint16(offset + OFF.seq, true),
      hasEcho: (flags & REC_F_HAS_ECHO) !== 0,
      src: this.address(bytes, base + OFF.saddr, family),
      dst: this.address(bytes, base + OFF.daddr, family),
      data: bytes.subarray(base + OFF.data, base + OFF.data + capLen),
    };
  }
}
