/**
 * pcapng reader: several sections (each with its own byte order and interfaces), if_tsresol and if_tsoffset,
 * Enhanced, Simple and obsolete Packet Blocks; other block types are skipped.
 */
import { Direction } from '../record.js';
import {
  BLOCK,
  BYTE_ORDER_MAGIC,
  EPB_FLAG_INBOUND,
  EPB_FLAG_OUTBOUND,
  MAX_BLOCK_SIZE,
  OPT,
  pad4,
} from './pcapng-format.js';
import type { FileInterface, FormatParser, ParseWindow, ReaderState } from './read-state.js';
import { TimestampScale } from './timestamp.js';

interface SectionInterface {
  iface: FileInterface;
  scale: TimestampScale;
  snaplen: number;
}

const MICROSECONDS = TimestampScale.fromTsresol(6);

export function isPcapngMagic(view: DataView, at: number): boolean {
  return view.getUint32(at, true) === BLOCK.SECTION_HEADER;
}

export class PcapngParser implements FormatParser {
  private le = true;
  private interfaces: SectionInterface[] = [];
  private inSection = false;

  constructor(private readonly state: ReaderState) {
    state.summary.format = 'pcapng';
  }

  parse(w: ParseWindow, pos: number): number {
    const state = this.state;
    const view = w.view;
    while (!state.stopped) {
      if (pos === w.end && w.base + pos === w.fileSize) return pos;
      const offset = w.base + pos;
      if (!state.has(w, pos, 12, 'block header')) return pos;
      let type = view.getUint32(pos, this.le);
      if (type === BLOCK.SECTION_HEADER) {
        const magic = view.getUint32(pos + 8, true);
        if (magic === BYTE_ORDER_MAGIC) this.le = true;
        else if (view.getUint32(pos + 8, false) === BYTE_ORDER_MAGIC) this.le = false;
        else {
          state.fail(offset + 8, `section header has a bad byte-order magic 0x${magic.toString(16)}`);
          return pos;
        }
      } else if (!this.inSection) {
        state.fail(offset, 'expected a section header block at the start of the file');
        return pos;
      }
      type = view.getUint32(pos, this.le);
      const length = view.getUint32(pos + 4, this.le);
      if (length < 12 || length % 4 !== 0 || length > MAX_BLOCK_SIZE) {
        state.fail(offset + 4, `block of type 0x${type.toString(16)} has an invalid length ${length}`);
        return pos;
      }
      if (!state.has(w, pos, length, `block of type 0x${type.toString(16)}`)) return pos;
      const trailer = view.getUint32(pos + length - 4, this.le);
      if (trailer !== length) {
        state.fail(offset + length - 4, `block length ${length} does not match its trailing copy ${trailer}`);
        return pos;
      }
      if (!this.readBlock(w, pos, type, length)) return pos;
      pos += length;
    }
    return pos;
  }

  private tooShort(offset: number, type: number, length: number, min: number): boolean {
    if (length >= min) return false;
    this.state.fail(offset, `block of type 0x${type.toString(16)} is ${length} bytes, shorter than ${min}`);
    return true;
  }

