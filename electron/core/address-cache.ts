/**
 * Address text cached by the address's bytes: formatting an address (an IPv6 one above all) costs more than
 * the rest of what a decoder does with a record, and traffic repeats its addresses. Bounded: past MAX_CACHED
 * addresses of a family the cache starts over.
 *
 *   const cache = new AddressCache();
 *   cache.text(bytes, at, 6);   // '2001:db8::1', formatted once
 */
import { formatAddress } from '../common/address.js';
import type { AddressText } from './record.js';

const MAX_CACHED = 4096;

export class AddressCache {
  private readonly v4 = new Map<number, string>();
  /** IPv6 addresses by a hash of their bytes; each entry keeps the bytes to confirm a hit. */
  private readonly v6 = new Map<number, { raw: Uint8Array; text: string }>();

  /** The text of the address at `at` of `bytes` (4 or 16 bytes, by family). */
  readonly text: AddressText = (bytes, at, family) => {
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
}
