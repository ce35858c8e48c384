/**
 * The capture service's spool: every record goes to a pcapng file on disk as it arrives (as dumpcap does), so
 * a crash loses nothing already written, and details/hex views read single packets back by file offset.
 */
import fs from 'node:fs';
import {
  alignRecord,
  decodeRecord,
  Direction,
  OFF,
  RECORD_HEADER_SIZE,
  REC_F_PAD,
  type DecodedRecord,
} from '../record.js';
import { encodeRecordInto, MAX_RECORD_DATA } from './packet.js';
import { BLOCK, MAX_BLOCK_SIZE } from './pcapng-format.js';
import {
  directionFlags,
  enhancedPacketBlockSize,
  interfaceDescriptionBlock,
  sectionHeaderBlock,
  writeEnhancedPacketBlock,
} from './pcapng-write.js';
import { defaultOsName } from './system.js';

export interface SpoolOptions {
  /** shb_userappl, e.g. `icmpcap 0.1.0`. */
  application: string;
  /** Snap length written in each interface block (0 = none). */
  snaplen?: number;
}

export class PcapngSpoolWriter {
  private readonly interfaceIds = new Map<number, number>();
  private interfaceCount = 0;
  private scratch = new Uint8Array(1 << 20);
  private scratchView = new DataView(this.scratch.buffer);
  private position = 0;
  private closed = false;

  private constructor(
    private readonly fd: number,
    readonly path: string,
    private readonly snaplen: number,
  ) {}

  /** Creates (or truncates) the spool file and writes its Section Header Block. */
  static create(path: string, opts: SpoolOptions): PcapngSpoolWriter {
    let fd: number;
    try {
      fd = fs.openSync(path, 'w', 0o600);
    } catch (err) {
      throw new Error(
        `Cannot create the capture spool ${path}: ${(err as Error).message}. ` +
          'Choose a spool directory you can write to with free space.',
        { cause: err },
      );
    }
    const writer = new PcapngSpoolWriter(fd, path, opts.snaplen ?? 0);
    writer.writeBytes(sectionHeaderBlock({ application: opts.application, os: defaultOsName() }));
    return writer;
  }

  /** Bytes written so far; also the offset the next block will have. */
  get size(): number {
    return this.position;
  }

  /** The file's interface id for `ifindex`, writing its Interface Description Block the first time. */
  interfaceId(ifindex: number, name: string): number {
    const known = this.interfaceIds.get(ifindex);
    if (known !== undefined) return known;
    const id = this.interfaceCount++;
    this.interfaceIds.set(ifindex, id);
    this.writeBytes(interfaceDescriptionBlock({ name, snaplen: this.snaplen }));
    return id;
  }

  /**
   * Writes one Enhanced Packet Block per record of `batch[byteOffset, byteOffset + byteLength)` with a single
   * synchronous write, and stores each block's file offset in `offsetsOut[offsetsOutStart + i]`.
   * Records of an interface not announced with `interfaceId` get an interface named `if<index>`.
   * Returns the number of records written.
   */
  append(
    batch: ArrayBuffer,
    byteOffset: number,
    byteLength: number,
    offsetsOut?: Float64Array,
    offsetsOutStart = 0,
  ): number {
    if (this.closed) throw new Error(`The capture spool ${this.path} is closed`);
    const src = new Uint8Array(batch, byteOffset, byteLength);
    const srcView = new DataView(batch, byteOffset, byteLength);
    // An EPB (at most 44 bytes of framing) is never larger than the 72-byte-header record it comes from, so
    // the scratch buffer is sized once per batch instead of checked per record; IDBs on the way are checked.
    this.ensureScratch(byteLength + 4096);
    let out = 0;
    let count = 0;
    let lastIfindex = -1;
    let lastId = 0;
    for (let at = 0; at + 8 <= byteLength;) {
      const len = srcView.getUint32(at + OFF.len, true);
      const flags = srcView.getUint16(at + OFF.flags, true);
      if (len < 8 || at + len > byteLength)
        throw new Error(`bad record length ${len} at byte ${at} of the batch`);
      if (flags & REC_F_PAD) {
        at += alignRecord(len);
        continue;
      }
      const ifindex = srcView.getUint32(at + OFF.ifindex, true);
      if (ifindex !== lastIfindex) {
        let id = this.interfaceIds.get(ifindex);
        if (id === undefined) {
          id = this.interfaceCount++;
          this.interfaceIds.set(ifindex, id);
          const idb = interfaceDescriptionBlock({ name: `if${ifindex}`, snaplen: this.snaplen });
          this.ensureScratch(out + idb.length + (byteLength - at) + 4096);
          this.scratch.set(idb, out);
          out += idb.length;
        }
        lastIfindex = ifindex;
        lastId = id;
      }
      const capLen = srcView.getUint16(at + OFF.capLen, true);
      if (RECORD_HEADER_SIZE + capLen !== len) {
        throw new Error(`captured length ${capLen} does not match record length ${len} at byte ${at}`);
      }
      if (offsetsOut) offsetsOut[offsetsOutStart + count] = this.position + out;
      out = writeEnhancedPacketBlock(
        this.scratchView,
        this.scratch,
        out,
        lastId,
        srcView.getUint32(at + OFF.tsNs + 4, true),
        srcView.getUint32(at + OFF.tsNs, true),
        src,
        at + OFF.data,
        capLen,
        srcView.getUint32(at + OFF.origLen, true),
        directionFlags(src[at + OFF.dir]!),
      );
      count++;
      at += alignRecord(len);
    }
    this.writeBytes(this.scratch.subarray(0, out));
    return count;
  }

