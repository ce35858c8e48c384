/** How a firing reads in a desktop notification (Electron main and the browser page alike). No runtime imports. */
import type { AlertFiring } from './insights.js';

export function firingText(f: AlertFiring): { title: string; body: string } {
  const v = f.figures.value;
  const value = Number.isInteger(v) ? String(v) : v.toFixed(2);
  const body = f.finding
    ? f.finding.detail
    : `${f.figures.metric} ${value}${f.figures.op ? ` ${f.figures.op} ${f.figures.threshold}` : ''}` +
      `${f.figures.windowSeconds ? ` over ${f.figures.windowSeconds} s` : ''} (${f.evidence.length} packets)`;
  return { title: `icmpcap alert: ${f.rule}`, body };
}
