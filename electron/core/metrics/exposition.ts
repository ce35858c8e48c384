/**
 * Exact writers for the two text exposition formats Prometheus scrapes: OpenMetrics 1.0.0
 * (`application/openmetrics-text`) and the classic Prometheus text format 0.0.4 (`text/plain`).
 * One model of metric families feeds both, so the formats never drift apart:
 * - OpenMetrics names a counter family without `_total` and an info family without `_info`, writes
 *   `# UNIT` and escapes `"` in HELP, and ends with `# EOF`;
 * - 0.0.4 names families by their sample names (counters `..._total`, info as a gauge `..._info`).
 */

export type Labels = readonly (readonly [name: string, value: string])[];

export interface ValueSample {
  labels: Labels;
  value: number;
}

export interface HistogramSample {
  labels: Labels;
  /** Upper bounds (ascending, without +Inf) and the cumulative count at each. */
  buckets: readonly { le: number; count: number }[];
  count: number;
  sum: number;
  /**
   * The same observations as a native (exponential) histogram, for the protobuf exposition: bucket
   * `index` covers (2^((index-1)/2^schema), 2^(index/2^schema)]; values up to `zeroThreshold` are in
   * `zeroCount`. The text formats carry only the classic buckets.
   */
  native?: {
    schema: number;
    zeroThreshold: number;
    zeroCount: number;
    positive: readonly { index: number; count: number }[];
  };
}

export type MetricFamily =
  | {
      /** The OpenMetrics family name: no `_total` for counters, no `_info` for info metrics. */
      name: string;
      type: 'counter' | 'gauge';
      help: string;
      /** Set only when `name` ends with `_<unit>`, as OpenMetrics requires. */
      unit?: string;
      samples: readonly ValueSample[];
    }
  | { name: string; type: 'info'; help: string; unit?: undefined; samples: readonly ValueSample[] }
  | { name: string; type: 'histogram'; help: string; unit?: string; samples: readonly HistogramSample[] };

export const OPENMETRICS_CONTENT_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8';
export const PROMETHEUS_TEXT_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function formatOpenMetrics(families: readonly MetricFamily[]): string {
  const out: string[] = [];
  for (const f of families) {
    check(f);
    out.push(`# TYPE ${f.name} ${f.type}`);
    if (f.unit) out.push(`# UNIT ${f.name} ${f.unit}`);
    out.push(`# HELP ${f.name} ${escapeHelp(f.help, true)}`);
    writeSamples(out, f);
  }
  out.push('# EOF');
  return out.join('\n') + '\n';
}

export function formatPrometheusText(families: readonly MetricFamily[]): string {
  const out: string[] = [];
  for (const f of families) {
    check(f);
    const name = f.type === 'counter' ? `${f.name}_total` : f.type === 'info' ? `${f.name}_info` : f.name;
    out.push(`# HELP ${name} ${escapeHelp(f.help, false)}`);
    out.push(`# TYPE ${name} ${f.type === 'info' ? 'gauge' : f.type}`);
    writeSamples(out, f);
  }
  return out.join('\n') + '\n';
}

function writeSamples(out: string[], f: MetricFamily): void {
  if (f.type === 'histogram') {
    for (const s of f.samples) {
      for (const b of s.buckets)
        out.push(`${f.name}_bucket${labelText(s.labels, ['le', float(b.le)])} ${number(b.count)}`);
      out.push(`${f.name}_bucket${labelText(s.labels, ['le', '+Inf'])} ${number(s.count)}`);
      out.push(`${f.name}_sum${labelText(s.labels)} ${number(s.sum)}`);
      out.push(`${f.name}_count${labelText(s.labels)} ${number(s.count)}`);
    }
    return;
  }
  const name = f.type === 'counter' ? `${f.name}_total` : f.type === 'info' ? `${f.name}_info` : f.name;
  for (const s of f.samples) out.push(`${name}${labelText(s.labels)} ${number(s.value)}`);
}

function check(f: MetricFamily): void {
  if (!NAME.test(f.name)) throw new Error(`metric name ${JSON.stringify(f.name)} is not valid`);
  if (f.unit !== undefined && !f.name.endsWith(`_${f.unit}`))
    throw new Error(`metric ${f.name} must end with its unit _${f.unit}`);
  if (f.type === 'counter' && f.name.endsWith('_total'))
    throw new Error(`counter family ${f.name} is named without _total`);
}

function labelText(labels: Labels, extra?: readonly [string, string]): string {
  const all = extra ? [...labels, extra] : labels;
  if (all.length === 0) return '';
  const parts = all.map(([name, value]) => {
    if (!LABEL_NAME.test(name) || name.startsWith('__'))
      throw new Error(`label name ${JSON.stringify(name)} is not valid`);
    return `${name}="${escapeLabelValue(value)}"`;
  });
  return `{${parts.join(',')}}`;
}

export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(text: string, quotes: boolean): string {
  const s = text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
  return quotes ? s.replace(/"/g, '\\"') : s;
}

function number(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** Bucket bounds in the canonical form OpenMetrics asks for (`1.0`, not `1`). */
function float(v: number): string {
  const s = number(v);
  return Number.isInteger(v) && !s.includes('e') ? `${s}.0` : s;
}
