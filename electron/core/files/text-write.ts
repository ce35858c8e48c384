/** CSV (RFC 4180) and NDJSON lines for exported records; both carry the same fields. */
import { codeLabel, typeLabel } from '../../common/icmp.js';
import { splitSecondsNs, type SecondsNs } from './timestamp.js';
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
  /** `record.tsNs` as two 32-bit halves, when the row has them (saves BigInt arithmetic per line). */
  tsHi?: number | undefined;
  tsLo?: number | undefined;
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
let cachedSecond = -1;
let cachedSecondText = '';

/** `2026-11-22T06:41:18` for whole seconds since the epoch (rows come in time order: mostly the last one). */
function secondText(seconds: number): string {
  if (seconds !== cachedSecond) {
    cachedSecond = seconds;
    cachedSecondText = new Date(seconds * 1000).toISOString().slice(0, 19);
  }
  return cachedSecondText;
}

/** Nine digits, zero-padded: 42 -> `000000042`. */
function nineDigits(ns: number): string {
  return ns >= 100_000_000 ? String(ns) : String(ns).padStart(9, '0');
}

/** ISO-8601 UTC with nine fractional digits: `2026-11-22T06:41:18.123456789Z`. */
export function isoTimeNs(tsNs: bigint): string {
  const seconds = tsNs / NS_PER_SECOND;
  return `${secondText(Number(seconds))}.${nineDigits(Number(tsNs - seconds * NS_PER_SECOND))}Z`;
}

const split: SecondsNs = { seconds: 0, ns: 0 };

/** isoTimeNs of the row's record, from its 32-bit halves when it has them. */
function rowTime(row: TextRow): string {
  if (row.tsHi === undefined || row.tsLo === undefined) return isoTimeNs(row.record.tsNs);
  splitSecondsNs(row.tsHi, row.tsLo, split);
  return `${secondText(split.seconds)}.${nineDigits(split.ns)}Z`;
}

/** Seconds with nine decimals, exact (no floating point): `-0.000000042`, `12.5` -> `12.500000000`. */
export function secondsText(ns: bigint): string {
  const sign = ns < 0n ? '-' : '';
  const abs = ns < 0n ? -ns : ns;
  const seconds = abs / NS_PER_SECOND;
  return `${sign}${seconds}.${nineDigits(Number(abs - seconds * NS_PER_SECOND))}`;
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

/** Column text by (family, type, code): the labels are looked up and quoted once per kind of message. */
const csvTyped = new Map<number, string>();
const ndjsonTyped = new Map<number, string>();
const typedKey = (r: DecodedRecord): number => (r.family << 16) | (r.type << 8) | r.code;

/** The process columns by process (a capture has few): formatted once. */
const csvProcs = new WeakMap<RowProcess, string>();
const ndjsonProcs = new WeakMap<RowProcess, string>();
const CSV_NO_PROC = ',,,';
const NDJSON_NO_PROC = '"pid":null,"process":null,"uid":null,"cgroup":null';

let lastIfname = '';
let lastIfnameCsv = '';

export function csvLine(row: TextRow): string {
  const r = row.record;
  const echo = r.hasEcho;
  let typed = '';
  if (!notFirst(r)) {
    const key = typedKey(r);
    typed = csvTyped.get(key) ?? '';
    if (typed === '') {
      typed =
        `${r.type},${csvField(typeLabel(r.family, r.type))},` +
        `${r.code},${csvField(codeLabel(r.family, r.type, r.code))}`;
      csvTyped.set(key, typed);
    }
  } else typed = ',,,';
  if (row.ifname !== lastIfname) {
    lastIfname = row.ifname;
    lastIfnameCsv = csvField(row.ifname);
  }
  let proc = CSV_NO_PROC;
  if (row.proc) {
    proc = csvProcs.get(row.proc) ?? '';
    if (proc === '') {
      const p = row.proc;
      proc = `${p.pid ?? ''},${csvField(p.name ?? '')},${p.uid ?? ''},${csvField(p.cgroup ?? '')}`;
      csvProcs.set(p, proc);
    }
  }
  const flags = rowFlags(row);
  return (
    `${row.no},${rowTime(row)},${secondsText(row.relativeNs)},${directionName(r.dir)},${lastIfnameCsv},` +
    `${r.src},${r.dst},${typed},${echo ? r.id : ''},${echo ? r.seq : ''},${r.ttl},${r.origLen},${r.capLen},` +
    `${rttText(row.rttMs)},${flags.length === 0 ? '' : flags.join(' ')},${proc}\r\n`
  );
}

/** One JSON object per line; numbers that need 64 bits (ts) are strings, absent values are null. */
export function ndjsonLine(row: TextRow): string {
  const r = row.record;
  const echo = r.hasEcho;
  const rtt = rttText(row.rttMs);
  let typed = '"type":null,"typeName":null,"code":null,"codeName":null';
  if (!notFirst(r)) {
    const key = typedKey(r);
    typed = ndjsonTyped.get(key) ?? '';
    if (typed === '') {
      typed =
        `"type":${r.type},"typeName":${JSON.stringify(typeLabel(r.family, r.type))},"code":${r.code},` +
        `"codeName":${JSON.stringify(codeLabel(r.family, r.type, r.code))}`;
      ndjsonTyped.set(key, typed);
    }
  }
  let proc = NDJSON_NO_PROC;
  if (row.proc) {
    proc = ndjsonProcs.get(row.proc) ?? '';
    if (proc === '') {
      const p = row.proc;
      proc =
        `"pid":${p.pid ?? 'null'},"process":${JSON.stringify(p.name)},` +
        `"uid":${p.uid ?? 'null'},"cgroup":${JSON.stringify(p.cgroup)}`;
      ndjsonProcs.set(p, proc);
    }
  }
  const flags = rowFlags(row);
  const ts = row.tsHi !== undefined && row.tsLo !== undefined ? u64Text(row.tsHi, row.tsLo) : String(r.tsNs);
  return (
    `{"no":${row.no},"ts":"${ts}","time":"${rowTime(row)}","relativeS":${secondsText(row.relativeNs)},` +
    `"direction":"${directionName(r.dir)}","interface":${JSON.stringify(row.ifname)},"family":${r.family},` +
    `"source":"${r.src}","destination":"${r.dst}",${typed},` +
    `"id":${echo ? r.id : 'null'},"seq":${echo ? r.seq : 'null'},"ttl":${r.ttl},"length":${r.origLen},` +
    `"capturedLength":${r.capLen},"rttMs":${rtt === '' ? 'null' : rtt},` +
    `"flags":${flags.length === 0 ? '[]' : JSON.stringify(flags)},${proc}}\n`
  );
}

/** `hi * 2^32 + lo` in decimal, without a BigInt. */
function u64Text(hi: number, lo: number): string {
  splitSecondsNs(hi, lo, split);
  return split.seconds === 0 ? String(split.ns) : `${split.seconds}${nineDigits(split.ns)}`;
}
