/**
 * decodeRecord (../record.ts) with the address strings cached: formatting two addresses is most of the cost
 * of decoding a record, and traffic repeats its addresses. The insights tap decodes the records its engines
 * need beyond echo requests and replies (errors, neighbour discovery; every record when alert rules are set).
 */
import { formatAddress } from '../../common/address.js';
import { type AddressText, type DecodedRecord, decodeRecord } from '../record.js';

const MAX_CACHED = 4096;

export class CachedDecoder {
  private readonly v4 = new Map<number, string>();
  /** IPv6 addresses by a hash of their bytes; each entry keeps the bytes to confirm a hit. */
  private readonly v6 = new Map<number, { raw: Uint8Array; text: string }>();

  /** An address's text, cached (also for the addresses an error quotes: decodeError's `text`). */
  readonly address: AddressText = (bytes, at, family) => {
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
    let h = 0x811c9dc5;
    for (let i = 0; i < 16; i++) h = Math.imul(h ^ bytes[at + i]!, 0x01000193);
    h &= 0x3fffffff;
    const hit = this.v6.get(h);
    if (hit !== undefined) {
      const raw = hit.raw;
      let same = true;
      for (let i = 0; i < 16; i++) if (raw[i] !== bytes[at + i]) same = false;
      if (same) return hit.text;
    }
    const raw = bytes.slice(at, at + 16);
    const text = formatAddress(raw, 6);
    if (this.v6.size >= MAX_CACHED) this.v6.clear();
    this.v6.set(h, { raw, text });
    return text;
  };

  decode(view: DataView, offset: number): DecodedRecord {
    return decodeRecord(view, offset, this.address);
  }
}
