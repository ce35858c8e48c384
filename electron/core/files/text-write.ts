/** CSV (RFC 4180) and NDJSON lines for exported records; both carry the same fields. */
import { codeLabel, typeLabel } from '../../common/icmp.js';
import type { RecordFlag, RowProcess } from '../../common/contract.js';
import {
  REC_F_FRAGMENT,
  REC_F_NOT_FIRST,
  REC_F_SHORT,
  REC_F_TRUNCATED,
  type DecodedRecord,
} from '../record.js';

export interface TextRow {
  no: number;
  record: DecodedRecord;
  ifname: string;
  rttMs?: number;
  /** Time since the start of the capture; when missing, since the first exported row. */
  relativeNs: bigint;
  /** The table's flags; when missing, those the record's own flags tell. */
  flags?: readonly RecordFlag[] | undefined;
  /** The local process the record belongs to, when known. */
  proc?: RowProcess | undefined;
}

const NO_FLAGS: readonly RecordFlag[] = [];

/** The flags a row is exported with (`flags` column, space separated in CSV). */
export function rowFlags(row: TextRow): readonly RecordFlag[] {
  if (row.flags) return row.flags;
  const f = row.record.flags;
  if (!(f & (REC_F_FRAGMENT | REC_F_NOT_FIRST | REC_F_SHORT | REC_F_TRUNCATED))) return NO_FLAGS;
  const out: RecordFlag[] = [];
  if (f & REC_F_FRAGMENT) out.push('fragment');
  if (f & REC_F_NOT_FIRST) out.push('not-first');
  if (f & REC_F_SHORT) out.push('short');
  if (f & REC_F_TRUNCATED) out.push('truncated');
  return out;
}

/** A later fragment has no ICMP header: its type and code columns stay empty rather than say "Echo Reply". */
function notFirst(r: DecodedRecord): boolean {
  return (r.flags & REC_F_NOT_FIRST) !== 0;
}

export const CSV_COLUMNS = [
  'no',
  'time',
  'relative_s',
  'direction',
  'interface',
  'source',
  'destination',
  'type',
  'type_name',
  'code',
  'code_name',
  'id',
  'seq',
  'ttl',
  'length',
  'captured_length',
  'rtt_ms',
  'flags',
  'pid',
  'process',
  'uid',
  'cgroup',
] as const;

const DIRECTION_NAMES = ['in', 'out', 'forward', 'unknown'];

export function directionName(dir: number): string {
  return DIRECTION_NAMES[dir] ?? 'unknown';
}

const NS_PER_SECOND = 1_000_000_000n;
let cachedSecond = -1n;
let cachedSecondText = '';

/** ISO-8601 UTC with nine fractional digits: `2026-11-22T06:41:18.123456789Z`. */
export function isoTimeNs(tsNs: bigint): string {
  const seconds = tsNs / NS_PER_SECOND;
  const fraction = tsNs - seconds * NS_PER_SECOND;
  if (seconds !== cachedSecond) {
    // Rows come in time order, so most share their second with the previous one.
    cachedSecond = seconds;
    cachedSecondText = new Date(Number(seconds) * 1000).toISOString().slice(0, 19);
  }
  return `${cachedSecondText}.${fraction.toString().padStart(9, '0')}Z`;
}

/** Seconds with nine decimals, exact (no floating point): `-0.000000042`, `12.5` -> `12.500000000`. */
export function secondsText(ns: bigint): string {
  const sign = ns < 0n ? '-' : '';
  const abs = ns < 0n ? -ns : ns;
  const seconds = abs / NS_PER_SECOND;
  return `${sign}${seconds}.${(abs - seconds * NS_PER_SECOND).toString().padStart(9, '0')}`;
}

export function rttText(rttMs: number | undefined): string {
  return rttMs === undefined || !Number.isFinite(rttMs) ? '' : rttMs.toFixed(3);
}

function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

export function csvHeader(): string {
  return `${CSV_COLUMNS.join(',')}\r\n`;
}

export function csvLine(row: TextRow): string {
  const r = row.record;
  const echo = r.hasEcho;
  const typed = !notFirst(r);
  return (
    [
      String(row.no),
      isoTimeNs(r.tsNs),
      secondsText(row.relativeNs),
      directionName(r.dir),
      csvField(row.ifname),
      r.src,
      r.dst,
      typed ? String(r.type) : '',
      typed ? csvField(typeLabel(r.family, r.type)) : '',
      typed ? String(r.code) : '',
      typed ? csvField(codeLabel(r.family, r.type, r.code)) : '',
      echo ? String(r.id) : '',
      echo ? String(r.seq) : '',
      String(r.ttl),
      String(r.origLen),
      String(r.capLen),
      rttText(row.rttMs),
      rowFlags(row).join(' '),
      String(row.proc?.pid ?? ''),
      csvField(row.proc?.name ?? ''),
      String(row.proc?.uid ?? ''),
      csvField(row.proc?.cgroup ?? ''),
    ].join(',') + '\r\n'
  );
}

/** One JSON object per line; numbers that need 64 bits (ts) are strings, absent values are null. */
export function ndjsonLine(row: TextRow): string {
  const r = row.record;
  const echo = r.hasEcho;
  const rtt = rttText(row.rttMs);
  const typed = !notFirst(r);
  const flags = rowFlags(row);
  return (
    `{"no":${row.no},"ts":"${r.tsNs}","time":"${isoTimeNs(r.tsNs)}","relativeS":${secondsText(row.relativeNs)},` +
    `"direction":"${directionName(r.dir)}","interface":${JSON.stringify(row.ifname)},"family":${r.family},` +
    `"source":"${r.src}","destination":"${r.dst}",` +
    (typed
      ? `"type":${r.type},"typeName":${JSON.stringify(typeLabel(r.family, r.type))},"code":${r.code},` +
        `"codeName":${JSON.stringify(codeLabel(r.family, r.type, r.code))},`
      : '"type":null,"typeName":null,"code":null,"codeName":null,') +
    `"id":${echo ? r.id : 'null'},"seq":${echo ? r.seq : 'null'},"ttl":${r.ttl},"length":${r.origLen},` +
    `"capturedLength":${r.capLen},"rttMs":${rtt === '' ? 'null' : rtt},` +
    `"flags":${flags.length === 0 ? '[]' : JSON.stringify(flags)},` +
    `"pid":${row.proc?.pid ?? 'null'},"process":${JSON.stringify(row.proc?.name ?? null)},` +
    `"uid":${row.proc?.uid ?? 'null'},"cgroup":${JSON.stringify(row.proc?.cgroup ?? null)}}\n`
  );
}
