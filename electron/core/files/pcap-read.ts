/** Classic pcap reader: microsecond and nanosecond magic, either byte order. */
import { Direction } from '../record.js';
import { MAX_BLOCK_SIZE } from './pcapng-format.js';
import {
  PCAP_FILE_HEADER_SIZE,
  PCAP_MAGIC_MICROSECONDS,
  PCAP_MAGIC_NANOSECONDS,
  PCAP_MAX_PACKET,
  PCAP_RECORD_HEADER_SIZE,
} from './pcap-format.js';
import type { FileInterface, FormatParser, ParseWindow, ReaderState } from './read-state.js';
import { pcapTimestamp } from './timestamp.js';

export function isPcapMagic(view: DataView, at: number): boolean {
  const le = view.getUint32(at, true);
  const be = view.getUint32(at, false);
  return [le, be].some((m) => m === PCAP_MAGIC_MICROSECONDS || m === PCAP_MAGIC_NANOSECONDS);
}

export class PcapParser implements FormatParser {
  private le = true;
  private fractionToNs = 1000;
  private maxPacket = PCAP_MAX_PACKET;
  private iface: FileInterface | null = null;

  constructor(private readonly state: ReaderState) {
    state.summary.format = 'pcap';
  }

  parse(w: ParseWindow, pos: number): number {
    const state = this.state;
    const { view, bytes, end } = w;
    if (this.iface === null) {
      if (!state.has(w, pos, PCAP_FILE_HEADER_SIZE, 'pcap file header')) return pos;
      const magic = view.getUint32(pos, true);
      this.le = magic === PCAP_MAGIC_MICROSECONDS || magic === PCAP_MAGIC_NANOSECONDS;
      const ordered = view.getUint32(pos, this.le);
      this.fractionToNs = ordered === PCAP_MAGIC_NANOSECONDS ? 1 : 1000;
      const snaplen = view.getUint32(pos + 16, this.le);
      // Some writers put snaplen above the usual limit; honour it, but never beyond what we would allocate.
      this.maxPacket = Math.min(Math.max(PCAP_MAX_PACKET, snaplen), MAX_BLOCK_SIZE);
      const linkType = view.getUint32(pos + 20, this.le) & 0xffff; // upper bits: FCS length
      state.summary.sections = 1;
      this.iface = state.addInterface(undefined, linkType);
      pos += PCAP_FILE_HEADER_SIZE;
    }
    const iface = this.iface;
    const le = this.le;
    while (!state.stopped) {
      if (pos === end && w.base + pos === w.fileSize) return pos;
      if (!state.has(w, pos, PCAP_RECORD_HEADER_SIZE, 'packet record header')) return pos;
      const capLen = view.getUint32(pos + 8, le);
      const origLen = view.getUint32(pos + 12, le);
      if (capLen > this.maxPacket) {
        state.fail(
          w.base + pos,
          `packet record says ${capLen} captured bytes, more than the ${this.maxPacket} allowed: the file is damaged`,
        );
        return pos;
      }
      if (!state.has(w, pos, PCAP_RECORD_HEADER_SIZE + capLen, 'packet')) return pos;
      pcapTimestamp(view.getUint32(pos, le), view.getUint32(pos + 4, le), this.fractionToNs, state.ts);
      const data = pos + PCAP_RECORD_HEADER_SIZE;
      state.addFrame(iface, bytes, data, data + capLen, origLen, Direction.Unknown);
      pos = data + capLen;
    }
    return pos;
  }
}
