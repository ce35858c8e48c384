import { codeLabel, typeLabel } from '@common/icmp';
import type { Row } from '@common/contract';

/** Absolute wall-clock time with microseconds (ns available in details), local time zone. */
export function formatTime(tsNs: string): string {
  const ns = BigInt(tsNs);
  const ms = Number(ns / 1_000_000n);
  const d = new Date(ms);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  const micros = Number((ns / 1000n) % 1_000_000n);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(micros, 6)}`;
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
