/**
 * The protobuf exposition (`io.prometheus.client.MetricFamily`, length-delimited), the one format that
 * carries native histograms. Prometheus asks for it first when started with
 * `--enable-feature=native-histograms`. Hand-encoded: the messages are small and fixed (metrics.proto of
 * prometheus/client_model), so a protobuf library would not earn its place.
 *
 * Field numbers (client_model metrics.proto):
 *   MetricFamily: name 1, help 2, type 3, metric 4        Metric: label 1, gauge 2, counter 3, histogram 7
 *   LabelPair: name 1, value 2                            Gauge/Counter: value 1 (double)
 *   Histogram: sample_count 1, sample_sum 2, bucket 3, schema 5 (sint32), zero_threshold 6,
 *              zero_count 7, positive_span 12, positive_delta 13 (sint64, delta-encoded counts)
 *   Bucket: cumulative_count 1, upper_bound 2             BucketSpan: offset 1 (sint32), length 2
 */
import type { HistogramSample, Labels, MetricFamily } from './exposition.js';

export const PROTOBUF_CONTENT_TYPE =
  'application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited';

const TYPE = { counter: 0, gauge: 1, histogram: 4 } as const;

/** A growable protobuf writer. */
class Writer {
  private buf = new Uint8Array(4096);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const grown = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    grown.set(this.buf.subarray(0, this.length));
    this.buf = grown;
    this.view = new DataView(grown.buffer);
  }

  varint(value: number): void {
    // Values here are non-negative integers below 2^53.
    this.room(10);
    let v = value;
    while (v >= 0x80) {
      this.buf[this.length++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.length++] = v;
  }

  tag(field: number, wire: 0 | 1 | 2): void {
    this.varint(field * 8 + wire);
  }

  uint(field: number, value: number): void {
    this.tag(field, 0);
    this.varint(value);
  }

  /** sint32/sint64 (zigzag). */
  sint(field: number, value: number): void {
    this.uint(field, value >= 0 ? value * 2 : -value * 2 - 1);
  }

  double(field: number, value: number): void {
    this.tag(field, 1);
    this.room(8);
    this.view.setFloat64(this.length, value, true);
    this.length += 8;
  }

  bytes(field: number, data: Uint8Array): void {
    this.tag(field, 2);
    this.varint(data.length);
    this.raw(data);
  }

  raw(data: Uint8Array): void {
    this.room(data.length);
    this.buf.set(data, this.length);
    this.length += data.length;
  }

  string(field: number, text: string): void {
    this.bytes(field, Buffer.from(text, 'utf8'));
  }

  message(field: number, fill: (w: Writer) => void): void {
    const inner = new Writer();
    fill(inner);
    this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

function labels(w: Writer, l: Labels): void {
  for (const [name, value] of l)
    w.message(1, (p) => {
      p.string(1, name);
      p.string(2, value);
    });
}

function histogram(w: Writer, s: HistogramSample): void {
  w.uint(1, s.count);
  w.double(2, s.sum);
  for (const b of s.buckets)
    w.message(3, (bucket) => {
      bucket.uint(1, b.count);
      bucket.double(2, b.le);
    });
  const native = s.native;
  if (!native) return;
  w.sint(5, native.schema);
  w.double(6, native.zeroThreshold);
  w.uint(7, native.zeroCount);
  // Spans of consecutive non-empty buckets; counts as deltas from the previous bucket's count.
  const used = native.positive.filter((b) => b.count > 0).sort((a, b) => a.index - b.index);
  const spans: { offset: number; length: number }[] = [];
  let next = 0;
  for (const b of used) {
    const last = spans[spans.length - 1];
    if (last && b.index === next) last.length++;
    else spans.push({ offset: spans.length === 0 ? b.index : b.index - next, length: 1 });
    next = b.index + 1;
  }
  for (const span of spans)
    w.message(12, (m) => {
      m.sint(1, span.offset);
      m.uint(2, span.length);
    });
  let previous = 0;
  for (const b of used) {
    w.sint(13, b.count - previous);
    previous = b.count;
  }
}

/** Every family as one length-delimited MetricFamily message. */
export function formatProtobuf(families: readonly MetricFamily[]): Uint8Array {
  const out = new Writer();
  for (const f of families) {
    const name = f.type === 'counter' ? `${f.name}_total` : f.type === 'info' ? `${f.name}_info` : f.name;
    const family = new Writer();
    family.string(1, name);
    family.string(2, f.help);
    family.uint(3, TYPE[f.type === 'info' ? 'gauge' : f.type]);
    if (f.type === 'histogram') {
      for (const s of f.samples)
        family.message(4, (m) => {
          labels(m, s.labels);
          m.message(7, (h) => histogram(h, s));
        });
    } else {
      for (const s of f.samples)
        family.message(4, (m) => {
          labels(m, s.labels);
          m.message(f.type === 'counter' ? 3 : 2, (v) => v.double(1, s.value));
        });
    }
    const bytes = family.finish();
    out.varint(bytes.length);
    out.raw(bytes);
  }
  return out.finish();
}
