/** Classic pcap constants shared by the pcap writer and reader (draft-ietf-opsawg-pcap). */

export const PCAP_MAGIC_MICROSECONDS = 0xa1b2c3d4;
export const PCAP_MAGIC_NANOSECONDS = 0xa1b23c4d;
export const PCAP_FILE_HEADER_SIZE = 24;
export const PCAP_RECORD_HEADER_SIZE = 16;
/** Wireshark's limit for one packet; a larger length in a pcap record header means the file is damaged. */
export const PCAP_MAX_PACKET = 262144;
