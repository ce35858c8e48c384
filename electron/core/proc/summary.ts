/**
 * The per-process summary: for each local process that sent or received ICMP, what it sent, what came back
 * and from how many peers, as the CLI's `-z icmpcap,procs` and the UI's Processes table show it. Records
 * no process is known for are counted on one "unknown" line only when they are this host's own traffic
 * (sent, or errors and replies received); forwarded traffic and requests from elsewhere belong to no one.
 */
import type { ProcessSummaryRow, RowProcess } from '../../common/contract.js';

/** What one record adds to the summary. */
export interface SummaryRecord {
  proc: RowProcess | null;
  /** 0 in, 1 out (record.ts Direction). */
  dir: number;
  family: 4 | 6;
  type: number;
  /** The other end: the destination of what was sent, the source of what came in. */
  peer: string;
  tsNs: bigint;
}

/** Echo request and reply types, and the error types a process is told of, by family (also summary-live.ts). */
export const REQUEST = { 4: 8, 6: 128 } as const;
export const REPLY = { 4: 0, 6: 129 } as const;
export const ERRORS = { 4: new Set([3, 4, 5, 11, 12]), 6: new Set([1, 2, 3, 4]) } as const;

interface Entry {
  row: ProcessSummaryRow;
  peers: Set<string>;
}

export class ProcessSummary {
  private readonly entries = new Map<RowProcess | null, Entry>();

  add(r: SummaryRecord): void {
    if (r.proc === null && !(r.dir === 1 || (r.dir === 0 && r.type !== REQUEST[r.family]))) return;
    let entry = this.entries.get(r.proc);
    if (entry === undefined) {
      entry = {
        row: {
          pid: r.proc?.pid ?? null,
          name: r.proc?.name ?? null,
          uid: r.proc?.uid ?? null,
          cgroup: r.proc?.cgroup ?? null,
          sent: 0,
          received: 0,
          requests: 0,
          replies: 0,
          errors: 0,
          peers: 0,
          firstNs: r.tsNs.toString(),
          lastNs: r.tsNs.toString(),
        },
        peers: new Set(),
      };
      this.entries.set(r.proc, entry);
    }
    const row = entry.row;
    if (r.dir === 1) row.sent++;
    else row.received++;
    if (r.type === REQUEST[r.family] && r.dir === 1) row.requests++;
    else if (r.type === REPLY[r.family] && r.dir === 0) row.replies++;
    else if (ERRORS[r.family].has(r.type) && r.dir === 0) row.errors++;
    entry.peers.add(r.peer);
    row.peers = entry.peers.size;
    row.lastNs = r.tsNs.toString();
  }

  /** Busiest first; the unknown line last. */
  rows(): ProcessSummaryRow[] {
    const known = [...this.entries.entries()].filter(([p]) => p !== null).map(([, e]) => e.row);
    known.sort((a, b) => b.sent + b.received - (a.sent + a.received) || (a.pid ?? 0) - (b.pid ?? 0));
    const unknown = this.entries.get(null);
    return unknown ? [...known, unknown.row] : known;
  }
}

/** The summary as a text table (`-z icmpcap,procs`). */
export function formatProcessSummary(rows: readonly ProcessSummaryRow[]): string {
  const head = [
    'PID',
    'Command',
    'UID',
    'Sent',
    'Received',
    'Requests',
    'Replies',
    'Errors',
    'Peers',
    'Cgroup',
  ];
  const cells = rows.map((p) => [
    p.pid === null ? '-' : String(p.pid),
    p.name ?? (p.pid === null && p.uid === null ? '(unknown)' : '-'),
    p.uid === null ? '-' : String(p.uid),
    String(p.sent),
    String(p.received),
    String(p.requests),
    String(p.replies),
    String(p.errors),
    String(p.peers),
    p.cgroup ?? '-',
  ]);
  const widths = head.map((h, k) => Math.max(h.length, ...cells.map((r) => r[k]!.length)));
  const left = new Set([1, 9]);
  const line = (c: string[]): string =>
    c
      .map((v, k) => (left.has(k) ? v.padEnd(widths[k]!) : v.padStart(widths[k]!)))
      .join('  ')
      .trimEnd();
  const rule = '='.repeat(widths.reduce((a, w) => a + w + 2, -2));
  return ['', rule, 'icmpcap processes:', '', line(head), ...cells.map(line), rule, ''].join('\n');
}
