/**
 * Value lists of the contract that the renderer needs at run time. They live apart from contract.ts so
 * the page can import them without pulling in zod (whose code generation the page's CSP forbids).
 */

export const SORT_COLUMNS = [
  'no',
  'time',
  'dir',
  'iface',
  'src',
  'dst',
  'type',
  'code',
  'id',
  'seq',
  'ttl',
  'len',
  'rtt',
] as const;
export type SortColumn = (typeof SORT_COLUMNS)[number];

export const EXPORT_FORMATS = ['pcapng', 'pcap', 'csv', 'ndjson'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];
