/**
 * The metric families `GET /metrics` exposes, read at scrape time from the service's own per-peer
 * statistics (electron/core/stats/aggregator.ts): the counters are the figures the UI shows, not a
 * second count.
 *
 * Cardinality is bounded: the first `maxPeers` peers seen (busiest first within a scrape) get their own
 * series for the rest of the capture; later ones are folded into `peer="other", local="other"` (per
 * family and role). `icmpcap_metrics_peer_limit` and `icmpcap_metrics_folded_peers` say so. Series are
 * counters: each one only grows, by the growth of the peers it stands for (a peer forgotten by the
 * statistics and seen again starts from zero, and only its new counts are added). A new capture starts
 * every counter again at zero, as a restarted process would; `rate()` and `increase()` handle that.
 */
import { ICMP4_TYPES, ICMP6_TYPES, messageKind, typeKey } from '../../common/icmp.js';
import type { CaptureService } from '../service.js';
import { type PeerCounters, RTT_BUCKETS_S } from '../stats/aggregator.js';
import type { HistogramSample, Labels, MetricFamily, ValueSample } from './exposition.js';

export const DEFAULT_MAX_PEERS = 100;

const DIRECTIONS = ['in', 'out', 'forward', 'unknown'] as const;

/** The kinds of ICMP error message `icmpcap_errors_total` counts (both families), always exposed. */
export const ERROR_KINDS: readonly string[] = [
  ...new Set(
    [
      ...Object.entries(ICMP4_TYPES).map(([t]) => ({ family: 4 as const, type: Number(t) })),
      ...Object.entries(ICMP6_TYPES).map(([t]) => ({ family: 6 as const, type: Number(t) })),
    ]
      .filter(({ family, type }) => messageKind(family, type) === 'error')
      .map(({ family, type }) => typeKey(family, type)!),
  ),
];

interface Counts {
  requests: number;
  replies: number;
  lost: number;
  judged: number;
  duplicates: number;
  late: number;
  rttCount: number;
  rttSumS: number;
  rttBuckets: Float64Array;
}

interface Series {
  labels: Labels;
  counts: Counts;
}

function zero(): Counts {
  return {
    requests: 0,
    replies: 0,
    lost: 0,
    judged: 0,
    duplicates: 0,
    late: 0,
    rttCount: 0,
    rttSumS: 0,
    rttBuckets: new Float64Array(RTT_BUCKETS_S.length),
  };
}

const FIELDS = [
  'requests',
  'replies',
  'lost',
  'judged',
  'duplicates',
  'late',
  'rttCount',
  'rttSumS',
] as const;

export interface CollectorOptions {
  maxPeers?: number;
  version: string;
}

export class MetricsCollector {
  readonly maxPeers: number;
  private generation = -1;
  /** Exposed peer series by key (at most maxPeers), then the folded ones by family and role. */
  private readonly series = new Map<string, Series>();
  private readonly other = new Map<string, Series>();
  /** Each peer's counters at the previous scrape, to add only what grew since. */
  private readonly last = new Map<string, Counts>();
  private folded = 0;

  constructor(
    private readonly service: CaptureService,
    private readonly options: CollectorOptions,
  ) {
    this.maxPeers = options.maxPeers ?? DEFAULT_MAX_PEERS;
  }

  collect(): MetricFamily[] {
    const stats = this.service.statistics;
    if (stats.generation !== this.generation) {
      this.generation = stats.generation;
      this.series.clear();
      this.other.clear();
      this.last.clear();
    }
    this.updatePeers(stats.peerCounters());
    const peers = [...this.series.values(), ...this.other.values()];
    const counts = this.service.counts();
    const state = this.service.captureState.state;
    const counter = (name: string, help: string, field: (typeof FIELDS)[number]): MetricFamily => ({
      name,
      type: 'counter',
      help,
      samples: peers.map((s) => ({ labels: s.labels, value: s.counts[field] })),
    });
    return [
      counter(
        'icmpcap_peer_requests',
        'Echo requests seen between the peer and the local address (passive: icmpcap sends none).',
        'requests',
      ),
      counter('icmpcap_peer_replies', 'Echo replies seen within the reply timeout.', 'replies'),
      counter(
        'icmpcap_peer_lost',
        'Echo requests with no reply within the timeout (late replies count here too, as ping does).',
        'lost',
      ),
      counter(
        'icmpcap_peer_judged',
        'Echo requests whose reply timeout has passed, answered or lost: lost / judged is the loss icmpcap shows.',
        'judged',
      ),
      counter('icmpcap_peer_duplicates', 'Second and later replies to one echo request.', 'duplicates'),
      counter('icmpcap_peer_late', 'Echo replies that came after the timeout.', 'late'),
      {
        name: 'icmpcap_peer_rtt_seconds',
        type: 'histogram',
        unit: 'seconds',
        help: 'Round-trip time of echo replies within the timeout, from capture timestamps.',
        samples: peers.map((s) => histogram(s)),
      },
      {
        name: 'icmpcap_packets',
        type: 'counter',
        help: 'ICMP and ICMPv6 packets captured, by family, type and direction.',
        samples: this.packets(),
      },
      {
        name: 'icmpcap_errors',
        type: 'counter',
        help: 'ICMP and ICMPv6 error messages captured, by kind (the type name).',
        samples: this.errors(),
      },
      {
        name: 'icmpcap_dropped',
        type: 'counter',
        help: 'Packets lost before icmpcap saw them: where="kernel" the capture ring was full, where="ring" a damaged ring was abandoned.',
        samples: [
          { labels: [['where', 'kernel']], value: counts.droppedKernel },
          { labels: [['where', 'ring']], value: counts.droppedRing },
        ],
      },
      {
        name: 'icmpcap_capture_up',
        type: 'gauge',
        help: '1 while a capture is running (or paused), 0 otherwise.',
        samples: [{ labels: [], value: state === 'running' || state === 'paused' ? 1 : 0 }],
      },
      {
        name: 'icmpcap_metrics_peer_limit',
        type: 'gauge',
        help: 'Peers that get series of their own (--metrics-max-peers); later ones are folded into peer="other".',
        samples: [{ labels: [], value: this.maxPeers }],
      },
      {
        name: 'icmpcap_metrics_folded_peers',
        type: 'gauge',
        help: 'Peers currently counted in peer="other" because the peer limit was reached.',
        samples: [{ labels: [], value: this.folded }],
      },
      {
        name: 'icmpcap_build',
        type: 'info',
        help: 'The icmpcap version exporting these metrics.',
        samples: [{ labels: [['version', this.options.version]], value: 1 }],
      },
    ];
  }

