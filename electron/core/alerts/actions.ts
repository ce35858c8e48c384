/**
 * What a firing does: POST the event to a webhook (retries with backoff; the URL's secrets never reach a
 * log), save a pcapng snapshot of the seconds around it (the existing exporter), run a command with the
 * event JSON on stdin (only when enabled).
 */
import { join } from 'node:path';
import { exportRecords, type ExportRow } from '../files/index.js';
import type { DecodedRecord } from '../record.js';
import type { AlertEvent } from './engine.js';
import type { AlertRule } from './rule.js';
import { commandSpawner } from './spawner.js';

/** The documented webhook body (and command stdin): the event, with times as strings. */
export function eventJson(event: AlertEvent): string {
  return JSON.stringify(event, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

/** A URL safe to print: scheme, host and path only (no user, password, query or fragment). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(bad URL)';
  }
}

export interface WebhookOptions {
  attempts?: number;
  /** First retry delay; doubles each time. */
  backoffMs?: number;
  timeoutMs?: number;
  log?: (line: string) => void;
}

/** POSTs the event; resolves true once a 2xx arrives, false after the last attempt fails. */
export async function postWebhook(
  url: string,
  event: AlertEvent,
  opts: WebhookOptions = {},
): Promise<boolean> {
  const attempts = opts.attempts ?? 4;
  let delay = opts.backoffMs ?? 500;
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  for (let i = 1; i <= attempts; i++) {
    let why: string;
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'icmpcap-alerts' },
        body: eventJson(event),
        signal: AbortSignal.timeout(opts.timeoutMs ?? 5000),
      });
      if (res.ok) return true;
      why = `HTTP ${res.status}`;
    } catch (e) {
      why = e instanceof Error ? e.name : 'error';
    }
    log(`icmpcap alerts: webhook ${redactUrl(url)} attempt ${i}/${attempts} failed (${why})`);
    if (i < attempts) await new Promise((r) => setTimeout(r, delay));
    delay *= 2;
  }
  return false;
}

/**
 * Runs `command` through /bin/sh with the event JSON on stdin; resolves its exit code. The shell starts from
 * the command helper (spawner.ts), so a firing does not fork the service.
 */
export function runCommand(command: string, event: AlertEvent): Promise<number> {
  return commandSpawner.run(command, eventJson(event));
}

interface Kept {
  no: number;
  record: DecodedRecord;
  ifname: string;
}

interface PendingSnapshot {
  event: AlertEvent;
  rule: AlertRule;
  untilNs: bigint;
  rows: Kept[];
}

/** Snapshot file name: rule name and firing time, safe for any file system. */
export function snapshotName(rule: AlertRule, event: AlertEvent): string {
  const name =
    rule.name
      .replace(/[^A-Za-z0-9._-]+/g, '_')
      .replace(/^_+|_+$/g, '')
      .slice(0, 60) || 'alert';
  return `${name}-${event.time.replace(/[:.]/g, '-')}.pcapng`;
}

/**
 * Keeps the last `keepSeconds` of records; a firing with a snapshot collects until N seconds after it and
 * then writes the N seconds before and after to `dir`.
 */
export class SnapshotRecorder {
  /** The last `keepSeconds` of records: `recent[head..]` (the head moves; compacted now and then). */
  private recent: Kept[] = [];
  private head = 0;
  private pending: PendingSnapshot[] = [];
  private readonly keepNs: bigint;

  constructor(
    private readonly dir: string,
    keepSeconds: number,
    private readonly onWritten: (path: string, records: number, event: AlertEvent) => void,
  ) {
    this.keepNs = BigInt(Math.ceil(keepSeconds * 1e3)) * 1_000_000n;
  }

  observe(record: DecodedRecord, frame: number, ifname: string): void {
    const kept: Kept = { no: frame, record: { ...record, data: record.data.slice() }, ifname };
    const recent = this.recent;
    recent.push(kept);
    // Constant work per record: the window's head moves (a shift per record moved the whole list).
    while (this.head < recent.length && record.tsNs - recent[this.head]!.record.tsNs > this.keepNs)
      this.head++;
    if (this.head > 1024 && this.head * 2 > recent.length) {
      this.recent = recent.slice(this.head);
      this.head = 0;
    }
    if (this.pending.length === 0) return;
    for (const p of this.pending) if (record.tsNs <= p.untilNs) p.rows.push(kept);
    if (this.pending.every((p) => record.tsNs <= p.untilNs)) return;
    const done = this.pending.filter((p) => record.tsNs > p.untilNs);
    this.pending = this.pending.filter((p) => record.tsNs <= p.untilNs);
    for (const p of done) void this.write(p);
  }

  fired(rule: AlertRule, event: AlertEvent): void {
    if (rule.snapshotSeconds === null) return;
    const spanNs = BigInt(Math.round(rule.snapshotSeconds * 1e3)) * 1_000_000n;
    const rows = this.recent.slice(this.head).filter((k) => event.tsNs - k.record.tsNs <= spanNs);
    this.pending.push({ event, rule, untilNs: event.tsNs + spanNs, rows });
  }

  /** Writes what is pending now (end of capture). */
  async flush(): Promise<void> {
    const all = this.pending;
    this.pending = [];
    await Promise.all(all.map((p) => this.write(p)));
  }

  private async write(p: PendingSnapshot): Promise<void> {
    const path = join(this.dir, snapshotName(p.rule, p.event));
    const first = p.rows[0]?.record.tsNs ?? 0n;
    const rows: ExportRow[] = p.rows.map((k) => ({ ...k, relativeNs: k.record.tsNs - first }));
    const res = await exportRecords(rows, { format: 'pcapng', path, application: 'icmpcap alerts' });
    this.onWritten(path, res.records, p.event);
  }
}
