import { codeLabel, typeLabel } from '@common/icmp';
import type { Row } from '@common/contract';

export type TimeFormat = 'absolute' | 'relative' | 'delta';
export type TimePrecision = 'us' | 'ns';

const pad = (n: number | bigint, w = 2) => String(n).padStart(w, '0');

/** Absolute wall-clock time, local time zone, to the microsecond or the nanosecond. */
export function formatAbsolute(tsNs: string, precision: TimePrecision = 'us'): string {
  const ns = BigInt(tsNs);
  const d = new Date(Number(ns / 1_000_000n));
  const frac = precision === 'ns' ? pad(ns % 1_000_000_000n, 9) : pad((ns / 1000n) % 1_000_000n, 6);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${frac}`;
}

/** Seconds between two ns timestamps, as `s.ffffff` (or 9 digits). */
export function formatSeconds(diffNs: bigint, precision: TimePrecision = 'us'): string {
  const neg = diffNs < 0n;
  const abs = neg ? -diffNs : diffNs;
  const whole = abs / 1_000_000_000n;
  const frac = precision === 'ns' ? pad(abs % 1_000_000_000n, 9) : pad((abs / 1000n) % 1_000_000n, 6);
  return `${neg ? '-' : ''}${whole}.${frac}`;
}

export function formatTime(
  tsNs: string,
  format: TimeFormat = 'absolute',
  precision: TimePrecision = 'us',
  reference: string | null = null,
): string {
  if (format === 'absolute' || reference === null) return formatAbsolute(tsNs, precision);
  return formatSeconds(BigInt(tsNs) - BigInt(reference), precision);
}

export function formatType(row: Row): string {
  return typeLabel(row.family, row.type);
}

export function formatCode(row: Row): string {
  return codeLabel(row.family, row.type, row.code);
}

export function formatRate(rate: number): string {
  if (rate >= 1e6) return `${(rate / 1e6).toFixed(1)} M/s`;
  if (rate >= 1e3) return `${(rate / 1e3).toFixed(1)} k/s`;
  return `${rate}/s`;
}

export function formatMs(ms: number | null | undefined, digits = 3): string {
  return ms === null || ms === undefined ? '—' : ms.toFixed(digits);
}

export function formatElapsed(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  return h ? `${h}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}` : `${Math.floor(s / 60)}:${pad(s % 60)}`;
}

/** How long ago an ns timestamp was, for "last seen". */
export function formatAgo(tsNs: string, nowMs = Date.now()): string {
  const ms = nowMs - Number(BigInt(tsNs) / 1_000_000n);
  if (ms < 1500) return 'now';
  if (ms < 90_000) return `${Math.round(ms / 1000)} s ago`;
  if (ms < 5_400_000) return `${Math.round(ms / 60_000)} min ago`;
  return `${Math.round(ms / 3_600_000)} h ago`;
}
