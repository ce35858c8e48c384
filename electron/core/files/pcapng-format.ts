/**
 * pcapng constants shared by the writers (export, spool) and the reader.
 * Reference: draft-ietf-opsawg-pcapng.
 */

export const BLOCK = {
  SECTION_HEADER: 0x0a0d0d0a,
  INTERFACE_DESCRIPTION: 0x00000001,
  OBSOLETE_PACKET: 0x00000002,
  SIMPLE_PACKET: 0x00000003,
  ENHANCED_PACKET: 0x00000006,
} as const;

export const BYTE_ORDER_MAGIC = 0x1a2b3c4d;

export const OPT = {
  END: 0,
  COMMENT: 1,
  SHB_HARDWARE: 2,
  SHB_OS: 3,
  SHB_USERAPPL: 4,
  IF_NAME: 2,
  IF_TSRESOL: 9,
  IF_TSOFFSET: 14,
  EPB_FLAGS: 2,
} as const;

/** epb_flags bits 0-1. */
export const EPB_FLAG_INBOUND = 1;
export const EPB_FLAG_OUTBOUND = 2;

/** A block (or packet) bigger than this is treated as corruption rather than allocated. */
export const MAX_BLOCK_SIZE = 16 * 1024 * 1024;

export function pad4(n: number): number {
  return (n + 3) & ~3;
}