  private updatePeers(current: PeerCounters[]): void {
    const seen = new Set<string>();
    // Free slots go to the busiest new peers first.
    current.sort((a, b) => b.requests - a.requests);
    let folded = 0;
    for (const p of current) {
      const key = `${p.peer}|${p.local}|${p.family}|${p.role}`;
      seen.add(key);
      let target = this.series.get(key);
      if (!target && this.series.size < this.maxPeers) {
        target = { labels: peerLabels(p.peer, p.local, p.family, p.role), counts: zero() };
        this.series.set(key, target);
      }
      if (!target) {
        folded++;
        const otherKey = `${p.family}|${p.role}`;
        target = this.other.get(otherKey);
        if (!target) {
          target = { labels: peerLabels('other', 'other', p.family, p.role), counts: zero() };
          this.other.set(otherKey, target);
        }
      }
      const before = this.last.get(key);
      // Requests never decrease for one peer: fewer means the statistics forgot it and started again.
      const restarted = before !== undefined && p.requests < before.requests;
      const base = before === undefined || restarted ? null : before;
      for (const f of FIELDS) target.counts[f] += Math.max(0, p[f] - (base ? base[f] : 0));
      for (let b = 0; b < p.rttBuckets.length; b++)
        target.counts.rttBuckets[b]! += Math.max(0, p.rttBuckets[b]! - (base ? base.rttBuckets[b]! : 0));
      if (base) {
        // Keep the highest value seen, so a counter corrected downwards is not counted twice.
        for (const f of FIELDS) base[f] = Math.max(base[f], p[f]);
        for (let b = 0; b < p.rttBuckets.length; b++)
          base.rttBuckets[b] = Math.max(base.rttBuckets[b]!, p.rttBuckets[b]!);
      } else this.last.set(key, { ...p, rttBuckets: p.rttBuckets.slice() });
    }
    for (const key of this.last.keys()) if (!seen.has(key)) this.last.delete(key);
    this.folded = folded;
  }

  private packets(): ValueSample[] {
    return this.service.statistics.packetsByTypeDir().map(({ family, type, dir, count }) => ({
      labels: [
        ['family', familyName(family)],
        ['type', typeKey(family, type) ?? String(type)],
        ['direction', DIRECTIONS[dir]!],
      ],
      value: count,
    }));
  }

  private errors(): ValueSample[] {
    const byKind = new Map<string, number>(ERROR_KINDS.map((k) => [k, 0]));
    for (const { family, type, count } of this.service.statistics.packetsByTypeDir()) {
      if (messageKind(family, type) !== 'error') continue;
      const kind = typeKey(family, type)!;
      byKind.set(kind, (byKind.get(kind) ?? 0) + count);
    }
    return [...byKind].map(([kind, value]) => ({ labels: [['kind', kind]], value }));
  }
}

function familyName(family: 4 | 6): string {
  return family === 6 ? 'ipv6' : 'ipv4';
}

function peerLabels(peer: string, local: string, family: 4 | 6, role: PeerCounters['role']): Labels {
  return [
    ['peer', peer],
    ['local', local],
    ['family', familyName(family)],
    ['role', role],
  ];
}

/**
 * The RTT histogram, classic and native. The bounds are powers of two (2^-20 s .. 2^3 s), which are the
 * bucket boundaries of a schema 0 native histogram: classic bucket k, (2^(k-21), 2^(k-20)], is native
 * bucket k-20, and the first classic bucket, (0, 2^-20], is exactly the zero bucket with threshold 2^-20.
 */
function histogram(s: Series): HistogramSample {
  let cumulative = 0;
  const buckets = RTT_BUCKETS_S.map((le, b) => {
    cumulative += s.counts.rttBuckets[b]!;
    return { le, count: cumulative };
  });
  const positive = RTT_BUCKETS_S.slice(1).map((_, k) => ({
    index: k + 1 - 20,
    count: s.counts.rttBuckets[k + 1]!,
  }));
  // Above the last bound (never, with the 2 s reply timeout): the next power of two.
  const above = s.counts.rttCount - cumulative;
  if (above > 0) positive.push({ index: RTT_BUCKETS_S.length - 20, count: above });
  return {
    labels: s.labels,
    buckets,
    count: s.counts.rttCount,
    sum: s.counts.rttSumS,
    native: { schema: 0, zeroThreshold: RTT_BUCKETS_S[0]!, zeroCount: s.counts.rttBuckets[0]!, positive },
  };
}
