/**
 * pcapng block writers shared by the exporter and the capture spool. All blocks are written in one byte
 * order per section (little-endian by default; big-endian exists so tests can prove the reader handles both).
 */
import type { RowProcess } from '../../common/contract.js';
import { Direction } from '../record.js';
import { BLOCK, BYTE_ORDER_MAGIC, EPB_FLAG_INBOUND, EPB_FLAG_OUTBOUND, OPT, pad4 } from './pcapng-format.js';

export const LINKTYPE_RAW = 101;
/** if_tsresol 9: timestamps count nanoseconds, so records keep their full precision. */
const TSRESOL_NANOSECONDS = 9;

interface Option {
  code: number;
  value: Uint8Array;
}

const encoder = new TextEncoder();

function textOption(code: number, text: string): Option {
  return { code, value: encoder.encode(text) };
}

function optionsSize(options: Option[]): number {
  if (options.length === 0) return 0;
  return options.reduce((sum, o) => sum + 4 + pad4(o.value.length), 0) + 4;
}

function writeOptions(view: DataView, at: number, options: Option[], le: boolean): number {
  if (options.length === 0) return at;
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  for (const option of options) {
    view.setUint16(at, option.code, le);
    view.setUint16(at + 2, option.value.length, le);
    bytes.set(option.value, at + 4);
    bytes.fill(0, at + 4 + option.value.length, at + 4 + pad4(option.value.length));
    at += 4 + pad4(option.value.length);
  }
  view.setUint32(at, OPT.END, le); // opt_endofopt: code 0, length 0
  return at + 4;
}

/** A whole block: type, total length, `body` then options, total length again. */
function block(
  type: number,
  bodySize: number,
  options: Option[],
  le: boolean,
  fillBody: (v: DataView) => void,
) {
  const total = 12 + bodySize + optionsSize(options);
  const buffer = new Uint8Array(total);
  const view = new DataView(buffer.buffer);
  view.setUint32(0, type, le);
  view.setUint32(4, total, le);
  fillBody(new DataView(buffer.buffer, 8, bodySize));
  writeOptions(view, 8 + bodySize, options, le);
  view.setUint32(total - 4, total, le);
  return buffer;
}

export interface SectionHeaderOptions {
  /** shb_userappl, e.g. `icmpcap 0.1.0`. */
  application: string;
  /** shb_os; defaults to the running kernel (`Linux 6.1.0-...`). */
  os?: string;
  hardware?: string;
  littleEndian?: boolean;
}

export function sectionHeaderBlock(opts: SectionHeaderOptions): Uint8Array {
  const le = opts.littleEndian ?? true;
  const options = [textOption(OPT.SHB_USERAPPL, opts.application)];
  if (opts.os) options.push(textOption(OPT.SHB_OS, opts.os));
  if (opts.hardware) options.push(textOption(OPT.SHB_HARDWARE, opts.hardware));
  return block(BLOCK.SECTION_HEADER, 16, options, le, (body) => {
    body.setUint32(0, BYTE_ORDER_MAGIC, le);
    body.setUint16(4, 1, le); // version 1.0
    body.setUint16(6, 0, le);
    body.setBigInt64(8, -1n, le); // section length not specified: we stream
  });
}

export interface InterfaceOptions {
  name: string;
  linkType?: number;
  snaplen?: number;
  littleEndian?: boolean;
}

export function interfaceDescriptionBlock(opts: InterfaceOptions): Uint8Array {
  const le = opts.littleEndian ?? true;
  const options = [
    textOption(OPT.IF_NAME, opts.name),
    { code: OPT.IF_TSRESOL, value: Uint8Array.of(TSRESOL_NANOSECONDS) },
  ];
  return block(BLOCK.INTERFACE_DESCRIPTION, 8, options, le, (body) => {
    body.setUint16(0, opts.linkType ?? LINKTYPE_RAW, le);
    body.setUint16(2, 0, le);
    body.setUint32(4, opts.snaplen ?? 0, le);
  });
}

/** epb_flags for a record direction; 0 (no option written) when the direction is not in or out. */
export function directionFlags(dir: number): number {
  if (dir === Direction.In) return EPB_FLAG_INBOUND;
  if (dir === Direction.Out) return EPB_FLAG_OUTBOUND;
  return 0;
}

/** Bytes an Enhanced Packet Block takes for `capLen` packet bytes. */
export function enhancedPacketBlockSize(
  capLen: number,
  flags: number,
  comments: readonly Uint8Array[] = NO_COMMENTS,
): number {
  let options = flags !== 0 ? 8 : 0;
  for (const c of comments) options += 4 + pad4(c.length);
  return 28 + pad4(capLen) + (options !== 0 ? options + 4 : 0) + 4;
}

const NO_COMMENTS: readonly Uint8Array[] = [];

/** Packets up to this many bytes are copied in a loop, not through a subarray (see writeEnhancedPacketBlock). */
const SMALL_COPY = 256;

