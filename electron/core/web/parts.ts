/** Joins requests sent in parts (electron/common/wire.ts) with a bound on what one client may hold. */
import { MAX_REQUEST_BYTES } from '../../common/wire.js';

export type PartResult = { done: true; text: string } | { done: false } | { error: string };

const PART_HEADER = /^#(\d{1,6})\/(\d{1,6})\n/;

export class PartJoiner {
  private pieces: string[] = [];
  private expected = 0;
  private bytes = 0;

  constructor(private readonly maxBytes = MAX_REQUEST_BYTES) {}

  /** Takes one frame that starts with '#'. */
  add(frame: string): PartResult {
    const m = PART_HEADER.exec(frame);
    if (!m) return this.fail('a request part starts with "#<n>/<count>" and a newline');
    const index = Number(m[1]);
    const count = Number(m[2]);
    if (index < 1 || count < 2 || index > count) return this.fail(`part ${index} of ${count} makes no sense`);
    if (index === 1) this.reset();
    if (index !== this.pieces.length + 1 || (this.expected !== 0 && count !== this.expected))
      return this.fail(`part ${index}/${count} came out of order: send the parts of one request in order`);
    const piece = frame.slice(m[0].length);
    this.bytes += Buffer.byteLength(piece);
    if (this.bytes > this.maxBytes)
      return this.fail(`a request may take at most ${this.maxBytes} bytes; ask for less at a time`);
    this.expected = count;
    this.pieces.push(piece);
    if (index < count) return { done: false };
    const text = this.pieces.join('');
    this.reset();
    return { done: true, text };
  }

  private fail(error: string): PartResult {
    this.reset();
    return { error };
  }

  private reset(): void {
    this.pieces = [];
    this.expected = 0;
    this.bytes = 0;
  }
}
