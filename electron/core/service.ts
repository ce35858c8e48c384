/**
 * The capture service: owns the native session, keeps the columnar index, answers the renderer's
 * requests and pushes counts and state. Plain Node: nothing here imports Electron, so the same service
 * runs behind Electron IPC and behind the WebSocket server.
 */
import { type Stats, existsSync, statSync } from 'node:fs';
import type { z } from 'zod';
import {
  type CaptureState,
  type Counts,
  type EventName,
  type Events,
  type ExportFormat,
  type Hello,
  type InterfaceInfo,
  type LeftoverSpoolInfo,
  type RequestName,
  RequestSchemas,
  type Results,
  type RingLimit,
  type Row,
  ServiceError,
  type SourceAvailability,
  type SourceKind,
  isRequestName,
} from '../common/contract.js';
import { type ExportRow, exportRecords, openCaptureFile } from './files/index.js';
import { spoolExportRows } from './spool-export.js';
import { FilterSyntaxError, checkFilter, compileFilter } from './filter/index.js';
import { Ingestor, rowOf } from './ingest.js';
import { JobRunner } from './jobs.js';
import { echoLink } from './stats/echo-link.js';
import { packetInfo } from '../common/info.js';
import type { BatchInfo, Native, NativeSession, SessionEvent } from './native.js';
import { evictionTarget, ringSegmentNs, ringUnit } from './ring.js';
import { type SegmentCut, Spool, defaultSpoolDir } from './spool-store.js';
import { SpoolGuard, spoolErrorMessage } from './spool-guard.js';
import { type LeftoverSpool, cleanSpools, findSpool, listLeftoverSpools } from './spool-recovery.js';
import { storeFieldReader } from './fields/store-fields.js';
import { Aggregator } from './stats/aggregator.js';
import { FilterCancelled, SortCancelled, View } from './view.js';
import { CHUNK_MASK, MAX_RECORDS, RecordStore, hookName } from './store.js';

export type EventListener = <E extends EventName>(event: E, data: Events[E]) => void;

export interface ServiceOptions {
  /** The native addon, or the reason it could not be loaded. */
  native: Native | Error;
  version: string;
  /** How often counts are pushed, in ms. */
  tickMs?: number;
  /** Where spool files go (default: $XDG_CACHE_HOME/icmpcap/spool). */
  spoolDir?: string;
  /**
   * The most bytes one capture's spool may take on disk (default: ICMPCAP_SPOOL_MAX, else 16 GiB); a capture
   * reaching it stops with a message. A ring-buffer limit keeps it far below.
   */
  spoolMaxBytes?: number;
}

/** A batch of records as ingested: `firstNo` is the number of its first record (1-based). */
export type RecordTap = (batch: ArrayBuffer, firstNo: number, ifname: (ifindex: number) => string) => void;

export class CaptureService {
  readonly store = new RecordStore();
  private readonly ingestor: Ingestor;
  private readonly listeners = new Set<EventListener>();
  private session: NativeSession | null = null;
  private spool: Spool | null = null;
  private readonly view: View;
  private readonly aggregator: Aggregator;
  private readonly jobs: JobRunner;
  private state: CaptureState = { state: 'idle', interfaces: [] };
  private ifnames = new Map<number, string>();
  private lastAggregatesTotal = -1;
  private lastAggregatesAt = 0;
  /** performance.now() of the last batch ingested, for judging loss while idle. */
  private lastIngestAt = 0;
  private lastDrops = { kernel: 0, ring: 0 };
  private rateWindow: { atMs: number; total: number }[] = [];
  private lastPushed = '';
  private readonly timer: NodeJS.Timeout;
  private interfaceWatch: { close(): void } | null = null;
  /** The ring-buffer limit of the current capture (null: none). */
  private ring: RingLimit | null = null;
  private segmentCut: SegmentCut | undefined;
  /** Spool health: when it was last forced to disk, and the write error that stopped the capture. */
  private readonly spoolGuard = new SpoolGuard();