/** A DataView of the last source given (a spool batch: one view for all of its records). */
let lastSource: Uint8Array | null = null;
let lastSourceView: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));
function dataViewOf(bytes: Uint8Array): DataView<ArrayBufferLike> {
  if (bytes !== lastSource) {
    lastSource = bytes;
    lastSourceView = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  return lastSourceView;
}

/**
 * Writes an Enhanced Packet Block at `at` (hot path: no allocation). `packet[start, start + capLen)` are the
 * captured bytes; the timestamp comes in 32-bit halves of nanoseconds. Returns the offset after the block.
 */
export function writeEnhancedPacketBlock(
  view: DataView,
  bytes: Uint8Array,
  at: number,
  interfaceId: number,
  tsHi: number,
  tsLo: number,
  packet: Uint8Array,
  start: number,
  capLen: number,
  origLen: number,
  flags: number,
  le = true,
  comments: readonly Uint8Array[] = NO_COMMENTS,
): number {
  const total = enhancedPacketBlockSize(capLen, flags, comments);
  view.setUint32(at, BLOCK.ENHANCED_PACKET, le);
  view.setUint32(at + 4, total, le);
  view.setUint32(at + 8, interfaceId, le);
  view.setUint32(at + 12, tsHi, le);
  view.setUint32(at + 16, tsLo, le);
  view.setUint32(at + 20, capLen, le);
  view.setUint32(at + 24, origLen, le);
  // Exports pass each record's own data view whole: no subarray to allocate then. The spool passes a whole
  // batch: a subarray per record was 100 of the ~160 bytes of garbage the capture made per record (a scavenge
  // every 100 ms at 700 k records/s), so packets of ordinary size are copied four bytes at a time instead
  // (41 ns for 64 bytes, 65 ns for 100, against 85-95 ns for subarray and set, its garbage not counted).
  if (start === 0 && capLen === packet.length) bytes.set(packet, at + 28);
  else if (capLen > SMALL_COPY) bytes.set(packet.subarray(start, start + capLen), at + 28);
  else {
    const from = dataViewOf(packet);
    const o = at + 28;
    let k = 0;
    for (; k + 4 <= capLen; k += 4) view.setUint32(o + k, from.getUint32(start + k));
    for (; k < capLen; k++) bytes[o + k] = packet[start + k]!;
  }
  let p = at + 28 + capLen;
  const padded = at + 28 + pad4(capLen);
  while (p < padded) bytes[p++] = 0;
  for (const c of comments) {
    // opt_comment (UTF-8), one per line of what is known, as ptcpdump writes them.
    view.setUint16(p, OPT.COMMENT, le);
    view.setUint16(p + 2, c.length, le);
    bytes.set(c, p + 4);
    p += 4 + c.length;
    const end = p + ((4 - (c.length & 3)) & 3);
    while (p < end) bytes[p++] = 0;
  }
  if (flags !== 0) {
    view.setUint16(p, OPT.EPB_FLAGS, le);
    view.setUint16(p + 2, 4, le);
    view.setUint32(p + 4, flags, le);
    p += 8;
  }
  if (flags !== 0 || comments.length > 0) {
    view.setUint32(p, OPT.END, le);
    p += 4;
  }
  view.setUint32(p, total, le);
  return p + 4;
}

const commentEncoder = new TextEncoder();
/** Comment texts by process, so a long capture of one ping encodes its comments once. */
const commentCache = new WeakMap<RowProcess, readonly Uint8Array[]>();

/** ptcpdump's EPB comments for a process: `PID: 1234` and `Cmd: ping` (what is known of it). */
export function processComments(proc: RowProcess | undefined): readonly Uint8Array[] {
  if (!proc) return NO_COMMENTS;
  let comments = commentCache.get(proc);
  if (comments === undefined) {
    const texts: string[] = [];
    if (proc.pid !== null) texts.push(`PID: ${proc.pid}`);
    if (proc.name !== null) texts.push(`Cmd: ${proc.name}`);
    if (proc.uid !== null) texts.push(`UID: ${proc.uid}`);
    if (proc.cgroup !== null) texts.push(`Cgroup: ${proc.cgroup}`);
    comments = texts.map((t) => commentEncoder.encode(t));
    commentCache.set(proc, comments);
  }
  return comments;
}

/** Comment options by process, encoded once. */
const commentOptionCache = new WeakMap<RowProcess, Uint8Array>();

/**
 * The opt_comment options of `processComments(proc)` as `writeEnhancedPacketBlock` writes them (little-endian,
 * each padded to 4 bytes; no end marker): what a copied block gets inserted before its direction option.
 */
export function processCommentOptions(proc: RowProcess): Uint8Array {
  let bytes = commentOptionCache.get(proc);
  if (bytes === undefined) {
    const comments = processComments(proc);
    bytes = new Uint8Array(comments.reduce((n, c) => n + 4 + pad4(c.length), 0));
    const view = new DataView(bytes.buffer);
    let p = 0;
    for (const c of comments) {
      view.setUint16(p, OPT.COMMENT, true);
      view.setUint16(p + 2, c.length, true);
      bytes.set(c, p + 4);
      p += 4 + pad4(c.length);
    }
    commentOptionCache.set(proc, bytes);
  }
  return bytes;
}
