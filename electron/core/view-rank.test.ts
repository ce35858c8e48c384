/**
 * Address ranks for sorting by source/destination: the ranks taken from the address table's words (no text
 * parsed) are the ranks of the addresses' family and bytes, with and without the table's words, including
 * ids that were reclaimed and reused with the other family.
 */
import { describe, expect, it } from 'vitest';
import { addressBytes } from './filter/address.js';
import { AddressTable } from './ingest.js';
import { prng } from './bench/synth.js';
import { rankAddresses } from './view.js';

/** The order by definition: no address first, then family, then the bytes, then the id. */
function reference(text: readonly string[], family: readonly number[]): Uint32Array {
  const key = text.map((t, id) => {
    const bytes = id === 0 ? null : addressBytes(t, family[id]!);
    return bytes === null ? '' : String.fromCharCode(family[id]!, ...bytes);
  });
  const ids = key.map((_, k) => k).sort((a, b) => (key[a]! < key[b]! ? -1 : key[a]! > key[b]! ? 1 : a - b));
  const rank = new Uint32Array(ids.length);
  ids.forEach((id, r) => (rank[id] = r));
  return rank;
}

describe('address ranks', () => {
  it('follow family and bytes, from the table words as from the text', () => {
    const rnd = prng(17);
    const table = new AddressTable();
    const held: number[] = [];
    const v6 = new Uint8Array(16);
    const word = (): number => Math.floor(rnd() * 2 ** 32);
    for (let k = 0; k < 6000; k++) {
      if (rnd() < 0.55) {
        // Few distinct high bytes, so many addresses share prefixes (ties decided by later words).
        held.push(table.internV4(((Math.floor(rnd() * 4) << 24) | (word() & 0xffffff)) >>> 0));
      } else {
        const w = [rnd() < 0.5 ? 0x20010db8 : 0xfe800000, rnd() < 0.7 ? 0 : word(), word(), word()];
        const dv = new DataView(v6.buffer);
        w.forEach((x, i) => dv.setUint32(i * 4, x >>> 0, false));
        held.push(table.internV6(v6, 0, w[0]!, w[1]!, w[2]!, w[3]!));
      }
      // Give some back: their ids are reclaimed and reused, possibly by the other family.
      if (rnd() < 0.3 && held.length > 0) table.release(held.splice(Math.floor(rnd() * held.length), 1)[0]!);
    }
    const want = reference(table.text, table.family);
    expect(Array.from(rankAddresses(table))).toEqual(Array.from(want));
    expect(Array.from(rankAddresses({ text: table.text, family: table.family }))).toEqual(Array.from(want));
  });
});