  /** Forces written blocks to the disk (the page cache already survives a crash of this process). */
  flush(): void {
    if (!this.closed) fs.fdatasyncSync(this.fd);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
  }

  private ensureScratch(size: number): void {
    if (this.scratch.length >= size) return;
    const grown = new Uint8Array(Math.max(size, this.scratch.length * 2));
    grown.set(this.scratch);
    this.scratch = grown;
    this.scratchView = new DataView(grown.buffer);
  }

  private writeBytes(bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.length) {
      done += fs.writeSync(this.fd, bytes, done, bytes.length - done, this.position + done);
    }
    this.position += bytes.length;
  }
}

/**
 * Reads the Enhanced Packet Block at `offset` of a spool written by PcapngSpoolWriter and returns it as a
 * record (ifindex = the file's interface id). Throws when there is no such block at that offset.
 */
export function readSpoolRecord(fd: number, offset: number): DecodedRecord & { ifaceId: number } {
  const head = Buffer.alloc(28);
  readExactly(fd, head, offset);
  const type = head.readUInt32LE(0);
  const total = head.readUInt32LE(4);
  if (type !== BLOCK.ENHANCED_PACKET || total < 32 || total > MAX_BLOCK_SIZE) {
    throw new Error(`No packet block at byte ${offset} of the spool (type ${type}, length ${total})`);
  }
  const block = Buffer.alloc(total);
  readExactly(fd, block, offset);
  const ifaceId = block.readUInt32LE(8);
  const capLen = block.readUInt32LE(20);
  const origLen = block.readUInt32LE(24);
  if (28 + capLen + 4 > total) throw new Error(`Packet block at byte ${offset} of the spool is damaged`);
  let dir: number = Direction.Unknown;
  const optionsAt = 28 + ((capLen + 3) & ~3);
  if (optionsAt + 12 <= total - 4 && block.readUInt16LE(optionsAt) === 2) {
    const flags = block.readUInt32LE(optionsAt + 4) & 3;
    dir = flags === 1 ? Direction.In : flags === 2 ? Direction.Out : Direction.Unknown;
  }
  const out = new Uint8Array(alignRecord(RECORD_HEADER_SIZE + Math.min(capLen, MAX_RECORD_DATA)));
  const view = new DataView(out.buffer);
  const tsHi = block.readUInt32LE(12);
  const tsLo = block.readUInt32LE(16);
  const size = encodeRecordInto(block, 28, 28 + capLen, origLen, tsHi, tsLo, ifaceId, dir, view, out, 0);
  if (size === null) throw new Error(`The packet at byte ${offset} of the spool is not ICMP`);
  return { ...decodeRecord(view, 0), ifaceId };
}

function readExactly(fd: number, into: Buffer, position: number): void {
  let done = 0;
  while (done < into.length) {
    const n = fs.readSync(fd, into, done, into.length - done, position + done);
    if (n === 0) throw new Error(`The spool ends before byte ${position + into.length}`);
    done += n;
  }
}
