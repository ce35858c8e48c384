import { describe, expect, it } from 'vitest';
import { AddressTable, ID_BLOCK_MASK } from './ingest.js';
import { formatAddress } from './record.js';

const v4text = (w: number): string => `${w >>> 24}.${(w >>> 16) & 255}.${(w >>> 8) & 255}.${w & 255}`;

/** Interns `n` distinct addresses (every fifth IPv6), returning each one's id, words and text. */
function flood(table: AddressTable, n: number, salt: number, onStep?: () => void) {
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  const out: { id: number; words: number[]; text: string }[] = [];
  for (let k = 0; k < n; k++) {
    let id: number;
    let words: number[];
    let text: string;
    if (k % 5 === 4) {
      words = [0x20010db8, salt, k >>> 16, (k * 2654435761) >>> 0];
      words.forEach((w, i) => view.setUint32(i * 4, w, false));
      id = table.internV6(bytes, 0, words[0]!, words[1]!, words[2]!, words[3]!);
      text = formatAddress(bytes, 6);
    } else {
      const w = ((10 << 24) | (salt << 20) | k) >>> 0;
      words = [w, 0, 0, 0];
      id = table.internV4(w);
      text = v4text(w);
    }
    out.push({ id, words, text });
    onStep?.();
  }
  return out;
}

function expectAddresses(table: AddressTable, held: { id: number; words: number[]; text: string }[]): void {
  const got = new Uint32Array(4);
  const wrong: string[] = [];
  for (const a of held) {
    const ok = table.wordsOf(a.id, got, 0);
    if (table.text[a.id] !== a.text || !ok || got.some((w, i) => w !== a.words[i]))
      wrong.push(
        `${a.id}: ${table.text[a.id]} ${Array.from(got).join(' ')} (want ${a.text} ${a.words.join(' ')})`,
      );
  }
  expect(wrong.slice(0, 5)).toEqual([]);
}

describe('AddressTable', () => {
  it('takes an address of 2^31 or more as the same one whether its words come signed or unsigned', () => {
    // Ingest reads the words signed (a uint32 of 2^31 or more is a heap number when passed); files, filters
    // and tests pass them unsigned: both are one address, with its text, and it is reclaimed whole.
    const table = new AddressTable();
    const v4 = 0xc0a80101; // 192.168.1.1
    const a = table.internV4(v4);
    expect(table.internV4(v4 | 0)).toBe(a);
    expect(table.text[a]).toBe('192.168.1.1');
    const bytes = new Uint8Array([
      0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x82, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44, 0x55,
    ]);
    const view = new DataView(bytes.buffer);
    const unsigned = [0, 4, 8, 12].map((at) => view.getUint32(at, false));
    const signed = [0, 4, 8, 12].map((at) => view.getInt32(at, false));
    const b = table.internV6(bytes, 0, unsigned[0]!, unsigned[1]!, unsigned[2]!, unsigned[3]!);
    expect(table.internV6(bytes, 0, signed[0]!, signed[1]!, signed[2]!, signed[3]!)).toBe(b);
    expect(table.text[b]).toBe('fe80::8211:22ff:fe33:4455');
    expectAddresses(table, [
      { id: a, words: [v4, 0, 0, 0], text: '192.168.1.1' },
      { id: b, words: unsigned, text: 'fe80::8211:22ff:fe33:4455' },
    ]);
    expect(table.size).toBe(2);
    // Two references each; released twice, each is gone, and comes back as a new id when seen again.
    for (const id of [a, a, b, b]) table.release(id);
    expect(table.size).toBe(0);
    const again = table.internV4(v4 | 0);
    expect(table.text[again]).toBe('192.168.1.1');
    expect(table.internV4(v4)).toBe(again);
  });

  it('grows its per-id arrays a block at a time under a flood of new addresses, and keeps every one', () => {
    // A spoofed-source flood: every packet a new address. The references and words doubled with a copy: at
    // 262 144 ids the step was 5 MB (at 2 M ids, 40 MB copied and faulted in in one turn).
    const table = new AddressTable();
    let before = table.idBytes;
    let largestStep = 0;
    const held = flood(table, 300_000, 1, () => {
      largestStep = Math.max(largestStep, table.idBytes - before);
      before = table.idBytes;
    });
    expect(largestStep).toBeGreaterThan(0);
    expect(largestStep).toBeLessThan(1_000_000);
    expect(table.size).toBe(300_000);
    expect(new Set(held.map((a) => a.id)).size).toBe(300_000);
    expectAddresses(table, held);
    // The same address again is the same id, one more reference: two releases reclaim it.
    const [last] = held.splice(held.length - 2, 1); // an IPv4 one
    expect(table.internV4(last!.words[0]!)).toBe(last!.id);
    table.release(last!.id);
    expect(table.text[last!.id]).toBe(last!.text);
    table.release(last!.id);
    expect(table.text[last!.id]).toBe('');

    // Reclaim ids across many blocks; new addresses reuse them, oldest first, and the others stay.
    const freed = held.filter((_, k) => k % 3 === 0 || (k > 5000 && k < 9000));
    const kept = held.filter((_, k) => !(k % 3 === 0 || (k > 5000 && k < 9000)));
    for (const a of freed) table.release(a.id);
    const reused = flood(table, freed.length, 2);
    expect(reused.map((a) => a.id)).toEqual([last!.id, ...freed.map((a) => a.id)].slice(0, freed.length));
    expect(reused.some((a) => a.id > 4 * (ID_BLOCK_MASK + 1))).toBe(true);
    expectAddresses(table, kept);
    expectAddresses(table, reused);
    for (const a of reused.filter((_, k) => k % 7 === 0)) {
      table.release(a.id);
      expect(table.text[a.id]).toBe('');
    }

    // A new capture starts again from one block, and ids from 1.
    table.clear();
    expect(table.idBytes).toBeLessThan(before / 50);
    const again = flood(table, 10_000, 3);
    expect(again[0]!.id).toBe(1);
    expectAddresses(table, again);
  });
});