  /** Handles one whole, length-checked block; false after recording an error. */
  private readBlock(w: ParseWindow, at: number, type: number, length: number): boolean {
    const state = this.state;
    const view = w.view;
    const le = this.le;
    const offset = w.base + at;
    switch (type) {
      case BLOCK.SECTION_HEADER: {
        if (this.tooShort(offset, type, length, 28)) return false;
        const major = view.getUint16(at + 12, le);
        if (major !== 1) {
          state.fail(offset + 12, `unsupported pcapng version ${major}.${view.getUint16(at + 14, le)}`);
          return false;
        }
        this.inSection = true;
        this.interfaces = [];
        state.summary.sections++;
        return true;
      }
      case BLOCK.INTERFACE_DESCRIPTION: {
        if (this.tooShort(offset, type, length, 20)) return false;
        const linkType = view.getUint16(at + 8, le);
        const snaplen = view.getUint32(at + 12, le);
        let name: string | undefined;
        let tsresol = 6;
        let tsoffset = 0n;
        forEachOption(view, at + 16, at + length - 4, le, (code, valueAt, valueLength) => {
          if (code === OPT.IF_NAME) name = decodeText(w.bytes, valueAt, valueLength);
          else if (code === OPT.IF_TSRESOL && valueLength >= 1) tsresol = w.bytes[valueAt]!;
          else if (code === OPT.IF_TSOFFSET && valueLength >= 8) tsoffset = view.getBigInt64(valueAt, le);
        });
        const scale =
          tsresol === 6 && tsoffset === 0n ? MICROSECONDS : TimestampScale.fromTsresol(tsresol, tsoffset);
        this.interfaces.push({ iface: state.addInterface(name, linkType), scale, snaplen });
        return true;
      }
      case BLOCK.ENHANCED_PACKET:
      case BLOCK.OBSOLETE_PACKET: {
        if (this.tooShort(offset, type, length, 32)) return false;
        const enhanced = type === BLOCK.ENHANCED_PACKET;
        const interfaceId = enhanced ? view.getUint32(at + 8, le) : view.getUint16(at + 8, le);
        const known = this.interfaces[interfaceId];
        if (known === undefined) {
          state.fail(
            offset + 8,
            `packet refers to interface ${interfaceId}, but the section has ${this.interfaces.length}`,
          );
          return false;
        }
        const capLen = view.getUint32(at + 20, le);
        const origLen = view.getUint32(at + 24, le);
        if (capLen > length - 32) {
          state.fail(offset + 20, `packet says ${capLen} captured bytes but its block holds ${length - 32}`);
          return false;
        }
        const dir = packetDirection(view, at + 28 + pad4(capLen), at + length - 4, le);
        known.scale.convert(view.getUint32(at + 12, le), view.getUint32(at + 16, le), state.ts);
        state.addFrame(known.iface, w.bytes, at + 28, at + 28 + capLen, origLen, dir);
        return true;
      }
      case BLOCK.SIMPLE_PACKET: {
        if (this.tooShort(offset, type, length, 16)) return false;
        const known = this.interfaces[0];
        if (known === undefined) {
          state.fail(offset, 'simple packet block before any interface description block');
          return false;
        }
        const origLen = view.getUint32(at + 8, le);
        let capLen = Math.min(origLen, length - 16);
        if (known.snaplen !== 0) capLen = Math.min(capLen, known.snaplen);
        // Simple packet blocks carry no timestamp.
        state.ts.hi = 0;
        state.ts.lo = 0;
        state.addFrame(known.iface, w.bytes, at + 12, at + 12 + capLen, origLen, Direction.Unknown);
        return true;
      }
      default:
        return true; // name resolution, statistics, decryption secrets, custom blocks: not ours
    }
  }
}

/** The direction in a packet block's epb_flags (or the obsolete pack_flags, same code and bits). */
export function packetDirection(view: DataView, at: number, end: number, le: boolean): number {
  while (at + 4 <= end) {
    const code = view.getUint16(at, le);
    const valueLength = view.getUint16(at + 2, le);
    if (code === OPT.END || at + 4 + valueLength > end) break;
    if (code === OPT.EPB_FLAGS && valueLength >= 4) {
      const bits = view.getUint32(at + 4, le) & 3;
      if (bits === EPB_FLAG_INBOUND) return Direction.In;
      if (bits === EPB_FLAG_OUTBOUND) return Direction.Out;
      break;
    }
    at += 4 + pad4(valueLength);
  }
  return Direction.Unknown;
}

/** Calls `visit` for each option in `[at, end)`; stops at opt_endofopt or an option that overruns the block. */
function forEachOption(
  view: DataView,
  at: number,
  end: number,
  le: boolean,
  visit: (code: number, valueAt: number, valueLength: number) => void,
): void {
  while (at + 4 <= end) {
    const code = view.getUint16(at, le);
    const valueLength = view.getUint16(at + 2, le);
    if (code === OPT.END || at + 4 + valueLength > end) return;
    visit(code, at + 4, valueLength);
    at += 4 + pad4(valueLength);
  }
}

const utf8 = new TextDecoder('utf-8');

function decodeText(bytes: Uint8Array, at: number, length: number): string {
  // Some writers include the C string's terminating NUL in the option length.
  let end = at + length;
  while (end > at && bytes[end - 1] === 0) end--;
  return utf8.decode(bytes.subarray(at, end));
}
