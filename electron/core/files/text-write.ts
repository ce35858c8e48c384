/** CSV (RFC 4180) and NDJSON lines for exported records; both carry the same fields. */
import { codeLabel, typeLabel } from '../../common/icmp.js';
import type { DecodedRecord } from '../record.js';

export interface TextRow {
  no: number;
  record: DecodedRecord;
  ifname: string;
  rttMs?: number;
  /** Time since the start of the capture; when missing, since the first exported row. */
  relativeNs: bigint;
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
  return (
    [
      String(row.no),
      isoTimeNs(r.tsNs),
      secondsText(row.relativeNs),
      directionName(r.dir),
      csvField(row.ifname),
      r.src,
      r.dst,
      String(r.type),
      csvField(typeLabel(r.family, r.type)),
      String(r.code),
      csvField(codeLabel(r.family, r.type, r.code)),
      echo ? String(r.id) : '',
      echo ? String(r.seq) : '',
      String(r.ttl),
      String(r.origLen),
      String(r.capLen),
      rttText(row.rttMs),
    ].join(',') + '\r\n'
  );
}

/** One JSON object per line; numbers that need 64 bits (ts) are strings, absent values are null. */
export function ndjsonLine(row: TextRow): string {
  const r = row.record;
  const echo = r.hasEcho;
  const rtt = rttText(row.rttMs);
  return (
    `{"no":${row.no},"ts":"${r.tsNs}","time":"${isoTimeNs(r.tsNs)}","relativeS":${secondsText(row.relativeNs)},` +
    `"direction":"${directionName(r.dir)}","interface":${JSON.stringify(row.ifname)},"family":${r.family},` +
    `"source":"${r.src}","destination":"${r.dst}","type":${r.type},` +
    `"typeName":${JSON.stringify(typeLabel(r.family, r.type))},"code":${r.code},` +
    `"codeName":${JSON.stringify(codeLabel(r.family, r.type, r.code))},` +
    `"id":${echo ? r.id : 'null'},"seq":${echo ? r.seq : 'null'},"ttl":${r.ttl},"length":${r.origLen},` +
    `"capturedLength":${r.capLen},"rttMs":${rtt === '' ? 'null' : rtt}}\n`
  );
}
