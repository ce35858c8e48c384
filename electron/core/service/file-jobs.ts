/**
 * The service's long work, run as jobs (jobs.ts: progress, cancel, one ending): exporting records from the
 * spool and opening capture files (or a leftover spool) as the current capture.
 */
import { type Stats, existsSync, statSync } from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { z } from 'zod';
import {
  type CaptureState,
  type ExportFormat,
  type RequestSchemas,
  type RowProcess,
  ServiceError,
} from '../../common/contract.js';
import { EXPORT_SLICE_MS } from '../files/export.js';
import { type ExportRow, exportRecords, openCaptureFile } from '../files/index.js';
import type { Ingestor } from '../ingest.js';
import type { JobRunner } from '../jobs.js';
import type { BatchInfo } from '../native.js';
import { exportSpoolPcap, exportSpoolPcapng, spoolExportRows } from '../spool-export.js';
import type { Spool } from '../spool-store.js';
import type { RecordStore } from '../store.js';
import type { View } from '../view.js';
import type { ProcAttribution } from '../proc/attribution.js';
import { spoolRoom } from './spool-owner.js';

/**
 * Records per batch read from a file being opened (openCaptureFile's default is 8192): each is parsed in one
 * turn of the event loop and taken in by the service's own turn (spool, index, statistics, view, taps), so a
 * 20 M-record open holds the loop for about as long as one batch takes (2048 records: turns of 36-45 ms,
 * 58-78 ms with a collection, at 10 and 20 M).
 */
export const OPEN_BATCH_RECORDS = 1024;
/** Batches of a file being opened that may wait for the service's turn. */
const MAX_HELD_WHILE_OPENING = 4;

/** What the jobs need of the service. */
export interface JobHost {
  readonly store: RecordStore;
  readonly view: View;
  readonly ingestor: Ingestor;
  readonly attribution: ProcAttribution;
  readonly jobs: JobRunner;
  readonly version: string;
  readonly spool: Spool | null;
  readonly capturing: boolean;
  readonly captureState: CaptureState;
  readonly ifnames: Map<number, string>;
  newSpool(snaplen: number): void;
  setState(state: CaptureState): void;
  onBatch(batch: ArrayBuffer, info?: BatchInfo): void;
  /** Batches given to onBatch and not yet taken in whole. */
  readonly heldBatches: number;
  /** Takes in the rest of a batch onBatch left for a later turn, now. */
  settleIngest(): void;
  /** A promise while a record tap on another thread is far behind (the open waits for it), else null. */
  tapsBehind(): Promise<void> | null;
  /** How long a background step may hold the loop now (shorter while the capture falls behind). */
  backgroundSliceMs(normal: number): number;
  tick(): void;
}

/** Record indices for an export scope, in the order the user sees them, as of when the export started. */
function* exportIndices(
  host: JobHost,
  scope: 'all' | 'view' | 'selected',
  nos: number[] | undefined,
  length: number,
): Generator<number> {
  if (scope === 'all') for (let i = host.store.firstIndex; i < length; i++) yield i;
  else if (scope === 'view') {
    // A copy: the live order may change (new records merged into a sort) while the export runs.
    yield* host.view.snapshot();
  } else for (const no of nos ?? []) if (no <= length && no > host.store.firstIndex) yield no - 1;
}

export function startExport(host: JobHost, p: z.output<(typeof RequestSchemas)['export.start']>): number {
  const spool = host.spool;
  if (!spool || host.store.live === 0)
    throw new ServiceError('bad-request', 'nothing to export: capture or open a file first');
  const total =
    p.scope === 'all' ? host.store.live : p.scope === 'view' ? host.view.length : (p.nos?.length ?? 0);
  if (!p.overwrite && existsSync(p.path))
    throw new ServiceError('file-exists', `${p.path} exists: replace it, or choose another name`);
  return runExport(host, p.format, p.path, exportIndices(host, p.scope, p.nos, host.store.length), total);
}

/** Exports the records at `indices` (in that order) as a job; returns the job id. */
export function runExport(
  host: JobHost,
  format: ExportFormat,
  path: string,
  indices: Iterable<number>,
  total: number,
): number {
  const spool = host.spool;
  if (!spool) throw new ServiceError('bad-request', 'nothing to export: capture or open a file first');
  const processOf = (i: number): RowProcess | null => host.attribution.processOf(i);
  return host.jobs.start('export', path, async (ctx) => {
    const options = {
      path,
      total,
      signal: ctx.signal,
      onProgress: (done: number) => ctx.progress(done, total),
      sliceMs: () => host.backgroundSliceMs(EXPORT_SLICE_MS),
      application: `icmpcap ${host.version}`,
    };
    // pcapng and pcap copy the spool's bytes (spool-export.ts: blocks, with the processes' EPB comments
    // `PID:`/`Cmd:` as ptcpdump writes them; packets); CSV and NDJSON are written from rows.
    const result =
      format === 'pcapng'
        ? await exportSpoolPcapng(host.store, host.ingestor, spool, indices, { ...options, processOf })
        : format === 'pcap'
          ? await exportSpoolPcap(host.store, spool, indices, options)
          : await exportRecords(spoolExportRows(host.store, host.ingestor, spool, indices, processOf), {
              format,
              ...options,
            });
    ctx.progress(result.records, total);
    return `${result.records.toLocaleString('en')} records written to ${result.path}`;
  });
}

