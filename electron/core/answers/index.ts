/**
 * Answers drawn from ICMP: which flow an error reports (flows.ts) and which path a traceroute took
 * (traceroute.ts), as the CLI's `-z icmpcap,problems` and `-z icmpcap,paths` statistics.
 */
import { formatProblems, ProblemTable } from './flows.js';
import { formatPaths, PathBuilder } from './traceroute.js';
import type { DecodedRecord } from '../record.js';

export * from './flows.js';
export * from './traceroute.js';

/** The -z statistics this module answers, with a line of help each. */
export const ANSWER_STATS: Readonly<Record<string, string>> = {
  'icmpcap,paths': 'paths of traceroute/mtr/tracepath/ping -t runs, rebuilt from their ICMP',
  'icmpcap,problems': 'ICMP errors grouped by the flow they report (unreachable, TTL exceeded, MTU)',
};

/** Runs the -z statistic `name` over records in capture order and returns its text. */
export function answerStat(name: string, records: Iterable<DecodedRecord>): string {
  if (name === 'icmpcap,paths') {
    const b = new PathBuilder();
    for (const r of records) b.add(r);
    return formatPaths(b.paths());
  }
  if (name === 'icmpcap,problems') {
    const t = new ProblemTable();
    for (const r of records) t.add(r);
    return formatProblems(t.list());
  }
  throw new Error(`-z ${name}: unknown statistic; use one of ${Object.keys(ANSWER_STATS).join(', ')}`);
}