  constructor(private readonly options: ServiceOptions) {
    this.ingestor = new Ingestor(this.store, (ifindex) => this.ifname(ifindex));
    this.view = new View(this.store, {
      addresses: this.ingestor.addresses,
      interfaces: this.ingestor.interfaces,
      quoted: this.ingestor.quoted,
      matchedColumns: true,
      // Display-filter tests the columns cannot answer read the record's bytes from the spool.
      fields: storeFieldReader(
        this.store,
        (offset) => (this.spool ? this.spool.read(offset) : null),
        (id) => this.ingestor.interfaces.get(id),
      ),
    });
    this.aggregator = new Aggregator(this.ingestor.addresses);
    this.jobs = new JobRunner((job) => this.emit('job', job));
    this.timer = setInterval(() => this.tick(), options.tickMs ?? 250);
    this.timer.unref();
  }

  /** Follows interfaces coming and going and tells the renderer; call once when a UI is attached. */
  watchInterfaces(): void {
    if (this.interfaceWatch || this.options.native instanceof Error) return;
    this.interfaceWatch = this.options.native.watchInterfaces(() =>
      this.emit('interfaces', this.interfaces()),
    );
  }

  get captureState(): CaptureState {
    return this.state;
  }

  /** The per-peer statistics the UI shows, read as they are by the metrics exporter. */
  get statistics(): Aggregator {
    return this.aggregator;
  }