/**
 * Opens capture files (one, or a leftover spool's segments in order) as the current capture. The first
 * is read (format, first records) before the current capture is let go: a file that cannot be opened
 * leaves everything as it was. A leftover spool's damage (the block `kill -9` cut) is reported, not an error.
 */
export function openFiles(host: JobHost, paths: string[], label: string, leftover = false): number {
  if (host.capturing) throw new ServiceError('bad-request', 'stop the capture before opening a file');
  if (host.jobs.busy('open')) throw new ServiceError('bad-request', 'a file is already being opened');
  for (const path of paths) checkOpenable(path);
  const file = paths.length === 1 ? paths[0]! : label;
  return host.jobs.start('open', file, async (ctx) => {
    let records = 0;
    let skippedNonIcmp = 0;
    const damage: string[] = [];
    try {
      for (const [k, path] of paths.entries()) {
        const reader = openCaptureFile(path, {
          signal: ctx.signal,
          onProgress: (bytes, total) => ctx.progress(bytes, total),
          // Each batch is parsed and taken in (spool, index, statistics, view) in one turn of the event loop:
          // a quarter of a live capture's largest batch keeps that turn short at any file size.
          batchRecords: OPEN_BATCH_RECORDS,
          // Cold code (the parser's first records, a fresh index) takes the first, small batches.
          firstBatchRecords: 64,
        });
        let next = await reader.next();
        if (k === 0) {
          if (next.done && next.value.error && next.value.records === 0)
            throw new Error(
              `cannot open ${path}: the file is damaged at byte ${next.value.error.offset}: ${next.value.error.message}`,
            );
          host.newSpool(65535);
          host.setState({ state: 'starting', source: 'file', file, interfaces: [] });
          // Letting the previous capture go (index, statistics) is a turn of its own.
          await nextTurn();
        }
        const names = new Map<number, string>();
        while (!next.done) {
          const { batch, records: n, interfaces } = next.value;
          for (const { id, name } of interfaces) names.set(id, name);
          for (const [id, name] of names) host.ifnames.set(id, name);
          // As a native session's reader does: none more while the service still holds a few (it takes them in a
          // slice a turn; a file parsed ahead of it would pile batches up until one is forced through at once).
          while (host.heldBatches >= MAX_HELD_WHILE_OPENING) await nextTurn();
          // Nor while the insights' worker is far behind: a file read faster than it follows would pile up there.
          for (let behind = host.tapsBehind(); behind !== null; behind = host.tapsBehind()) await behind;
          host.onBatch(batch, { records: n, bytes: batch.byteLength });
          await spoolRoom(host.spool); // a file reads faster than a slow disk writes: wait, keep every record
          next = await reader.next();
        }
        records += next.value.records;
        skippedNonIcmp += next.value.skippedNonIcmp;
        if (next.value.error)
          damage.push(`${path} is damaged at byte ${next.value.error.offset}: ${next.value.error.message}`);
      }
      // The batches still held are taken in a slice a turn, as while reading (settling them all at once held
      // the loop for 36-46 ms at the end of a 20 M-record open).
      while (host.heldBatches > 0) await nextTurn();
    } finally {
      host.settleIngest();
      if (host.captureState.state === 'starting') {
        host.setState({
          state: 'stopped',
          source: 'file',
          file,
          interfaces: [...new Set(host.ifnames.values())],
          stoppedAtMs: Date.now(),
        });
        host.tick();
      }
    }
    const skipped = skippedNonIcmp ? `, ${skippedNonIcmp.toLocaleString('en')} non-ICMP packets skipped` : '';
    const text = `${records.toLocaleString('en')} ICMP records read from ${label}${skipped}`;
    if (damage.length && !leftover) throw new Error(`${text}; then ${damage.join('; ')}`);
    return damage.length ? `${text} (a capture cut short: ${damage.join('; ')})` : text;
  });
}

/** spoolExportRows reuses one row object; these are rows of their own, for callers that keep them. */
export function* copiedRows(rows: Iterable<ExportRow>): Generator<ExportRow> {
  for (const row of rows) {
    const record = { ...row.record, tsNs: row.record.tsNs, data: row.record.data.slice() };
    yield {
      no: row.no,
      record,
      ifname: row.ifname,
      ...(row.rttMs === undefined ? {} : { rttMs: row.rttMs }),
      ...(row.relativeNs === undefined ? {} : { relativeNs: row.relativeNs }),
      ...(row.flags ? { flags: row.flags } : {}),
      ...(row.proc ? { proc: row.proc } : {}),
    };
  }
}

/**
 * Refuses what "Open..." cannot read as a capture file, before anything is let go: a missing or unreadable
 * path, a folder, a FIFO or device (reading one would wait for a writer forever).
 */
function checkOpenable(path: string): void {
  let stat: Stats;
  try {
    stat = statSync(path);
  } catch {
    return; // missing or unreadable: the open job says so (and leaves the capture as it was)
  }
  if (stat.isDirectory())
    throw new ServiceError('bad-request', `cannot open ${path}: it is a folder; choose a capture file`);
  if (!stat.isFile()) {
    const kind = stat.isFIFO() ? 'a FIFO (named pipe)' : stat.isSocket() ? 'a socket' : 'a device';
    throw new ServiceError(
      'bad-request',
      `cannot open ${path}: it is ${kind}, not a capture file; save the stream to a file first ` +
        `(e.g. cat ${path} > capture.pcapng) and open that`,
    );
  }
}
