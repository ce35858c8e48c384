/**
 * Answers drawn from ICMP: which flow an error reports (flows.ts) and which path a traceroute took
 * (traceroute.ts), as the CLI's `-z icmpcap,problems` and `-z icmpcap,paths` statistics.
 */
import { formatProblems, ProblemTable } from './flows.js';
import { checkPmtu, pmtuText } from './pmtu.js';
import { formatPaths, PathBuilder } from './traceroute.js';
import type { DecodedRecord } from '../record.js';

export * from './flows.js';
export * from './traceroute.js';
export * from './pmtu.js';

/** The -z statistics this module answers, with a line of help each. */
export const ANSWER_STATS: Readonly<Record<string, string>> = {
  'icmpcap,paths': 'paths of traceroute/mtr/tracepath/ping -t runs, rebuilt from their ICMP',
  'icmpcap,problems': 'ICMP errors grouped by the flow they report (unreachable, TTL exceeded, MTU)',
};

/** A -z statistic fed record by record in capture order; `report` when the capture ends. */
export interface AnswerStat {
  add(record: DecodedRecord): void;
  report(): string;
}

/**
 * The -z statistic `name` (a key of ANSWER_STATS). `live`: the records are being captured in this network
 * namespace, so the kernel's route cache can be asked (path-MTU check); not for files read back.
 */
export function createAnswerStat(name: string, live: boolean): AnswerStat {
  if (name === 'icmpcap,paths') {
    const b = new PathBuilder();
    return { add: (r) => b.add(r), report: () => formatPaths(b.paths()) };
  }
  if (name === 'icmpcap,problems') {
    const t = new ProblemTable();
    return {
      add: (r) => void t.add(r),
      report() {
        const list = t.list();
        const notes = new Map<(typeof list)[number], string>();
        if (live) for (const [p, c] of checkPmtu(list)) notes.set(p, pmtuText(c));
        return formatProblems(list, notes);
      },
    };
  }
  throw new Error(`-z ${name}: unknown statistic; use one of ${Object.keys(ANSWER_STATS).join(', ')}`);
}

/** Runs the -z statistic `name` over records in capture order and returns its text. */
export function answerStat(name: string, records: Iterable<DecodedRecord>, live = false): string {
  const stat = createAnswerStat(name, live);
  for (const r of records) stat.add(r);
  return stat.report();
}
