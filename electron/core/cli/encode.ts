/**
 * Turns captured rows into the bytes of a capture file as they arrive, with the block and line writers the
 * exporter uses (../files): pcapng (a Section Header, an Interface Description per interface as it first
 * appears, Enhanced Packet Blocks), pcap (nanosecond magic, raw IP), CSV and NDJSON. One encoder per file:
 * a new file after a switch (-b) starts with its own header.
 */
import type { ExportFormat, ExportRow } from '../files/index.js';
import { pcapFileHeader, pcapRecordSize, writePcapRecord } from '../files/pcap-write.js';
import {
  directionFlags,
  processComments,
  enhancedPacketBlockSize,
  interfaceDescriptionBlock,
  LINKTYPE_RAW,
  sectionHeaderBlock,
  writeEnhancedPacketBlock,
} from '../files/pcapng-write.js';
import { defaultOsName } from '../files/system.js';
import { csvHeader, csvLine, ndjsonLine } from '../files/text-write.js';

/** A growing byte buffer that encoders append to; the writer empties it into the file. */
export class ByteChunk {
  buf = Buffer.allocUnsafe(1 << 16);
  view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  pos = 0;

  reserve(size: number): void {
    if (this.pos + size <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + size));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
    this.view = new DataView(grown.buffer, grown.byteOffset, grown.byteLength);
  }

  bytes(data: Uint8Array): void {
    this.reserve(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }

  text(text: string): void {
    this.reserve(text.length * 3);
    this.pos += this.buf.write(text, this.pos, 'utf8');
  }

  take(): Buffer {
    const out = Buffer.from(this.buf.subarray(0, this.pos));
    this.pos = 0;
    return out;
  }
}

export interface RowEncoder {
  header(out: ByteChunk): void;
  row(row: ExportRow, out: ByteChunk): void;
}

export interface EncoderOptions {
  application: string;
  /** Snapshot length recorded in the file header (pcap) or interface descriptions (pcapng). */
  snaplen: number;
}

export function createEncoder(format: ExportFormat, opts: EncoderOptions): RowEncoder {
  switch (format) {
    case 'pcapng':
      return new PcapngEncoder(opts);
    case 'pcap':
      return new PcapEncoder(opts);
    case 'csv':
      return new TextEncoderRows(csvHeader(), csvLine);
    case 'ndjson':
      return new TextEncoderRows('', ndjsonLine);
  }
}

const split = new DataView(new ArrayBuffer(8));

class PcapngEncoder implements RowEncoder {
  private readonly ids = new Map<string, number>();

  constructor(private readonly opts: EncoderOptions) {}

  header(out: ByteChunk): void {
    out.bytes(sectionHeaderBlock({ application: this.opts.application, os: defaultOsName() }));
  }

  row(row: ExportRow, out: ByteChunk): void {
    const key = `${row.record.ifindex}\0${row.ifname}`;
    let id = this.ids.get(key);
    if (id === undefined) {
      id = this.ids.size;
      this.ids.set(key, id);
      out.bytes(
        interfaceDescriptionBlock({ name: row.ifname, linkType: LINKTYPE_RAW, snaplen: this.opts.snaplen }),
      );
    }
    const r = row.record;
    const flags = directionFlags(r.dir);
    const comments = processComments(row.proc);
    out.reserve(enhancedPacketBlockSize(r.data.length, flags, comments));
    split.setBigUint64(0, r.tsNs, true);
    out.pos = writeEnhancedPacketBlock(
      out.view,
      out.buf,
      out.pos,
      id,
      split.getUint32(4, true),
      split.getUint32(0, true),
      r.data,
      0,
      r.data.length,
      r.origLen,
      flags,
      true,
      comments,
    );
  }
}

class PcapEncoder implements RowEncoder {
  constructor(private readonly opts: EncoderOptions) {}

  header(out: ByteChunk): void {
    out.bytes(pcapFileHeader(LINKTYPE_RAW, this.opts.snaplen));
  }

  row(row: ExportRow, out: ByteChunk): void {
    const r = row.record;
    out.reserve(pcapRecordSize(r.data.length));
    const seconds = r.tsNs / 1_000_000_000n;
    out.pos = writePcapRecord(
      out.view,
      out.buf,
      out.pos,
      Number(seconds),
      Number(r.tsNs - seconds * 1_000_000_000n),
      r.data,
      r.origLen,
    );
  }
}

class TextEncoderRows implements RowEncoder {
  private firstTs: bigint | null = null;

  constructor(
    private readonly headerText: string,
    private readonly line: typeof csvLine,
  ) {}

  header(out: ByteChunk): void {
    out.text(this.headerText);
  }

  row(row: ExportRow, out: ByteChunk): void {
    this.firstTs ??= row.record.tsNs;
    out.text(
      this.line({
        no: row.no,
        record: row.record,
        ifname: row.ifname,
        rttMs: row.rttMs,
        relativeNs: row.relativeNs ?? row.record.tsNs - this.firstTs,
      }),
    );
  }
}
