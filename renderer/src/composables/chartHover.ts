/**
 * What both charts share: the time under the cursor to the second (and ms), and a legend that lists
 * only the series with a point there (uPlot lists every series, "—" for the ones without).
 */
import type uPlot from 'uplot';

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** x value (seconds since the epoch) as local time `HH:MM:SS.mmm`. */
export function hoverTime(_u: uPlot, v: number | null): string {
  if (v === null || v === undefined) return '—';
  const d = new Date(v * 1000);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** A setLegend hook: hides the legend rows of series with no point under the cursor. */
export function legendOnlyWithPoints(u: uPlot): void {
  const idx = u.cursor.idx;
  const rows = u.root.querySelectorAll<HTMLElement>('.u-legend .u-series');
  rows.forEach((row, i) => {
    if (i === 0) return;
    const v = idx === null || idx === undefined ? 0 : u.data[i]?.[idx];
    row.classList.toggle('no-point', v === null || v === undefined);
  });
}

/** Axis spacing that keeps tick labels apart (uPlot's default packs time labels tightly). */
export const X_SPACE = 110;
export const Y_SPACE = 36;

/** A silence longer than this (and than 3 typical intervals) is drawn as a gap, not a slope across it. */
export const GAP_MIN_MS = 2000;

/** Seconds and RTTs of a series, with a null (a break in the line) wherever the replies stopped a while. */
export function withGaps(s: {
  tMs: readonly number[];
  rttMs: readonly number[];
}): [number[], (number | null)[]] {
  const dts: number[] = [];
  for (let k = 1; k < s.tMs.length; k++) dts.push(s.tMs[k]! - s.tMs[k - 1]!);
  dts.sort((a, b) => a - b);
  const gap = Math.max(GAP_MIN_MS, 3 * (dts[dts.length >> 1] ?? 0));
  const t: number[] = [];
  const v: (number | null)[] = [];
  for (let k = 0; k < s.tMs.length; k++) {
    if (k > 0 && s.tMs[k]! - s.tMs[k - 1]! > gap) {
      t.push((s.tMs[k]! + s.tMs[k - 1]!) / 2000);
      v.push(null);
    }
    t.push(s.tMs[k]! / 1000);
    v.push(s.rttMs[k]!);
  }
  return [t, v];
}
