/**
 * Test support: writes pcap and pcapng files the way other tools may (either byte order, any link type,
 * any timestamp resolution, simple and obsolete packet blocks, blocks we do not know), so the reader can be
 * checked against tshark on all of them.
 */
import { BLOCK, BYTE_ORDER_MAGIC, pad4 } from '../pcapng-format.js';
import { pcapFileHeader } from '../pcap-write.js';
import { PCAP_MAGIC_MICROSECONDS } from '../pcap-format.js';

class Bytes {
  private chunks: Uint8Array[] = [];

  push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
  }

  concat(): Uint8Array {
    const out = new Uint8Array(this.chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

export interface PcapPacket {
  tsNs: bigint;
  frame: Uint8Array;
  origLen?: number;
}

/** A classic pcap file; `nano` picks the nanosecond magic, otherwise timestamps are cut to microseconds. */
export function pcapFile(linkType: number, packets: PcapPacket[], le = true, nano = true, snaplen = 262144) {
  const out = new Bytes();
  const header = pcapFileHeader(linkType, snaplen, le);
  if (!nano) new DataView(header.buffer).setUint32(0, PCAP_MAGIC_MICROSECONDS, le);
  out.push(header);
  for (const p of packets) {
    const record = new Uint8Array(16 + p.frame.length);
    const view = new DataView(record.buffer);
    const seconds = p.tsNs / 1_000_000_000n;
    const fraction = p.tsNs % 1_000_000_000n;
    view.setUint32(0, Number(seconds), le);
    view.setUint32(4, Number(nano ? fraction : fraction / 1000n), le);
    view.setUint32(8, p.frame.length, le);
    view.setUint32(12, p.origLen ?? p.frame.length, le);
    record.set(p.frame, 16);
    out.push(record);
  }
  return out.concat();
}

export interface IdbOptions {
  name?: string;
  /** Raw if_tsresol byte. */
  tsresol?: number;
  tsoffset?: bigint;
  snaplen?: number;
}

export class PcapngBuilder {
  private readonly out = new Bytes();
  private le = true;

  /** A raw block: type, body (padded to 4), lengths. */
  block(type: number, body: Uint8Array): this {
    const total = 12 + pad4(body.length);
    const bytes = new Uint8Array(total);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, type, this.le);
    view.setUint32(4, total, this.le);
    bytes.set(body, 8);
    view.setUint32(total - 4, total, this.le);
    this.out.push(bytes);
    return this;
  }

  section(le: boolean): this {
    this.le = le;
    const body = new Uint8Array(16);
    const view = new DataView(body.buffer);
    view.setUint32(0, BYTE_ORDER_MAGIC, le);
    view.setUint16(4, 1, le);
    view.setBigInt64(8, -1n, le);
    return this.block(BLOCK.SECTION_HEADER, body);
  }

  interface(linkType: number, o: IdbOptions = {}): this {
    const options: [number, Uint8Array][] = [];
    if (o.name !== undefined) options.push([2, new TextEncoder().encode(o.name)]);
    if (o.tsresol !== undefined) options.push([9, Uint8Array.of(o.tsresol)]);
    if (o.tsoffset !== undefined) {
      const value = new Uint8Array(8);
      new DataView(value.buffer).setBigInt64(0, o.tsoffset, this.le);
      options.push([14, value]);
    }
    const body = new Uint8Array(8);
    const view = new DataView(body.buffer);
    view.setUint16(0, linkType, this.le);
    view.setUint32(4, o.snaplen ?? 0, this.le);
    return this.block(BLOCK.INTERFACE_DESCRIPTION, concat(body, this.options(options)));
  }

  enhanced(
    interfaceId: number,
    tsUnits: bigint,
    frame: Uint8Array,
    origLen = frame.length,
    flags?: number,
  ): this {
    const head = new Uint8Array(20);
    const view = new DataView(head.buffer);
    view.setUint32(0, interfaceId, this.le);
    view.setUint32(4, Number(tsUnits >> 32n), this.le);
    view.setUint32(8, Number(tsUnits & 0xffffffffn), this.le);
    view.setUint32(12, frame.length, this.le);
    view.setUint32(16, origLen, this.le);
    const options = flags === undefined ? new Uint8Array(0) : this.options([[2, this.u32(flags)]]);
    return this.block(BLOCK.ENHANCED_PACKET, concat(head, padded(frame), options));
  }

  obsolete(interfaceId: number, tsUnits: bigint, frame: Uint8Array, flags?: number): this {
    const head = new Uint8Array(20);
    const view = new DataView(head.buffer);
    view.setUint16(0, interfaceId, this.le);
    view.setUint32(4, Number(tsUnits >> 32n), this.le);
    view.setUint32(8, Number(tsUnits & 0xffffffffn), this.le);
    view.setUint32(12, frame.length, this.le);
    view.setUint32(16, frame.length, this.le);
    const options = flags === undefined ? new Uint8Array(0) : this.options([[2, this.u32(flags)]]);
    return this.block(BLOCK.OBSOLETE_PACKET, concat(head, padded(frame), options));
  }

  simple(frame: Uint8Array, origLen = frame.length): this {
    return this.block(BLOCK.SIMPLE_PACKET, concat(this.u32(origLen), padded(frame)));
  }

  bytes(): Uint8Array {
    return this.out.concat();
  }

  private u32(value: number): Uint8Array {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setUint32(0, value, this.le);
    return bytes;
  }

  private options(options: [number, Uint8Array][]): Uint8Array {
    const parts: Uint8Array[] = [];
    for (const [code, value] of options) {
      const head = new Uint8Array(4);
      const view = new DataView(head.buffer);
      view.setUint16(0, code, this.le);
      view.setUint16(2, value.length, this.le);
      parts.push(head, padded(value));
    }
    parts.push(new Uint8Array(4)); // opt_endofopt
    return concat(...parts);
  }
}

function padded(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(pad4(bytes.length));
  out.set(bytes);
  return out;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Link-layer headers for wrapping IP packets. */
export const link = {
  ethernet(ip: Uint8Array, vlanTags: number[] = []): Uint8Array {
    const head = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    for (const tpid of vlanTags) head.push(tpid >> 8, tpid & 0xff, 0x00, 0x2a);
    const ethertype = ip[0]! >> 4 === 6 ? 0x86dd : 0x0800;
    return concat(Uint8Array.from([...head, ethertype >> 8, ethertype & 0xff]), ip);
  },
  null(ip: Uint8Array, af: number, le: boolean): Uint8Array {
    const head = new Uint8Array(4);
    new DataView(head.buffer).setUint32(0, af, le);
    return concat(head, ip);
  },
  sll(ip: Uint8Array, packetType: number): Uint8Array {
    const head = new Uint8Array(16);
    const view = new DataView(head.buffer);
    view.setUint16(0, packetType);
    view.setUint16(2, 1); // ARPHRD_ETHER
    view.setUint16(4, 6);
    view.setUint16(14, ip[0]! >> 4 === 6 ? 0x86dd : 0x0800);
    return concat(head, ip);
  },
};
