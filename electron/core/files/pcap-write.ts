/** Classic pcap writer: nanosecond magic, LINKTYPE_RAW, so records keep their exact timestamps. */
import { PCAP_FILE_HEADER_SIZE, PCAP_MAGIC_NANOSECONDS, PCAP_RECORD_HEADER_SIZE } from './pcap-format.js';

export function pcapFileHeader(linkType: number, snaplen: number, littleEndian = true): Uint8Array {
  const header = new Uint8Array(PCAP_FILE_HEADER_SIZE);
  const view = new DataView(header.buffer);
  view.setUint32(0, PCAP_MAGIC_NANOSECONDS, littleEndian);
  view.setUint16(4, 2, littleEndian); // version 2.4
  view.setUint16(6, 4, littleEndian);
  view.setInt32(8, 0, littleEndian); // thiszone: timestamps are UTC
  view.setUint32(12, 0, littleEndian); // sigfigs
  view.setUint32(16, snaplen, littleEndian);
  view.setUint32(20, linkType, littleEndian);
  return header;
}

/** Writes one packet record (header + bytes) at `at`; returns the offset after it. */
export function writePcapRecord(
  view: DataView,
  bytes: Uint8Array,
  at: number,
  seconds: number,
  nanoseconds: number,
  packet: Uint8Array,
  origLen: number,
  littleEndian = true,
): number {
  view.setUint32(at, seconds, littleEndian);
  view.setUint32(at + 4, nanoseconds, littleEndian);
  view.setUint32(at + 8, packet.length, littleEndian);
  view.setUint32(at + 12, origLen, littleEndian);
  bytes.set(packet, at + PCAP_RECORD_HEADER_SIZE);
  return at + PCAP_RECORD_HEADER_SIZE + packet.length;
}

export function pcapRecordSize(capLen: number): number {
  return PCAP_RECORD_HEADER_SIZE + capLen;
}
