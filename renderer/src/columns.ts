/**
 * The packet table's columns: labels, default widths, how a cell reads, and which display-filter
 * expression a cell's value stands for (for "Filter: equal / not equal ..." on right-click).
 */
import type { Row, SortColumn } from '@common/contract';
import { typeKey } from '@common/icmp';
import { formatCode, formatType } from './format';

/** Every sortable column, Info (a summary the service writes) and Process (neither is sortable). */
export type ColumnId = SortColumn | 'info' | 'proc';

export interface ColumnDef {
  id: ColumnId;
  label: string;
  /** What a screen reader says for the header. */
  title: string;
  width: number;
  numeric?: boolean;
  /** False for columns the service cannot sort by. */
  sortable?: false;
}

export const COLUMNS: readonly ColumnDef[] = [
  { id: 'no', label: 'No.', title: 'Record number', width: 72, numeric: true },
  { id: 'time', label: 'Time', title: 'Time', width: 150 },
  { id: 'dir', label: 'Dir', title: 'Direction', width: 44 },
  { id: 'iface', label: 'Interface', title: 'Interface', width: 90 },
  { id: 'src', label: 'Source', title: 'Source address', width: 250 },
  { id: 'dst', label: 'Destination', title: 'Destination address', width: 250 },
  { id: 'type', label: 'Type', title: 'ICMP type', width: 215 },
  { id: 'info', label: 'Info', title: 'Summary, as Wireshark’s Info column', width: 460, sortable: false },
  { id: 'code', label: 'Code', title: 'ICMP code', width: 190 },
  { id: 'id', label: 'ID', title: 'Echo identifier', width: 62, numeric: true },
  { id: 'seq', label: 'Seq', title: 'Echo sequence number', width: 62, numeric: true },
  { id: 'ttl', label: 'TTL', title: 'TTL or hop limit', width: 48, numeric: true },
  { id: 'len', label: 'Len', title: 'Length in bytes', width: 54, numeric: true },
  { id: 'rtt', label: 'RTT ms', title: 'Round-trip time of replies, ms', width: 76, numeric: true },
  {
    id: 'proc',
    label: 'Process',
    title: 'Local process that sent it, or the request it answers (name and pid, or uid)',
    width: 150,
    sortable: false,
  },
];

/** `ping (4242)`; `uid 1000` when only the socket's owner is known. */
export function processText(row: Row): string {
  const p = row.proc;
  if (!p) return '';
  if (p.pid === null) return p.uid === null ? '' : `uid ${p.uid}`;
  return `${p.name ?? '?'} (${p.pid})`;
}

export const COLUMN_BY_ID = Object.fromEntries(COLUMNS.map((c) => [c.id, c])) as Record<ColumnId, ColumnDef>;

export function cellText(col: ColumnId, row: Row): string {
  switch (col) {
    case 'no':
      return String(row.no);
    case 'dir':
      return row.dir;
    case 'iface':
      return row.iface;
    case 'src':
      return row.src;
    case 'dst':
      return row.dst;
    case 'type':
      return formatType(row);
    case 'code':
      return formatCode(row);
    case 'id':
      return row.id === null ? '' : String(row.id);
    case 'seq':
      return row.seq === null ? '' : String(row.seq);
    case 'ttl':
      return String(row.ttl);
    case 'len':
      return String(row.len);
    case 'rtt':
      return row.rttMs === null ? '' : row.rttMs.toFixed(3);
    case 'time':
      return row.tsNs;
    case 'info':
      return row.info ?? `${formatType(row)}${row.noResponse ? ' (no response found!)' : ''}`;
    case 'proc':
      return processText(row);
  }
}

/** A filter expression matching this cell's value, or null when the column is not filterable. */
export function cellFilter(col: ColumnId, row: Row): string | null {
  const icmp = row.family === 6 ? 'icmpv6' : 'icmp';
  const ip = row.family === 6 ? 'ipv6' : 'ip';
  switch (col) {
    case 'dir':
      return row.dir === '?' ? null : `icmpcap.dir == ${row.dir}`;
    case 'iface':
      return row.iface ? `frame.interface_name == "${row.iface}"` : null;
    case 'src':
      return `${ip}.src == ${row.src}`;
    case 'dst':
      return `${ip}.dst == ${row.dst}`;
    case 'type':
      return `${icmp}.type == ${typeKey(row.family, row.type) ?? row.type}`;
    case 'code':
      return `${icmp}.type == ${typeKey(row.family, row.type) ?? row.type} && ${icmp}.code == ${row.code}`;
    // Wireshark's names (electron/common/fields.ts), so a filter copied to Wireshark means the same.
    case 'id':
      return row.id === null
        ? null
        : row.family === 6
          ? `icmpv6.echo.identifier == ${row.id}`
          : `icmp.ident == ${row.id}`;
    case 'seq':
      return row.seq === null
        ? null
        : row.family === 6
          ? `icmpv6.echo.sequence_number == ${row.seq}`
          : `icmp.seq == ${row.seq}`;
    case 'ttl':
      return row.family === 6 ? `ipv6.hlim == ${row.ttl}` : `ip.ttl == ${row.ttl}`;
    case 'len':
      return `frame.len == ${row.len}`;
    case 'rtt':
      return row.rttMs === null ? null : `icmpcap.rtt >= ${row.rttMs}`;
    case 'info':
      return row.noResponse ? (row.family === 6 ? 'icmpv6.resp_not_found' : 'icmp.resp_not_found') : null;
    case 'proc':
      return row.proc?.pid != null
        ? `icmpcap.proc.pid == ${row.proc.pid}`
        : row.proc?.uid != null
          ? `icmpcap.proc.uid == ${row.proc.uid}`
          : null;
    default:
      return null;
  }
}

export type FilterCombine = 'equal' | 'not' | 'and' | 'or' | 'and-not';

/** Combines a cell's expression with the current filter the way Wireshark's "Apply as Filter" does. */
export function combineFilter(current: string, expr: string, how: FilterCombine): string {
  const negated = expr.includes('&&') ? `!(${expr})` : expr.replace(' == ', ' != ').replace(' >= ', ' < ');
  const cur = current.trim();
  switch (how) {
    case 'equal':
      return expr;
    case 'not':
      return negated;
    case 'and':
      return cur ? `(${cur}) && ${expr}` : expr;
    case 'or':
      return cur ? `(${cur}) || ${expr}` : expr;
    case 'and-not':
      return cur ? `(${cur}) && ${negated}` : negated;
  }
}