  on(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The one entry point of both transports: validates, then dispatches. */
  async handle(method: unknown, params: unknown, transport: Hello['transport']): Promise<unknown> {
    if (!isRequestName(method)) {
      throw new ServiceError(
        'unknown-method',
        `unknown request ${JSON.stringify(method)}; see electron/common/contract.ts`,
      );
    }
    const schema = RequestSchemas[method] as z.ZodType;
    const parsed = schema.safeParse(params ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue && issue.path.length ? ` (${issue.path.join('.')})` : '';
      throw new ServiceError(
        'bad-request',
        `bad parameters for ${method}${where}: ${issue?.message ?? 'invalid'}`,
      );
    }
    return Promise.resolve(this.dispatch(method, parsed.data, transport));
  }

  private dispatch(method: RequestName, p: unknown, transport: Hello['transport']): unknown {
    switch (method) {
      case 'hello':
        return {
          version: this.options.version,
          transport,
          state: this.state,
          counts: this.counts(),
          sources: this.probe(),
          interfaces: this.interfaces(),
        } satisfies Hello;
      case 'capture.start':
        return this.start(p as z.output<(typeof RequestSchemas)['capture.start']>);
      case 'capture.stop':
        return this.stop();
      case 'capture.pause':
        return this.pause(true);
      case 'capture.resume':
        return this.pause(false);
      case 'capture.clear':
        this.clear();
        return this.counts();
      case 'view.rows': {
        const { start, count } = p as z.output<(typeof RequestSchemas)['view.rows']>;
        return this.rows(start, count);
      }
      case 'view.setFilter':
        return this.setFilter((p as z.output<(typeof RequestSchemas)['view.setFilter']>).filter);
      case 'view.setSort': {
        const { column, descending } = p as z.output<(typeof RequestSchemas)['view.setSort']>;
        return this.view.setSortAsync(column, descending).then(
          () => {
            this.tick();
            return { view: this.view.length };
          },
          (err: unknown) => {
            throw filterError(err);
          },
        );
      }
      case 'filter.check': {
        let slow: string | null;
        try {
          slow = checkFilter((p as z.output<(typeof RequestSchemas)['filter.check']>).filter);
        } catch (err) {
          throw filterError(err);
        }
        return slow === null ? { ok: true } : { ok: true, slow };
      }
      case 'stats.get':
        return this.aggregates();
      case 'stats.peerSeries': {
        const { peers, maxPoints } = p as z.output<(typeof RequestSchemas)['stats.peerSeries']>;
        return peers.map((peer) => this.aggregator.peerSeries(peer, maxPoints));
      }
      case 'view.positionOf': {
        const { no } = p as z.output<(typeof RequestSchemas)['view.positionOf']>;
        return { position: this.store.has(no - 1) ? this.view.positionOf(no - 1) : null };
      }
      case 'record.details':
        return this.details((p as z.output<(typeof RequestSchemas)['record.details']>).no);
      case 'export.start':
        return { id: this.startExport(p as z.output<(typeof RequestSchemas)['export.start']>) };
      case 'file.open': {
        const { path } = p as z.output<(typeof RequestSchemas)['file.open']>;
        return { id: this.openFile([path], path) };
      }
      case 'job.cancel':
        return this.jobs.cancel((p as z.output<(typeof RequestSchemas)['job.cancel']>).id);
      case 'interfaces.list':
        return this.interfaces();
      case 'sources.probe':
        return this.probe();
      case 'spool.list':
        return this.leftoverSpools();
      case 'spool.open':
        return { id: this.openLeftover((p as z.output<(typeof RequestSchemas)['spool.open']>).id) };
      case 'spool.clean':
        try {
          return { removed: cleanSpools(this.spoolDir, (p as { id?: string }).id) };
        } catch (err) {
          throw new ServiceError('not-found', errorMessage(err));
        }
    }
  }

  private native(): Native {
    if (this.options.native instanceof Error) {
      throw new ServiceError('capture-failed', this.options.native.message);
    }
    return this.options.native;
  }

  probe(): SourceAvailability[] {
    if (this.options.native instanceof Error) {
      const reason = this.options.native.message;
      return (['module', 'afpacket'] as const).map((source) => ({ source, available: false, reason }));
    }
    return this.options.native.probe();
  }

  interfaces(): InterfaceInfo[] {
    if (this.options.native instanceof Error) return [];
    const list = this.options.native.interfaces();
    for (const i of list) this.ifnames.set(i.index, i.name);
    return list;
  }

  private ifname(ifindex: number): string {
    let name = this.ifnames.get(ifindex);
    if (name === undefined) {
      this.interfaces();
      name = this.ifnames.get(ifindex) ?? `if${ifindex}`;
      this.ifnames.set(ifindex, name);
    }
    return name;
  }

  start(params: z.output<(typeof RequestSchemas)['capture.start']>): CaptureState {
    if (this.session) throw new ServiceError('capture-failed', 'a capture is already running: stop it first');
    const native = this.native();
    const source = params.source === 'auto' ? this.bestSource() : params.source;
    const known = new Set(this.interfaces().map((i) => i.name));
    const missing = params.interfaces.filter((name) => !known.has(name));
    if (missing.length) {
      throw new ServiceError(
        'capture-failed',
        `no interface named ${missing.join(', ')} on this host; pick one from the interface list`,
      );
    }
    if (this.jobs.busy('open'))
      throw new ServiceError('capture-failed', 'a capture file is being opened: wait or cancel it');
    let session: NativeSession;
    try {
      // The new source is opened before anything of the current capture is let go.
      session = native.open({
        source,
        interfaces: params.interfaces,
        snaplen: params.snaplen,
        // The kernel-side filter (CaptureFilterSpec); addons that predate it ignore it.
        ...(params.filter ? { filter: params.filter } : {}),
      });
    } catch (err) {
      throw new ServiceError('capture-failed', errorMessage(err));
    }
    try {
      this.newSpool(params.snaplen, params.limit);
      session.start(
        (batch, info) => this.onBatch(batch, info),
        (ev) => this.onSessionEvent(ev),
      );
    } catch (err) {
      session.close();
      this.setState({ state: 'error', interfaces: params.interfaces, source, message: errorMessage(err) });
      throw new ServiceError('capture-failed', errorMessage(err));
    }
    this.session = session;
    this.setState({
      state: 'running',
      source,
      interfaces: params.interfaces,
      startedAtMs: Date.now(),
      ...this.ringState(),
    });
    return this.state;
  }

  /**
   * Starts a capture with no native session, fed by `feed()`: the same path as a live capture's batches
   * (spool, ring buffer, index, aggregates, view). For tests and benchmarks.
   */
  startFeed(params: { snaplen?: number; limit?: RingLimit } = {}): CaptureState {
    if (this.session) throw new ServiceError('capture-failed', 'a capture is already running: stop it first');
    this.newSpool(params.snaplen ?? 256, params.limit);
    this.setState({ state: 'running', interfaces: [], startedAtMs: Date.now(), ...this.ringState() });
    return this.state;
  }

  /** Takes in one batch of records (record.ts format) as a native session would deliver it. */
  feed(batch: ArrayBuffer, records?: number): void {
    this.onBatch(batch, records === undefined ? undefined : { records, bytes: batch.byteLength });
  }

  private ringState(): Pick<CaptureState, 'limit' | 'evicted'> {
    return this.ring ? { limit: this.ring, evicted: this.store.firstIndex } : {};
  }

  private bestSource(): SourceKind {
    const sources = this.probe();
    const usable = sources.find((s) => s.available);
    if (usable) return usable.source;
    const why = sources.map(
      (s) => `${s.source}: ${s.reason ?? 'unavailable'}${s.fix ? ` (fix: ${s.fix})` : ''}`,
    );
    throw new ServiceError('capture-failed', `no capture source is available. ${why.join('; ')}`);
  }

  stop(message?: string): CaptureState {
    const session = this.session;
    if (!session) return this.state;
    this.session = null;
    try {
      session.stop();
      this.readDrops(session);
    } finally {
      session.close();
    }
    this.view.update();
    // Loss is judged at stop: requests still waiting will get no reply in this capture.
    if (this.aggregator.finish() && this.listeners.size > 0) this.emit('aggregates', this.aggregates());
    this.setState({
      ...this.state,
      state: 'stopped',
      stoppedAtMs: Date.now(),
      ...(message ? { message } : {}),
    });
    this.tick();
    return this.state;
  }

  private pause(paused: boolean): CaptureState {
    if (paused) {
      if (this.state.state !== 'running')
        throw new ServiceError('bad-request', 'nothing to pause: no capture is running');
      this.setState({ ...this.state, state: 'paused' });
    } else {
      if (this.state.state !== 'paused') throw new ServiceError('bad-request', 'the capture is not paused');
      this.view.update();
      this.setState({ ...this.state, state: 'running' });
    }
    this.tick();
    return this.state;
  }

  clear(): void {
    if (this.jobs.busy('export'))
      throw new ServiceError('bad-request', 'an export is running: wait for it or cancel it');
    this.resetIndex();
    // Record numbers start again at 1: the spool's older segments go (the current one goes at the next cut).
    this.spool?.restartNumbering();
    this.tick();
  }

  /** Forgets every record: index, view, statistics and rates (the spool is the caller's business). */
  private resetIndex(): void {
    this.ingestor.clear();
    this.aggregator.clear();
    this.view.clear();
    this.rateWindow = [];
    this.lastAggregatesTotal = -1;
  }

  /** Starts a fresh capture: clears the index and replaces the spool. */
  private newSpool(snaplen: number, limit?: RingLimit): void {
    if (this.jobs.busy('export')) {
      throw new ServiceError(
        'capture-failed',
        'an export is running from this capture: wait for it or cancel it',
      );
    }
    this.spool?.close();
    this.spool = null;
    this.resetIndex();
    this.ifnames.clear();
    this.ring = limit && (limit.records !== undefined || limit.seconds !== undefined) ? { ...limit } : null;
    this.segmentCut = this.ring ? segmentCut(this.ring) : undefined;
    this.spool = Spool.create(
      this.options.spoolDir ?? defaultSpoolDir(),
      `icmpcap ${this.options.version}`,
      snaplen,
    );
    this.spoolGuard.reset(this.options.spoolMaxBytes);
  }

  private readonly recordTaps = new Set<RecordTap>();

  /** Sees every batch as it is ingested (alerts, neighbour health); returns the function that removes it. */
  tapRecords(tap: RecordTap): () => void {
    this.recordTaps.add(tap);
    return () => this.recordTaps.delete(tap);
  }

  private onBatch(batch: ArrayBuffer, info?: BatchInfo): void {
    const spool = this.spool;
    if (!spool) return;
    const records = info?.records ?? Math.ceil(batch.byteLength / 72);
    const from = this.store.length;
    if (this.ring && from + records > MAX_RECORDS) {
      queueMicrotask(() =>
        this.stop(
          `the capture reached ${MAX_RECORDS.toLocaleString('en')} records, the most one capture can number`,
        ),
      );
      return;
    }
    if (this.spoolGuard.failed) return; // the capture is stopping: nothing more can be kept
    let offsets: Float64Array;
    try {
      offsets = spool.append(batch, records, (ifindex) => this.ifname(ifindex), from, this.segmentCut);
    } catch (err) {
      // A full or failing disk: the records already spooled stay readable; the capture stops, the service serves.
      this.spoolFailed(spool, err);
      return;
    }
    this.ingestor.ingest(batch, offsets);
    for (const tap of this.recordTaps) tap(batch, from + 1, (ifindex) => this.ifname(ifindex));
    const over = this.spoolGuard.overCap(spool);
    if (over) queueMicrotask(() => this.stop(over));
    // The aggregator fills in the RTTs, so it runs before the view (filters on rtt see them).
    // Aggregates stay cumulative over the whole capture, evicted records included.
    this.aggregator.update(this.store, from, this.store.length);
    this.lastIngestAt = performance.now();
    if (this.ring) this.applyRing(spool);
    // While paused the view stays as it was: capture goes on, the table holds still.
    if (this.state.state !== 'paused') this.view.update();
  }

  /** Drops the oldest records in whole units when the ring-buffer limit is exceeded. */
  private applyRing(spool: Spool): void {
    const target = evictionTarget(this.store, this.ring);
    if (target <= this.store.firstIndex) return;
    this.store.evictTo(target);
    spool.dropBefore(target);
    // Even a paused view lets go of evicted records (it keeps the rest as it was).
    this.view.evict();
    if (this.state.state === 'running' || this.state.state === 'paused')
      this.setState({ ...this.state, ...this.ringState() });
  }

  private details(no: number): Results['record.details'] {
    const index = no - 1;
    if (index < this.store.firstIndex && this.spool) {
      throw new ServiceError(
        'not-found',
        `record ${no} fell out of the ring buffer (keeping the newest ${this.limitText()}; records 1 to ` +
          `${this.store.firstIndex} were dropped)`,
      );
    }
    if (index >= this.store.length || !this.spool) {
      throw new ServiceError(
        'not-found',
        `there is no record ${no} in this capture (it has ${this.store.length})`,
      );
    }
    const c = this.store.chunkOf(index);
    const i = index & CHUNK_MASK;
    const rec = this.spool.read(c.spoolOffset[i]!);
    return {
      row: this.row(index),
      bytesHex: Buffer.from(rec.data.buffer, rec.data.byteOffset, rec.data.byteLength).toString('hex'),
      origLen: rec.origLen,
      capLen: rec.capLen,
      hook: hookName(c.misc[i]!),
      tsNs: rec.tsNs.toString(),
    };
  }

  private limitText(): string {
    const parts: string[] = [];
    if (this.ring?.records !== undefined) parts.push(`${this.ring.records.toLocaleString('en')} records`);
    if (this.ring?.seconds !== undefined) parts.push(`${this.ring.seconds} s`);
    return parts.join(' and ') || `${this.store.live.toLocaleString('en')} records`;
  }

  /** Record indices for an export scope, in the order the user sees them, as of when the export started. */
  private *exportIndices(
    scope: 'all' | 'view' | 'selected',
    nos: number[] | undefined,
    length: number,
  ): Generator<number> {
    if (scope === 'all') for (let i = this.store.firstIndex; i < length; i++) yield i;
    else if (scope === 'view') {
      // A copy: the live order may change (new records merged into a sort) while the export runs.
      yield* this.view.snapshot();
    } else for (const no of nos ?? []) if (no <= length && no > this.store.firstIndex) yield no - 1;
  }

  /**
   * A display filter as a test of one record index (CLI statistics taps, `-z icmp,srt,FILTER`); throws
   * ServiceError 'filter-syntax' for a bad filter.
   */
  recordMatcher(filter: string): (index: number) => boolean {
    let compiled;
    try {
      compiled = compileFilter(filter, {
        addresses: this.ingestor.addresses,
        interfaces: this.ingestor.interfaces,
      });
    } catch (err) {
      throw filterError(err);
    }
    if (compiled === null) return () => true;
    const matcher = compiled;
    return (index) => {
      if (!this.store.has(index)) return false;
      return matcher.matches(this.store.chunkOf(index), index & CHUNK_MASK, index - (index & CHUNK_MASK));
    };
  }

  /** The records at `indices` as exports carry them (bytes from the spool): for writers that stream (CLI -w). */
  recordRows(indices: Iterable<number>): Iterable<ExportRow> {
    return this.spool ? copiedRows(spoolExportRows(this.store, this.ingestor, this.spool, indices)) : [];
  }

  private startExport(p: z.output<(typeof RequestSchemas)['export.start']>): number {
    const spool = this.spool;
    if (!spool || this.store.live === 0)
      throw new ServiceError('bad-request', 'nothing to export: capture or open a file first');
    const total =
      p.scope === 'all' ? this.store.live : p.scope === 'view' ? this.view.length : (p.nos?.length ?? 0);
    if (!p.overwrite && existsSync(p.path))
      throw new ServiceError('file-exists', `${p.path} exists: replace it, or choose another name`);
    return this.runExport(p.format, p.path, this.exportIndices(p.scope, p.nos, this.store.length), total);
  }

  /** Exports the records at `indices` (in that order) as a job; returns the job id. */
  runExport(format: ExportFormat, path: string, indices: Iterable<number>, total: number): number {
    const spool = this.spool;
    if (!spool) throw new ServiceError('bad-request', 'nothing to export: capture or open a file first');
    const rows = spoolExportRows(this.store, this.ingestor, spool, indices);
    return this.jobs.start('export', path, async (ctx) => {
      const result = await exportRecords(rows, {
        format,
        path,
        total,
        signal: ctx.signal,
        onProgress: (done) => ctx.progress(done, total),
        application: `icmpcap ${this.options.version}`,
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
  private openFile(paths: string[], label: string, leftover = false): number {
    if (this.session) throw new ServiceError('bad-request', 'stop the capture before opening a file');
    if (this.jobs.busy('open')) throw new ServiceError('bad-request', 'a file is already being opened');
    for (const path of paths) checkOpenable(path);
    const file = paths.length === 1 ? paths[0]! : label;
    return this.jobs.start('open', file, async (ctx) => {
      let records = 0;
      let skippedNonIcmp = 0;
      const damage: string[] = [];
      try {
        for (const [k, path] of paths.entries()) {
          const reader = openCaptureFile(path, {
            signal: ctx.signal,
            onProgress: (bytes, total) => ctx.progress(bytes, total),
          });
          let next = await reader.next();
          if (k === 0) {
            if (next.done && next.value.error && next.value.records === 0)
              throw new Error(
                `cannot open ${path}: the file is damaged at byte ${next.value.error.offset}: ${next.value.error.message}`,
              );
            this.newSpool(65535);
            this.setState({ state: 'starting', source: 'file', file, interfaces: [] });
          }
          const names = new Map<number, string>();
          while (!next.done) {
            const { batch, records: n, interfaces } = next.value;
            for (const { id, name } of interfaces) names.set(id, name);
            for (const [id, name] of names) this.ifnames.set(id, name);
            this.onBatch(batch, { records: n, bytes: batch.byteLength });
            next = await reader.next();
          }
          records += next.value.records;
          skippedNonIcmp += next.value.skippedNonIcmp;
          if (next.value.error)
            damage.push(`${path} is damaged at byte ${next.value.error.offset}: ${next.value.error.message}`);
        }
      } finally {
        if (this.state.state === 'starting') {
          this.setState({
            state: 'stopped',
            source: 'file',
            file,
            interfaces: [...new Set(this.ifnames.values())],
            stoppedAtMs: Date.now(),
          });
          this.tick();
        }
      }
      const skipped = skippedNonIcmp
        ? `, ${skippedNonIcmp.toLocaleString('en')} non-ICMP packets skipped`
        : '';
      const text = `${records.toLocaleString('en')} ICMP records read from ${label}${skipped}`;
      if (damage.length && !leftover) throw new Error(`${text}; then ${damage.join('; ')}`);
      return damage.length ? `${text} (a capture cut short: ${damage.join('; ')})` : text;
    });
  }

  private get spoolDir(): string {
    return this.options.spoolDir ?? defaultSpoolDir();
  }

  /** Spools of icmpcap processes that ended without cleaning up, newest first. */
  leftoverSpools(): LeftoverSpoolInfo[] {
    return listLeftoverSpools(this.spoolDir).map(({ id, startedAtMs, packets, bytes }) => ({
      id,
      startedAtMs,
      packets,
      bytes,
    }));
  }

  /** Opens a leftover spool as the current capture: its segments are read as one file would be. */
  private openLeftover(id: string): number {
    let spool: LeftoverSpool;
    try {
      spool = findSpool(this.spoolDir, id);
    } catch (err) {
      throw new ServiceError('not-found', errorMessage(err));
    }
    return this.openFile(spool.segments, `the capture of ${new Date(spool.startedAtMs).toISOString()}`, true);
  }

  /** The spool could not be written: stop capturing, say what happened and what is kept. */
  private spoolFailed(spool: Spool, err: unknown): void {
    if (this.spoolGuard.failed) return;
    const message = spoolErrorMessage(err, spool.path, this.store.live);
    this.spoolGuard.failed = message;
    const file = this.state.source === 'file';
    queueMicrotask(() => {
      if (this.session) this.stop(message);
      else if (!file) this.setState({ ...this.state, state: 'stopped', message });
    });
    if (file) throw new Error(message);
  }

  private onSessionEvent(ev: SessionEvent): void {
    // The native session ends by itself after an error or when its last interface is gone.
    if (ev.type === 'error' || ev.type === 'interface-gone' || ev.type === 'stopped') {
      if (ev.type !== 'stopped' || this.state.state === 'running' || this.state.state === 'paused') {
        queueMicrotask(() => this.stop(ev.type === 'stopped' ? undefined : ev.message));
      }
    }
  }

  private readDrops(session: NativeSession): void {
    const s = session.stats();
    this.lastDrops = { kernel: s.droppedKernel, ring: s.droppedRing };
  }

  private viewLength(): number {
    return this.view.length;
  }

  counts(): Counts {
    const now = Date.now();
    const oldest = this.rateWindow[0];
    const rate =
      oldest && now > oldest.atMs ? ((this.store.length - oldest.total) * 1000) / (now - oldest.atMs) : 0;
    return {
      total: this.store.live,
      evicted: this.store.firstIndex,
      view: this.viewLength(),
      rate: Math.max(0, Math.round(rate)),
      droppedKernel: this.lastDrops.kernel,
      droppedRing: this.lastDrops.ring,
      firstTsNs: this.store.baseNs === null ? null : this.store.baseNs.toString(),
      filter: this.view.filterText,
      sort: this.view.sort,
    };
  }

  rows(start: number, count: number): Results['view.rows'] {
    const view = this.viewLength();
    const end = Math.min(view, start + count);
    const rows: Row[] = [];
    for (let n = start; n < end; n++) rows.push(this.row(this.view.indexAt(n)));
    return { start, rows, view };
  }

  private row(index: number): Row {
    const row: Row = { ...rowOf(this.store, this.ingestor, index), ...echoLink(this.store, index) };
    if (!this.spool) return row;
    try {
      const rec = this.spool.read(this.store.chunkOf(index).spoolOffset[index & CHUNK_MASK]!);
      row.info = packetInfo(rec.data, row);
    } catch {
      // The bytes are unreadable (a spool error is reported where it happens): the table shows the type.
    }
    return row;
  }

  private async setFilter(filter: string): Promise<Results['view.setFilter']> {
    try {
      // The filter bar says when a filter reads packet bytes (slower) and how far it has got.
      let slow: string | null = null;
      try {
        slow = checkFilter(filter);
      } catch {
        // setFilterAsync reports the error
      }
      const progress = (fraction: number): void =>
        this.emit('filter', { filter, fraction, ...(slow === null ? {} : { slow }) });
      progress(0);
      const { ms } = await this.view.setFilterAsync(filter, (p) => progress(p.fraction));
      this.tick();
      return { view: this.view.length, filter: this.view.filterText, ms };
    } catch (err) {
      throw filterError(err);
    }
  }

  /** The first `count` record indices of the current view, in view order. */
  viewIndices(count: number): number[] {
    const n = Math.min(count, this.view.length);
    return Array.from({ length: n }, (_, p) => this.view.indexAt(p));
  }

  aggregates(): Results['stats.get'] {
    const c = this.counts();
    return this.aggregator.aggregates({
      rate: c.rate,
      droppedKernel: c.droppedKernel,
      droppedRing: c.droppedRing,
    });
  }

  private tick(): void {
    const now = Date.now();
    if (this.spool && this.spoolGuard.syncDue(now)) {
      try {
        this.spool.sync();
      } catch (err) {
        this.spoolFailed(this.spool, err);
      }
    }
    this.view.settle();
    if (this.store.length !== this.lastAggregatesTotal && now - this.lastAggregatesAt >= 500) {
      this.lastAggregatesTotal = this.store.length;
      this.lastAggregatesAt = now;
      if (this.listeners.size > 0) this.emit('aggregates', this.aggregates());
    }
    if (this.session) {
      this.readDrops(this.session);
      // Loss against the clock while idle (nothing arrives from a dead host).
      const idleNs = (performance.now() - this.lastIngestAt) * 1e6;
      if (this.aggregator.advanceIdle(idleNs) && this.listeners.size > 0)
        this.emit('aggregates', this.aggregates());
    }
    this.rateWindow.push({ atMs: now, total: this.store.length });
    while (this.rateWindow.length > 1 && now - this.rateWindow[0]!.atMs > 1000) this.rateWindow.shift();
    const counts = this.counts();
    const key = `${counts.total}/${counts.evicted}/${counts.view}/${counts.rate}/${counts.droppedKernel}/${counts.droppedRing}/${counts.filter}/${counts.sort.column}/${counts.sort.descending}`;
    if (key !== this.lastPushed) {
      this.lastPushed = key;
      this.emit('counts', counts);
    }
  }

  private setState(state: CaptureState): void {
    this.state = state;
    this.emit('state', state);
  }

  private emit<E extends EventName>(event: E, data: Events[E]): void {
    for (const listener of this.listeners) listener(event, data);
  }

  /** Stops capturing and releases everything; the service is unusable afterwards. */
  close(): void {
    clearInterval(this.timer);
    this.interfaceWatch?.close();
    this.interfaceWatch = null;
    this.jobs.cancelAll();
    this.stop();
    this.spool?.close();
    this.spool = null;
    this.listeners.clear();
  }
}

/** spoolExportRows reuses one row object; these are rows of their own, for callers that keep them. */
function* copiedRows(rows: Iterable<ExportRow>): Generator<ExportRow> {
  for (const row of rows) {
    const record = { ...row.record, tsNs: row.record.tsNs, data: row.record.data.slice() };
    yield {
      no: row.no,
      record,
      ifname: row.ifname,
      ...(row.rttMs === undefined ? {} : { rttMs: row.rttMs }),
      ...(row.relativeNs === undefined ? {} : { relativeNs: row.relativeNs }),
      ...(row.flags ? { flags: row.flags } : {}),
    };
  }
}

/** Where the spool starts a new segment: at each ring unit (records limit) or 1/8 of a seconds window. */
function segmentCut(limit: RingLimit): SegmentCut {
  const unit = ringUnit(limit);
  const spanNs = ringSegmentNs(limit);
  return (index, tsNs, firstTsNs) =>
    (limit.records !== undefined && index % unit === 0) || (spanNs > 0 && tsNs - firstTsNs >= spanNs);
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

function filterError(err: unknown): ServiceError {
  if (err instanceof FilterSyntaxError) return new ServiceError('filter-syntax', err.message, err.position);
  if (err instanceof FilterCancelled) return new ServiceError('bad-request', 'replaced by a newer filter');
  if (err instanceof SortCancelled)
    return new ServiceError('bad-request', 'replaced by a newer filter or sort');
  return new ServiceError('internal', errorMessage(err));
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
