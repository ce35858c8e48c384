/**
 * decodeRecord (../record.ts) with the address strings cached: formatting two addresses is most of the cost
 * of decoding a record, and a flood repeats the same few addresses. The insights tap decodes every echo
 * record (passive traceroute needs the probes), so this keeps it off the ingest path's critical cost.
 */
import { formatAddress } from '../../common/address.js';
import { type AddressText, type DecodedRecord, decodeRecord } from '../record.js';

const MAX_CACHED = 4096;
const V6_RECENT = 8;

export class CachedDecoder {
  private readonly v4 = new Map<number, string>();
  /** The last IPv6 addresses seen (raw and as text), newest first: a flood repeats a few. */
  private readonly v6Raw: Uint8Array[] = [];
  private readonly v6Text: string[] = [];

  private readonly address: AddressText = (bytes, at, family) => {
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
  };

  decode(view: DataView, offset: number): DecodedRecord {
    return decodeRecord(view, offset, this.address);
  }
}
