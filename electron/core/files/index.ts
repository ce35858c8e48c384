/** Capture files: open pcap/pcapng as records, export records, and the capture service's pcapng spool. */
export { encodeRecord, MAX_RECORD_DATA, MAX_RECORD_SIZE, type RecordMeta } from './packet.js';
export {
  openCaptureFile,
  readCaptureBytes,
  readCaptureFileAll,
  type CaptureBatch,
  type CaptureFileContents,
  type CaptureFormat,
  type FileInterface,
  type FileSummary,
  type OpenCaptureOptions,
} from './read.js';
export {
  exportRecords,
  EXPORT_FORMATS,
  type ExportFormat,
  type ExportOptions,
  type ExportResult,
  type ExportRow,
} from './export.js';
export {
  PcapngSpoolWriter,
  readSpoolPacket,
  readSpoolRecord,
  SpoolReader,
  type SpoolOptions,
  type SpoolPacket,
  type SpoolRecord,
  type SpoolTail,
} from './spool.js';
export { LINKTYPE } from './linktypes.js';
export { ExportFileSink } from './file-sink.js';
export { interfaceDescriptionBlock, LINKTYPE_RAW, sectionHeaderBlock } from './pcapng-write.js';
export { defaultOsName } from './system.js';
