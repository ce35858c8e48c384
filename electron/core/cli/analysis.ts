/**
 * What `capture` computes over every record in capture order (kept by -Y or not, as tshark's dissection
 * sees every packet): the fields of `-T fields -e` (the field registry, electron/common/fields.ts, read by
 * ../fields/extract.ts) and the statistics of `-z` (../stats/srt.ts), printed at the end.
 */
import type { ExportRow } from '../files/index.js';
import {
  addProcessFields,
  type FieldMap,
  FieldSession,
  type FieldValue,
  formatFieldValue,
} from '../fields/extract.js';
import { FIELDS, fieldInfo } from '../../common/fields.js';
import { type PeerSrt, type SrtTap, SrtCollector, formatSrtReport, parseSrtArg } from '../stats/srt.js';
import type { FieldOptions } from './args.js';
import { usage } from './errors.js';
import { ANSWER_STATS, createAnswerStat } from '../answers/index.js';
import { formatProcessSummary, ProcessSummary } from '../proc/summary.js';

/** `-z icmpcap,procs`: the per-process summary. */
export const PROCS_STAT = 'icmpcap,procs';

/** `-e` names checked before anything starts: an unknown one is a usage error naming it. */
export function checkFields(names: readonly string[]): void {
  for (const name of names) {
    const info = fieldInfo(name);
    if (info === undefined || info.type === 'protocol')
      usage(
        `-e ${name}: there is no such field; \`icmpcap fields\` lists them (Wireshark's names, e.g. icmp.type)`,
      );
  }
}

/** One packet's `-e` fields as tshark -T fields prints them, with the -E options. */
export function fieldsLine(map: FieldMap, names: readonly string[], o: FieldOptions): string {
  return names
    .map((name) => {
      const info = fieldInfo(name)!;
      let values: FieldValue[] = map.get(name);
      if (values.length > 1 && o.occurrence !== 'a')
        values = [o.occurrence === 'f' ? values[0]! : values[values.length - 1]!];
      if (values.length === 0) return '';
      const text = values.map((v) => formatFieldValue(info, v)).join(o.aggregator);
      return o.quote ? `${o.quote}${text}${o.quote}` : text;
    })
    .join(o.separator);
}

/** tshark -T json with -e: each packet's fields under `_source.layers`, every value as a string. */
export function fieldsJson(map: FieldMap, names: readonly string[], dateIndex: string): string {
  const layers: Record<string, string[]> = {};
  for (const name of names) {
    const values = map.get(name);
    if (values.length) layers[name] = values.map((v) => formatFieldValue(fieldInfo(name)!, v));
  }
  return JSON.stringify({ _index: dateIndex, _type: 'doc', _score: null, _source: { layers } });
}

export interface Statistic {
  add(index: number, row: ExportRow): void;
  report(): string;
}

/** `-z` arguments checked before anything starts. */
export function checkStatistics(args: readonly string[]): void {
  for (const arg of args) {
    if (arg === 'icmpcap,peers' || arg === PROCS_STAT || arg in ANSWER_STATS || parseSrtArg(arg) !== null)
      continue;
    usage(
      `-z ${arg}: icmpcap computes icmp,srt[,FILTER], icmpv6,srt[,FILTER], icmpcap,peers, ${PROCS_STAT}, ${Object.keys(ANSWER_STATS).join(', ')}`,
    );
  }
}

/**
 * The statistics of -z over every record: one SrtCollector with a tap per srt argument (its filter a
 * display filter on the record, as tshark's tap filter) and the per-peer table.
 */
export function createStatistics(
  args: readonly string[],
  matcher: (filter: string) => (index: number) => boolean,
  live = false,
): Statistic | null {
  if (args.length === 0) return null;
  let current = -1;
  const taps: SrtTap[] = [];
  const order: ('srt' | 'peers')[] = [];
  // icmpcap,paths / icmpcap,problems (../answers): live says the route cache of this namespace may be asked.
  const answers = args.filter((a) => a in ANSWER_STATS).map((a) => createAnswerStat(a, live));
  // icmpcap,procs: the local processes (their records carry them in live captures only).
  const procs = args.includes(PROCS_STAT) ? new ProcessSummary() : null;
  for (const arg of args) {
    if (arg in ANSWER_STATS || arg === PROCS_STAT) continue;
    const srt = parseSrtArg(arg);
    if (srt) {
      const test = srt.filter ? matcher(srt.filter) : null;
      taps.push({ family: srt.family, filter: srt.filter, ...(test ? { accept: () => test(current) } : {}) });
      order.push('srt');
    } else order.push('peers');
  }
  const collector = new SrtCollector(taps.length ? taps : [{ family: 4 }]);
  return {
    add(index, row) {
      current = index;
      collector.add(row.record);
      for (const a of answers) a.add(row.record);
      if (procs) {
        const r = row.record;
        procs.add({
          proc: row.proc ?? null,
          dir: r.dir,
          family: r.family,
          type: r.type,
          peer: r.dir === 1 ? r.dst : r.src,
          tsNs: r.tsNs,
        });
      }
    },
    report() {
      const out: string[] = [];
      if (taps.length) out.push(formatSrtReport(collector.srtTables()));
      if (order.includes('peers')) out.push(formatPeers(collector.peerStats()));
      for (const a of answers) out.push(a.report());
      if (procs) out.push(formatProcessSummary(procs.rows()));
      return out.join('');
    },
  };
}

const ms = (v: number): string => (Number.isFinite(v) ? v.toFixed(3) : '-');

/** icmpcap's own table: one line per peer, loss and RTT figures in ms. */
export function formatPeers(peers: readonly PeerSrt[]): string {
  const head = [
    'Peer',
    'Requests',
    'Replies',
    'Lost',
    '% Loss',
    'Min',
    'Mean',
    'Median',
    'P95',
    'Max',
    'Jitter',
    'Dup',
    'Late',
  ];
  const rows = peers.map((p) => [
    p.peer,
    String(p.requests),
    String(p.replies),
    String(p.lost),
    `${p.lossPercent.toFixed(1)}%`,
    ...(p.replies > 0
      ? [p.minMs, p.meanMs, p.medianMs, p.p95Ms, p.maxMs, p.jitterMs].map(ms)
      : Array<string>(6).fill('-')),
    String(p.duplicates),
    String(p.late),
  ]);
  const widths = head.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k]!.length)));
  const line = (cells: string[]): string =>
    cells.map((c, k) => (k === 0 ? c.padEnd(widths[k]!) : c.padStart(widths[k]!))).join('  ');
  const rule = '='.repeat(widths.reduce((a, w) => a + w + 2, -2));
  return ['', rule, 'icmpcap peers (times in ms):', '', line(head), ...rows.map(line), rule, ''].join('\n');
}

/** Feeds the field session every record and returns the fields of the ones asked for. */
export class FieldReader {
  private readonly session = new FieldSession();

  read(row: ExportRow): FieldMap {
    const map = this.session.next(row.record, row.ifname);
    addProcessFields(map, row.proc);
    return map;
  }

  /** A record not printed: it still counts for frame numbers, times and echo matching. */
  skip(row: ExportRow): void {
    this.session.context(row.record, row.ifname);
  }
}

/** `icmpcap fields`: every field -e and -Y know, as `tshark -G fields` lists them (name, type, description). */
export function listFields(): string {
  return (
    FIELDS.map((f) => `${f.name}\t${f.type}\t${f.description}${f.own ? ' (icmpcap)' : ''}`).join('\n') + '\n'
  );
}
