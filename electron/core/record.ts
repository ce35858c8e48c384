/**
 * The record format every source emits (kernel rings, AF_PACKET, capture files), decoded with DataView.
 * Layout: kernel/include/uapi/linux/icmpcap.h, `struct icmpcap_record`: a 72-byte header followed by
 * `capLen` bytes of the packet from the IP header on; records start on 8-byte boundaries.
 * A batch from the native addon is an ArrayBuffer of whole records back to back.
 */
import { formatAddress } from '../common/address.js';

export { formatAddress, formatIpv6 } from '../common/address.js';

export const RECORD_HEADER_SIZE = 72;
export const RECORD_ALIGN = 8;

export const REC_F_PAD = 0x0001;
export const REC_F_TRUNCATED = 0x0002;
export const REC_F_HAS_ECHO = 0x0004;
/** The IP packet is a fragment (IPv4 MF or offset, or an IPv6 Fragment header); a first one decodes as usual. */
export const REC_F_FRAGMENT = 0x0008;
/** A non-first fragment: no ICMP header in it; type, code, id and seq are 0 and mean nothing. */
export const REC_F_NOT_FIRST = 0x0010;
/** The packet ends (on the wire, not at the snap length) before a whole 8-byte ICMP header. */
export const REC_F_SHORT = 0x0020;
/** `pid` holds the sending process's thread-group id. */
export const REC_F_HAS_PID = 0x0040;

export const Hook = {
  PreRouting: 0,
  LocalIn: 1,
  Forward: 2,
  LocalOut: 3,
  PostRouting: 4,
  None: 255,
} as const;
export type Hook = (typeof Hook)[keyof typeof Hook];

export const Direction = {
  In: 0,
  Out: 1,
  Forward: 2,
  Unknown: 3,
} as const;
export type Direction = (typeof Direction)[keyof typeof Direction];

export const OFF = {
  len: 0,
  flags: 4,
  hook: 6,
  dir: 7,
  tsNs: 8,
  ifindex: 16,
  origLen: 20,
  capLen: 24,
  family: 26,
  ttl: 27,
  type: 28,
  code: 29,
  id: 30,
  seq: 32,
  /** meaningful when flags has REC_F_HAS_PID */
  pid: 36,
  saddr: 40,
  daddr: 56,
  data: 72,
} as const;

export function alignRecord(len: number): number {
  return (len + (RECORD_ALIGN - 1)) & ~(RECORD_ALIGN - 1);
}

/** One record's header fields, decoded. Used off the hot path (details, exports, tests). */
export interface DecodedRecord {
  flags: number;
  hook: number;
  dir: number;
  tsNs: bigint;
  ifindex: number;
  origLen: number;
  capLen: number;
  family: 4 | 6;
  ttl: number;
  type: number;
  code: number;
  id: number;
  seq: number;
  hasEcho: boolean;
  src: string;
  dst: string;
  /** The captured bytes, from the IP header on (a view into the batch, not a copy). */
  data: Uint8Array;
}

export class RecordFormatError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`${message} at byte ${offset} of the batch`);
    this.name = 'RecordFormatError';
  }
}

/**
 * Walks the records of a batch, calling `visit(view, offset)` for each non-pad record.
 * Validates each length so a damaged batch ends in a RecordFormatError rather than garbage.
 */
export function forEachRecord(
  buffer: ArrayBuffer,
  visit: (view: DataView, offset: number) => void,
  byteOffset = 0,
  byteLength = buffer.byteLength - byteOffset,
): number {
  const view = new DataView(buffer, byteOffset, byteLength);
  let offset = 0;
  let count = 0;
  while (offset + 8 <= byteLength) {
    const len = view.getUint32(offset + OFF.len, true);
    const flags = view.getUint16(offset + OFF.flags, true);
    if (flags & REC_F_PAD) {
      if (len < 8 || offset + len > byteLength) throw new RecordFormatError(`bad pad length ${len}`, offset);
      offset += alignRecord(len);
      continue;
    }
    if (len < RECORD_HEADER_SIZE || offset + len > byteLength) {
      throw new RecordFormatError(`bad record length ${len}`, offset);
    }
    const capLen = view.getUint16(offset + OFF.capLen, true);
    if (RECORD_HEADER_SIZE + capLen !== len) {
      throw new RecordFormatError(`captured length ${capLen} does not match record length ${len}`, offset);
    }
    visit(view, offset);
    count++;
    offset += alignRecord(len);
  }
  return count;
}

/**
 * The bytes from `at` that hold the next `max` records of a batch (pad records in between included), and how many
 * records that is: a batch taken in slices (forEachRecord with that offset and length) visits the same records.
 * A malformed length ends the span at the batch's end, where forEachRecord reports it.
 */
export function recordSpan(view: DataView, at: number, max: number): { bytes: number; records: number } {
  const end = view.byteLength;
  let offset = at;
  let records = 0;
  while (records < max && offset + 8 <= end) {
    const len = view.getUint32(offset + OFF.len, true);
    if (len < 8 || offset + len > end) return { bytes: end - at, records: records + 1 };
    if (!(view.getUint16(offset + OFF.flags, true) & REC_F_PAD)) records++;
    offset += alignRecord(len);
  }
  return { bytes: Math.min(offset, end) - at, records };
}

/** Formats the address at `bytes[at, at + 16)` (IPv4 uses the first 4 bytes) as text. */
export type AddressText = (bytes: Uint8Array, at: number, family: 4 | 6) => string;

const addressText: AddressText = (bytes, at, family) => formatAddress(bytes.subarray(at, at + 16), family);

/** Decodes the record at `offset`; `address` formats its addresses (a caller may cache them). */
export function decodeRecord(view: DataView, offset: number, address = addressText): DecodedRecord {
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
    src: address(bytes, base + OFF.saddr, family),
    dst: address(bytes, base + OFF.daddr, family),
    data: bytes.subarray(base + OFF.data, base + OFF.data + capLen),
  };
}
