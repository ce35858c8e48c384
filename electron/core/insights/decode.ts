/**
 * decodeRecord (../record.ts) with the address strings cached (../address-cache.ts): formatting two addresses
 * is most of the cost of decoding a record, and traffic repeats its addresses. The insights decode the records
 * their engines need beyond echo requests and replies (errors, neighbour discovery; every record when alert
 * rules are set).
 */
import { AddressCache } from '../address-cache.js';
import { type AddressText, type DecodedRecord, decodeRecord } from '../record.js';

export class CachedDecoder {
  /** An address's text, cached (also for the addresses an error quotes: decodeError's `text`). */
  readonly address: AddressText = new AddressCache().text;

  decode(view: DataView, offset: number): DecodedRecord {
    return decodeRecord(view, offset, this.address);
  }
}
