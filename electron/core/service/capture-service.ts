/**
 * The capture service: owns the native session, keeps the columnar index, answers the renderer's
 * requests and pushes counts and state. Plain Node: nothing here imports Electron, so the same service
 * runs behind Electron IPC and behind the WebSocket server.
 *
 * This file is the capture state machine (idle, starting, running, paused, stopped, error) and the path of
 * a batch into the index. Each other concern has a module of its own beside it: request dispatch
 * (dispatch.ts), spool ownership (spool-owner.ts), the ring-buffer policy (ring-policy.ts), export and open
 * jobs (file-jobs.ts), the capture rate (rates.ts) and how often the UI is told (push-throttle.ts).
 */
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
  type RequestSchemas,
  type Results,
  type RingLimit,
  type Row,
  ServiceError,
  type SortColumn,
  type SourceAvailability,
  type SourceKind,
} from '../../common/contract.js';
import { BufferSizeError, kernelBuffer } from '../kernel-buffer.js';
import type { InsightRequestName } from '../../common/insights.js';
import type { ExportRow } from '../files/index.js';
import { spoolExportRows } from '../spool-export.js';
import { checkFilter, compileFilter } from '../filter/index.js';
import { Ingestor, rowOf } from '../ingest.js';
import { recordSpan } from '../record.js';
import { JobRunner } from '../jobs.js';
import { echoLink } from '../stats/echo-link.js';
import { packetInfo } from '../../common/info.js';
import type { BatchInfo, Native, NativeSession, SessionEvent } from '../native.js';
import type { Spool } from '../spool-store.js';
import { storeFieldReader } from '../fields/store-fields.js';
import type { FieldMap } from '../fields/extract.js';
import { ProcAttribution } from '../proc/attribution.js';
import { Aggregator } from '../stats/aggregator.js';
import { SLICE_WAIT } from '../radix-sort.js';
import { View } from '../view.js';
import { CHUNK_MASK, RecordStore, hookName } from '../store.js';
import { ChunkSupply, PAGE_BUFFER_BYTES } from '../chunk-supply.js';
import { type RequestHandlers, dispatchRequest, validateRequest } from './dispatch.js';
import { errorMessage, filterError } from './errors.js';
import { type JobHost, copiedRows, openFiles, runExport, startExport } from './file-jobs.js';
import { PushThrottle } from './push-throttle.js';
import { RateMeter } from './rates.js';
import { RingPolicy } from './ring-policy.js';
import { SpoolOwner } from './spool-owner.js';

/** Least time between two `sort` progress events of one sort. */
const SORT_PROGRESS_MS = 100;
/** A batch is taken into the index at most this many records at a time (fewer while slices are slow)... */
const INGEST_SLICE_RECORDS = 1024;
/** How long the view's sorts, filters and merges hold the event loop before they yield (backgroundSliceMs). */
const VIEW_SLICE_MS = 10;
/**
 * While the capture falls behind (batches wait to be taken in), background steps wait; once they have waited
 * BACKGROUND_WAIT_MS they get a step of BEHIND_SLICE_MS.
 */
const BEHIND_SLICE_MS = 1;
const BACKGROUND_WAIT_MS = 100;
/** The capture counts as dropping for this long after its session last dropped records... */
const DROPPING_MS = 500;
/** While it drops with no batch waiting, background steps (of BEHIND_SLICE_MS) come at most this often. */
const DROPPING_STEP_MS = 10;
/** ...read from the session at most this often. */
const DROPS_READ_MS = 20;
/** ...and once it has held the event loop this long, the rest waits for the next turn (see onBatch). */
const INGEST_SLICE_MS = 10;
/** The least an ingest turn keeps when timers already worked in its iteration of the event loop (loopWork). */
const MIN_INGEST_SLICE_MS = 2;
/** Echo outcomes the statistics count a turn before a periodic push (about 100 ns each: a few ms). */
const SETTLE_SLICE = 32768;
/**
 * And the time they may take: it runs in the iteration of the ingest turn (after it), so it stays short. At a
 * capture's start, code cold and new peers' series made, SETTLE_SLICE outcomes took 11-24 ms.
 */
const SETTLE_SLICE_MS = 3;
/** Requests judged a turn while the capture is idle or stopping (about 100 ns each: a few ms). */
const JUDGE_SLICE = 32768;
/**
 * Batches that may wait behind one being taken in; past that the one under way is finished at once. A capture's
 * first batches run cold (several times slower per record), and with 4 the backlog of the first 100-300 ms
 * forced a cold batch through in one turn (47 ms at 20 M); 16 rode that out. Now above the native session's
 * bound (MAX_HELD_BATCHES, 64: the batches it hands over and the service holds, together), so a live capture
 * never gets here: only batches fed faster than that (`feed`, `deliver`) can.
 */
export const MAX_WAITING_BATCHES = 80;

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
  /**
   * The most bytes the spool's write queue may hold before live batches are dropped (and counted) because
   * the disk cannot keep up (default SPOOL_BACKLOG_MAX, 64 MiB).
   */
  spoolBacklogMax?: number;
  /** The kernel buffer of captures that name none (capture.start bufferBytes), e.g. `serve --buffer-size`. */
  bufferBytes?: number;
}

/**
 * Records as they are ingested: the bytes [byteOffset, byteOffset + byteLength) of `batch`, one ingest slice
 * (part of a batch, in order, each record once); `firstNo` is the number of their first record (1-based);
 * `firstIndex` the store index they were given, in order (`ruleMatcher` tests them there).
 */
export type RecordTap = (
  batch: ArrayBuffer,
  firstNo: number,
  ifname: (ifindex: number) => string,
  byteOffset: number,
  byteLength: number,
  firstIndex: number,
) => void;

export class CaptureService implements RequestHandlers, JobHost {
  readonly store = new RecordStore();
  /** The store's new chunks, made ahead on a worker (chunk-supply.ts). */
  private readonly chunkSupply = new ChunkSupply();
  /** @internal the parts below are the service's own; they are public for its modules (service/). */
  readonly ingestor: Ingestor;
  readonly view: View;
  readonly aggregator: Aggregator;
  readonly jobs: JobRunner;
  /** Which local process each record belongs to (live captures only: a file's processes are long gone). */
  readonly attribution = new ProcAttribution();
  readonly ifnames = new Map<number, string>();
  private readonly listeners = new Set<EventListener>();
  private session: NativeSession | null = null;
  private readonly spools: SpoolOwner;
  private state: CaptureState = { state: 'idle', interfaces: [] };
  /** performance.now() of the last batch ingested, for judging loss while idle. */
  private lastIngestAt = 0;
  private lastDrops = { kernel: 0, ring: 0 };
  private readonly rates = new RateMeter();
  private readonly push = new PushThrottle();
  private readonly timer: NodeJS.Timeout;
  private interfaceWatch: { close(): void } | null = null;
  /** The ring-buffer limit of the current capture. */
  private readonly ring = new RingPolicy();

  constructor(private readonly options: ServiceOptions) {
    this.store.supply = this.chunkSupply;
    this.spools = new SpoolOwner(options);
    this.spools.onWriteError = (spool, err) => {
      try {
        this.spoolFailed(spool, err);
      } catch {
        // A file being opened: its next batch says so (onBatch).
      }
    };
    this.ingestor = new Ingestor(this.store, (ifindex) => this.ifname(ifindex));
    this.view = new View(
      this.store,
      {
        addresses: this.ingestor.addresses,
        interfaces: this.ingestor.interfaces,
        quoted: this.ingestor.quoted,
        matchedColumns: true,
        // Display-filter tests the columns cannot answer read the record's bytes from the spool.
        fields: storeFieldReader(
          this.store,
          (offset) => (this.spool ? this.spool.read(offset) : null),
          (id) => this.ingestor.interfaces.get(id),
          (index) => this.attribution.processOf(index),
        ),
      },
      // Sorts and filters yield every 10 ms: a slice, plus the step that crosses it, stays well under the
      // 50 ms a frame of the UI (and a batch of the capture) may wait. So do merges of new records into a
      // sorted view while capturing. While the capture falls behind, every 1 ms (backgroundSliceMs).
      { sliceMs: () => this.backgroundSliceMs(VIEW_SLICE_MS), backgroundMerge: true },
    );
    this.aggregator = new Aggregator(this.ingestor);
    // Numbers in messages are formatted with the locale's grouping ('1,234,567 records written'): the first such
    // call loads ICU's number formatting, 20 ms on an idle machine and 50 ms under load, which would land in a
    // turn of the first capture or export (a 68 ms turn in a profile). Loaded here, before any capture.
    (0).toLocaleString('en');
    this.jobs = new JobRunner((job) => this.emit('job', job));
    this.timer = setInterval(() => this.loopWork(() => this.tick()), options.tickMs ?? 250);
    this.timer.unref();
  }

  get version(): string {
    return this.options.version;
  }

  get spool(): Spool | null {
    return this.spools.spool;
  }

  get capturing(): boolean {
    return this.session !== null;
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
    const request = validateRequest(method, params);
    const feature = this.featureHandlers.get(request.method);
    if (feature) return Promise.resolve(feature(request.params));
    return Promise.resolve(dispatchRequest(this, request.method, request.params, transport));
  }

  private readonly featureHandlers = new Map<RequestName, (params: unknown) => unknown>();

  /**
   * Lets a feature module (../insights) answer requests of its own: they are validated here as every
   * request is, and its events reach both transports through `publish`.
   */
  serveRequests(handlers: Partial<Record<InsightRequestName, (params: unknown) => unknown>>): void {
    for (const [name, handler] of Object.entries(handlers))
      this.featureHandlers.set(name as RequestName, handler);
  }

  publish<E extends EventName>(event: E, data: Events[E]): void {
    this.emit(event, data);
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
    const bufferBytes = params.bufferBytes ?? this.options.bufferBytes;
    let buffer;
    try {
      buffer = kernelBuffer(
        source,
        bufferBytes === undefined
          ? undefined
          : { bytes: bufferBytes, interfaces: params.interfaces, snaplen: params.snaplen },
      );
    } catch (err) {
      if (err instanceof BufferSizeError) throw new ServiceError('bad-request', err.message);
      throw err;
    }
    let session: NativeSession;
    try {
      // The new source is opened before anything of the current capture is let go.
      session = native.open({
        source,
        interfaces: params.interfaces,
        snaplen: params.snaplen,
        ...buffer,
        // The kernel-side filter (CaptureFilterSpec); addons that predate it ignore it.
        ...(params.filter ? { filter: params.filter } : {}),
      });
    } catch (err) {
      throw new ServiceError('capture-failed', errorMessage(err));
    }
    try {
      this.newSpool(params.snaplen, params.limit);
      this.ingestor.attribution = this.attribution;
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
    this.held = 0;
    this.dropsSeen = 0;
    this.droppingAt = -Infinity;
    this.setState({
      state: 'running',
      source,
      interfaces: params.interfaces,
      startedAtMs: Date.now(),
      ...this.ring.state(this.store),
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
    this.setState({
      state: 'running',
      interfaces: [],
      startedAtMs: Date.now(),
      ...this.ring.state(this.store),
    });
    return this.state;
  }

  /**
   * Takes in one batch of records (record.ts format) as a native session would deliver it (`deliver`), then
   * settles it: every record is in the index when this returns.
   */
  feed(batch: ArrayBuffer, records?: number): void {
    this.deliver(batch, records);
    this.settleIngest();
  }

  /** One batch exactly as a native session delivers it: a slow batch's rest may wait for the next turn. */
  deliver(batch: ArrayBuffer, records?: number): void {
    this.onBatch(batch, records === undefined ? undefined : { records, bytes: batch.byteLength });
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
    if (!session) {
      this.settleIngest();
      return this.state;
    }
    this.session = null;
    try {
      session.stop();
      this.readDrops(session);
    } finally {
      session.close();
    }
    this.settleIngest();
    this.view.update();
    // Loss is judged at stop: requests still waiting will get no reply in this capture.
    if (this.ingestor.echo.finish() && this.listeners.size > 0) this.emit('aggregates', this.aggregates());
    this.setState({
      ...this.state,
      state: 'stopped',
      stoppedAtMs: Date.now(),
      ...(message ? { message } : {}),
    });
    this.tick();
    return this.state;
  }

  /**
   * capture.stop from a client, or a session that ended by itself (`message`: why). The session stops delivering
   * at once; what it delivered that the index has not taken in yet (up to MAX_WAITING_BATCHES batches, behind a
   * flood) is taken in a slice a turn, the requests still waiting are judged JUDGE_SLICE a turn, then the capture
   * stops as stop() does. stop() alone does both in one turn: 100 ms and more with 16 batches waiting, 118 ms
   * for a million requests. The session stays the service's until then, so a capture.start meanwhile is refused
   * as while running.
   */
  async stopSliced(message?: string): Promise<CaptureState> {
    const session = this.session;
    session?.stop();
    while ((this.pendingIngest || this.waitingBatches.length > 0) && this.session === session) {
      this.continueSoon();
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    // Loss is judged at stop: the requests still waiting, JUDGE_SLICE a turn (stop() would judge them in one).
    let judged = false;
    while (session !== null && this.session === session && this.ingestor.echo.unjudged) {
      judged = this.ingestor.echo.finish(JUDGE_SLICE) || judged;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    if (judged && this.session === session && this.listeners.size > 0)
      this.emit('aggregates', this.aggregates());
    return this.session === session ? this.stop(message) : this.state;
  }

  pause(paused: boolean): CaptureState {
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
    this.pendingIngest = null;
    this.waitingBatches = [];
    this.ingestor.clear();
    this.ingestor.attribution = null;
    this.attribution.clear();
    this.aggregator.clear();
    this.view.clear();
    this.rates.reset();
    this.push.resetAggregates();
  }

  /** Starts a fresh capture: clears the index and replaces the spool. */
  newSpool(snaplen: number, limit?: RingLimit): void {
    if (this.jobs.busy('export')) {
      throw new ServiceError(
        'capture-failed',
        'an export is running from this capture: wait for it or cancel it',
      );
    }
    this.spools.retire();
    this.resetIndex();
    this.ifnames.clear();
    this.ring.configure(limit);
    this.spools.replace(snaplen);
  }

  private readonly recordTaps = new Set<RecordTap>();
  /** Batches the native session was last told are held here (reportHeld). */
  private held = 0;
  /** Time timers' work took since the last ingest turn (loopWork), and when the last of it ended. */
  private otherWorkMs = 0;
  private otherWorkEnd = 0;
  private readonly ifnameOf = (ifindex: number): string => this.ifname(ifindex);
  /** Batches delivered while one was still being taken in (see onBatch), in order. */
  private waitingBatches: { batch: ArrayBuffer; info?: BatchInfo }[] = [];
  /** A push of the aggregates waits for the statistics to count what they hold (see pushAggregates). */
  private pushingAggregates = false;
  /** A turn of judgeIdle is scheduled. */
  private judgingIdle = false;
  /** A turn of ingestSlices is scheduled. */
  private continuing = false;
  /** Records per ingest slice, adapted to how long slices take (see ingestSlices). */
  private sliceRecords = 128;
  /** The batch the index is still taking in (see onBatch), from byte `byteAt` and record `recordAt` on. */
  private pendingIngest: {
    spool: Spool;
    batch: ArrayBuffer;
    view: DataView;
    offsets: Float64Array;
    byteAt: number;
    recordAt: number;
    firstNo: number;
  } | null = null;

  /** Sees every record as it is ingested, a slice at a time (alerts, insights); returns its remover. */
  tapRecords(tap: RecordTap): () => void {
    this.recordTaps.add(tap);
    return () => this.recordTaps.delete(tap);
  }

  private readonly catchUps = new Set<() => Promise<void> | null>();

  /**
   * Lets a tap that works on another thread (the insights worker) hold back a file being opened while it is far
   * behind: `behind` returns a promise that ends when it has caught up, or null. Returns its remover.
   */
  addCatchUp(behind: () => Promise<void> | null): () => void {
    this.catchUps.add(behind);
    return () => this.catchUps.delete(behind);
  }

  /** A promise while a tap is far behind (see addCatchUp), else null. */
  tapsBehind(): Promise<void> | null {
    for (const behind of this.catchUps) {
      const waiting = behind();
      if (waiting !== null) return waiting;
    }
    return null;
  }

  /**
   * Takes a batch into the spool, the index, the statistics and the view, as a native session delivers it, in
   * the service's own turns (continueSoon): the spool takes it whole; the index takes it in slices (up to
   * INGEST_SLICE_RECORDS, fewer while slices are slow). Once a turn has held the event loop for INGEST_SLICE_MS
   * (less what timers took in the same iteration: loopWork), the rest waits for the next turn, and batches
   * arriving meanwhile wait behind it, in order. At most MAX_WAITING_BATCHES wait: past that the service finishes
   * the batch under way at once to make room (a native session rarely gets there: see reportHeld).
   */
  onBatch(batch: ArrayBuffer, info?: BatchInfo): void {
    // Every batch is taken in by the service's own turn (continueSoon), a slice a turn: a slice here as well
    // would stack two in one turn of the event loop (a native session delivers in the loop's poll phase, the
    // service's turn follows in the same iteration: 20 ms and more, not 10). Past MAX_WAITING_BATCHES the
    // batch under way is finished now (one batch's work, not the backlog's) to make room; a native session
    // rarely gets there, since the batches held here count against its bounded queue (reportHeld).
    if (this.waitingBatches.length >= MAX_WAITING_BATCHES) this.ingestSlices(Infinity, true);
    this.waitingBatches.push({ batch, info });
    this.continueSoon();
    this.reportHeld();
  }

  /**
   * Tells the native session how many delivered batches wait here: they count against its bounded queue, so
   * while the service is behind, the reader leaves records in the kernel ring (counted there when it is full)
   * instead of handing over batches faster than they can be taken in.
   */
  /** Delivered batches not yet taken in whole (what reportHeld tells the native session). */
  get heldBatches(): number {
    return this.waitingBatches.length + (this.pendingIngest ? 1 : 0);
  }

  private reportHeld(): void {
    const held = this.heldBatches;
    if (held === this.held) return;
    this.held = held;
    this.session?.hold(held);
  }

  /** The spool takes the batch (checked against the ring, the disk and the cap); the index takes it next. */
  private takeBatch(batch: ArrayBuffer, info?: BatchInfo): void {
    const spool = this.spool;
    if (!spool) return;
    const records = info?.records ?? Math.ceil(batch.byteLength / 72);
    const from = this.store.length;
    const overflow = this.ring.overflow(this.store, records);
    if (overflow) {
      queueMicrotask(() => this.stop(overflow));
      return;
    }
    if (this.spools.guard.failed) {
      // The capture is stopping: nothing more can be kept. A file being opened fails with the reason.
      const failed = this.spools.guard.failed;
      if (this.state.source === 'file' && this.state.state === 'starting' && failed !== 'over the cap')
        throw new Error(failed);
      return;
    }
    if (this.state.source !== 'file' && !this.spools.admit(spool, batch.byteLength, records)) {
      this.diskBehind();
      return;
    }
    let offsets: Float64Array;
    try {
      // The locations are the spool's own array, valid until its next append: the index takes them first.
      offsets = spool.append(batch, records, (ifindex) => this.ifname(ifindex), from, this.ring.segmentCut);
    } catch (err) {
      // A full or failing disk: the records already spooled stay readable; the capture stops, the service serves.
      this.spoolFailed(spool, err);
      return;
    }
    const over = this.spools.guard.overCap(spool);
    if (over) queueMicrotask(() => this.stop(over));
    this.pendingIngest = {
      spool,
      batch,
      view: new DataView(batch),
      offsets,
      byteAt: 0,
      recordAt: 0,
      firstNo: from + 1,
    };
  }

  /**
   * Runs `work`, a timer's (the statistics tick, the insights' push), and counts its time against the next
   * ingest turn, which follows in the same iteration of the event loop: the two together stay within one
   * slice's budget instead of stacking.
   */
  loopWork<T>(work: () => T): T {
    const start = performance.now();
    if (start - this.otherWorkEnd > INGEST_SLICE_MS) this.otherWorkMs = 0; // an earlier iteration's
    try {
      return work();
    } finally {
      this.otherWorkEnd = performance.now();
      this.otherWorkMs += this.otherWorkEnd - start;
    }
  }

  /** Runs ingestSlices in the next turn (once, however often asked). */
  private continueSoon(): void {
    if (this.continuing) return;
    this.continuing = true;
    setImmediate(() => {
      this.continuing = false;
      // What timers did in this iteration comes off this turn's budget (at least MIN_INGEST_SLICE_MS is left:
      // the capture keeps moving).
      // (Work that ended longer ago than a slice was an earlier iteration's: idle ticks do not count.)
      const now = performance.now();
      const other = now - this.otherWorkEnd < INGEST_SLICE_MS ? this.otherWorkMs : 0;
      const budget = Math.max(MIN_INGEST_SLICE_MS, INGEST_SLICE_MS - other);
      this.otherWorkMs = 0;
      try {
        this.ingestSlices(now + budget);
      } catch (err) {
        this.pendingIngest = null;
        this.waitingBatches = [];
        this.stop(`a batch of records could not be read: ${errorMessage(err)}`);
      }
    });
  }

  /**
   * Takes in the batch under way and then the waiting ones until `deadline` (performance.now()); what is left
   * waits for the next turn.
   */
  private ingestSlices(deadline: number, oneBatch = false): void {
    try {
      this.ingestSlicesUntil(deadline, oneBatch);
    } finally {
      this.reportHeld();
    }
  }

  private ingestSlicesUntil(deadline: number, oneBatch: boolean): void {
    for (;;) {
      let p = this.pendingIngest;
      if (!p) {
        const next = this.waitingBatches.shift();
        if (!next) return;
        this.takeBatch(next.batch, next.info);
        p = this.pendingIngest;
        if (!p) continue;
      }
      while (p.byteAt < p.batch.byteLength) {
        const sliceStart = performance.now();
        const span = recordSpan(p.view, p.byteAt, this.sliceRecords);
        const from = this.store.length;
        const at = p.byteAt;
        const firstNo = p.firstNo + p.recordAt;
        p.byteAt += span.bytes;
        try {
          this.ingestor.ingest(p.batch, p.offsets.subarray(p.recordAt), at, span.bytes);
        } catch (err) {
          // A malformed batch: what came before it stays; nothing after it in this batch can be read.
          this.pendingIngest = null;
          throw err;
        }
        p.recordAt += span.records;
        // Aggregates stay cumulative over the whole capture, evicted records included.
        this.aggregator.update(this.store, from, this.store.length);
        this.lastIngestAt = performance.now();
        if (this.ring.limit && this.ring.apply(this.store, p.spool, this.view)) {
          if (this.state.state === 'running' || this.state.state === 'paused')
            this.setState({ ...this.state, ...this.ring.state(this.store) });
        }
        // While paused the view stays as it was: capture goes on, the table holds still.
        if (this.state.state !== 'paused') this.view.update();
        // The taps (insights, alerts) take their part within the slice, so the slice's length counts them too.
        for (const tap of this.recordTaps) tap(p.batch, firstNo, this.ifnameOf, at, span.bytes, from);
        // Slices of about 1-4 ms: fewer records while code is cold or peers are new, more once it runs fast.
        const now = performance.now();
        if (now - sliceStart < 1 && this.sliceRecords < INGEST_SLICE_RECORDS) this.sliceRecords *= 2;
        else if (now - sliceStart > 4 && this.sliceRecords > 64) this.sliceRecords >>= 1;
        // As runSliced: the turn ends before the next slice, as long as this one, would carry it past the deadline.
        if (p.byteAt < p.batch.byteLength && now + (now - sliceStart) >= deadline) {
          this.continueSoon();
          return;
        }
      }
      this.pendingIngest = null;
      if (oneBatch) return;
      if (this.waitingBatches.length > 0 && performance.now() >= deadline) {
        this.continueSoon();
        return;
      }
    }
  }

  /**
   * How long a background step (a sort, filter or merge of the view, an export) may hold the event loop now:
   * `normal` while the capture keeps up. While batches wait to be taken in (two or more), SLICE_WAIT (no step
   * now), and BEHIND_SLICE_MS once it has waited BACKGROUND_WAIT_MS; while the session drops records with no
   * batch waiting, the same once it has waited DROPPING_STEP_MS. The capture comes first: a record the kernel's
   * ring drops is lost, an export that takes longer is not. At 500 k records/s, an export and a sort given 1 ms
   * a turn while batches waited still took enough of the thread that the capture lost a quarter of its records.
   */
  backgroundSliceMs(normal: number): number {
    // Batches wait: background work waits while ingest works through them, but never longer than
    // BACKGROUND_WAIT_MS at a time, so an export still ends under a capture that stays behind. Dropping with no
    // batch waiting: a step every DROPPING_STEP_MS. Waiting altogether then starved an export for minutes under
    // a capture that drops a little all along; a step every turn gave it half the thread, as turns are short
    // when few batches come.
    const now = performance.now();
    const every = this.heldBatches >= 2 ? BACKGROUND_WAIT_MS : this.dropping(now) ? DROPPING_STEP_MS : 0;
    if (every === 0) return normal;
    if (now - this.backgroundRanAt < every) return SLICE_WAIT;
    this.backgroundRanAt = now;
    return BEHIND_SLICE_MS;
  }

  /** When background work was last let run while the capture was behind (backgroundSliceMs). */
  private backgroundRanAt = 0;
  /** The session's drops (kernel and ring) as last read by `dropping`, when, and when they last grew. */
  private dropsSeen = 0;
  private dropsReadAt = -Infinity;
  private droppingAt = -Infinity;

  /**
   * Whether the session dropped records within the last DROPPING_MS. Waiting batches alone do not tell that
   * the capture is behind: when the reader thread itself cannot run (the export's writes and the collector's
   * threads have the CPUs), few batches come, none waits, and the kernel's ring overflows while the export runs
   * at full speed (ingest-load bench: 180-340 k of 500 k records/s taken in, the rest dropped, with at most
   * one batch waiting).
   */
  private dropping(now: number): boolean {
    const session = this.session;
    if (session === null) return false;
    if (now - this.dropsReadAt >= DROPS_READ_MS) {
      this.dropsReadAt = now;
      const s = session.stats();
      const drops = s.droppedKernel + s.droppedRing;
      if (drops > this.dropsSeen) this.droppingAt = now;
      this.dropsSeen = drops;
    }
    return now - this.droppingAt < DROPPING_MS;
  }

  /** Takes in whatever is still waiting, now (before a stop, or for callers that read at once). */
  settleIngest(): void {
    this.ingestSlices(Infinity);
  }

  details(no: number): Results['record.details'] {
    const index = no - 1;
    if (index < this.store.firstIndex && this.spool) {
      throw new ServiceError(
        'not-found',
        `record ${no} fell out of the ring buffer (keeping the newest ${this.ring.text(this.store)}; records 1 to ` +
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
    const rec = this.spool.read(c.spool.at(i));
    return {
      row: this.row(index),
      bytesHex: Buffer.from(rec.data.buffer, rec.data.byteOffset, rec.data.byteLength).toString('hex'),
      origLen: rec.origLen,
      capLen: rec.capLen,
      hook: hookName(c.misc[i]!),
      tsNs: rec.tsNs.toString(),
    };
  }

  recordMatcher(filter: string): (index: number) => boolean {
    let test;
    try {
      test = this.indexMatcher(filter);
    } catch (err) {
      throw filterError(err);
    }
    return (index) => test(index) === true;
  }

  /**
   * A display filter tested on stored records from the index's columns, as the table's filter tests them: an
   * alert rule's filter on each record as it is taken in (alerts/engine.ts), without decoding every field.
   * Tests the columns cannot answer read `fields(index)`. The matcher answers null for a record not in the
   * store (evicted); null for a filter the service cannot compile.
   */
  ruleMatcher(
    filter: string,
    fields: (index: number) => FieldMap | null,
  ): ((index: number) => boolean | null) | null {
    try {
      return this.indexMatcher(filter, fields);
    } catch {
      return null;
    }
  }

  /** `filter` compiled on the index (throws FilterSyntaxError); the test answers null off the store. */
  private indexMatcher(
    filter: string,
    fields?: (index: number) => FieldMap | null,
  ): (index: number) => boolean | null {
    const compiled = compileFilter(filter, {
      addresses: this.ingestor.addresses,
      interfaces: this.ingestor.interfaces,
      quoted: this.ingestor.quoted,
      matchedColumns: true,
      ...(fields ? { fields } : {}),
    });
    if (compiled === null) return () => true;
    return (index) => {
      if (!this.store.has(index)) return null;
      return compiled.matches(this.store.chunkOf(index), index & CHUNK_MASK, index - (index & CHUNK_MASK));
    };
  }

  /** The records at `indices` as exports carry them (bytes from the spool): for writers that stream (CLI -w). */
  recordRows(indices: Iterable<number>): Iterable<ExportRow> {
    return this.spool
      ? copiedRows(
          spoolExportRows(this.store, this.ingestor, this.spool, indices, (i) =>
            this.attribution.processOf(i),
          ),
        )
      : [];
  }

  startExport(p: z.output<(typeof RequestSchemas)['export.start']>): number {
    return startExport(this, p);
  }

  /** Exports the records at `indices` (in that order) as a job; returns the job id. */
  runExport(format: ExportFormat, path: string, indices: Iterable<number>, total: number): number {
    return runExport(this, format, path, indices, total);
  }

  openFile(paths: string[], label: string, leftover = false): number {
    return openFiles(this, paths, label, leftover);
  }

  /** Spools of icmpcap processes that ended without cleaning up, newest first. */
  leftoverSpools(): Promise<LeftoverSpoolInfo[]> {
    return this.spools.leftovers();
  }

  /** Opens a leftover spool as the current capture: its segments are read as one file would be. */
  async openLeftover(id: string): Promise<number> {
    const spool = await this.spools.findLeftover(id);
    return this.openFile(spool.segments, `the capture of ${new Date(spool.startedAtMs).toISOString()}`, true);
  }

  cleanSpools(id: string | undefined): Promise<string[]> {
    return this.spools.clean(id);
  }

  /** A live batch was dropped because the disk is not keeping up: the state says so the first time. */
  private diskBehind(): void {
    if (this.state.message || (this.state.state !== 'running' && this.state.state !== 'paused')) return;
    this.setState({
      ...this.state,
      message:
        'The disk holding the spool cannot keep up: records are being dropped (counted with the ring drops) ' +
        'while it catches up. Point XDG_CACHE_HOME at a faster disk, or narrow the capture with a filter.',
    });
  }

  /** The spool could not be written: stop capturing, say what happened and what is kept. */
  private spoolFailed(spool: Spool, err: unknown): void {
    const message = this.spools.failure(spool, err, this.store.live);
    if (message === null) return;
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
        // Sliced as a client's stop is: what was delivered is taken in, the requests left are judged.
        queueMicrotask(() => void this.stopSliced(ev.type === 'stopped' ? undefined : ev.message));
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
    return {
      total: this.store.live,
      evicted: this.store.firstIndex,
      view: this.viewLength(),
      rate: this.rates.rate(Date.now(), this.store.length),
      droppedKernel: this.lastDrops.kernel,
      droppedRing: this.lastDrops.ring + this.spools.dropped,
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
    const proc = this.attribution.processOf(index);
    if (proc) row.proc = proc;
    if (!this.spool) return row;
    try {
      const rec = this.spool.read(this.store.chunkOf(index).spool.at(index & CHUNK_MASK));
      row.info = packetInfo(rec.data, row);
    } catch {
      // The bytes are unreadable (a spool error is reported where it happens): the table shows the type.
    }
    return row;
  }

  async setFilter(filter: string): Promise<Results['view.setFilter']> {
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

  private sortsRunning = 0;

  /** view.setSort: sorts in slices (view.ts), telling every window how far it has got (`sort` events). */
  async setSort(column: SortColumn | null, descending: boolean): Promise<Results['view.setSort']> {
    const progress = (fraction: number): void => this.emit('sort', { column, descending, fraction });
    progress(0);
    this.sortsRunning++;
    // Slices are short: a few updates a second are enough for a progress bar (and cheaper for every window).
    let lastAt = performance.now();
    try {
      await this.view.setSortAsync(column, descending, (p) => {
        const now = performance.now();
        if (p.fraction >= 1 || now - lastAt < SORT_PROGRESS_MS) return;
        lastAt = now;
        progress(p.fraction);
      });
      this.tick();
      return { view: this.view.length };
    } catch (err) {
      throw filterError(err);
    } finally {
      this.sortsRunning--;
      progress(1);
    }
  }

  /** view.cancelSort: stops the sorts under way; the view keeps its order. */
  cancelSort(): Results['view.cancelSort'] {
    const cancelled = this.sortsRunning > 0;
    this.view.cancelSort();
    return { cancelled };
  }

  /** The first `count` record indices of the current view, in view order. */
  viewIndices(count: number): number[] {
    const n = Math.min(count, this.view.length);
    return Array.from({ length: n }, (_, p) => this.view.indexAt(p));
  }

  /** The per-process summary (`procs.summary`): the records attributed to local processes. */
  processSummary(): Promise<Results['procs.summary']> {
    return this.attribution.summary.rows(this.store);
  }

  aggregates(): Results['stats.get'] {
    const c = this.counts();
    return this.aggregator.aggregates({
      rate: c.rate,
      droppedKernel: c.droppedKernel,
      droppedRing: c.droppedRing,
    });
  }

  tick(): void {
    const now = Date.now();
    // The chunks a new capture or a ring buffer did not reuse go a few at a time (store.ts).
    this.store.releaseSpares();
    this.spools.syncIfDue(now, (spool, err) => {
      try {
        this.spoolFailed(spool, err);
      } catch {
        // A file being opened: its next batch says so (onBatch).
      }
    });
    void this.view.settleSoon();
    if (this.push.aggregatesDue(now, this.store.length) && this.listeners.size > 0) this.pushAggregates();
    if (this.session) {
      this.readDrops(this.session);
      if (!this.judgingIdle) this.judgeIdle(false);
    }
    this.rates.sample(now, this.store.length);
    const counts = this.counts();
    if (this.push.countsChanged(counts)) this.emit('counts', counts);
  }

  /**
   * Pushes the aggregates once the statistics have counted what they hold, SETTLE_SLICE outcomes a turn (see
   * Aggregator.settleSome): counting them all in the tick's turn was most of the longest turns at 20 M records.
   */
  private pushAggregates(): void {
    if (this.pushingAggregates) return;
    this.pushingAggregates = true;
    const step = (): void => {
      const aggregator = this.aggregator;
      if (!aggregator.settleSome(SETTLE_SLICE, performance.now() + SETTLE_SLICE_MS)) {
        // Counted against the ingest turn of the same iteration, as the tick is (loopWork).
        setImmediate(() => this.loopWork(step));
        return;
      }
      this.pushingAggregates = false;
      if (this.listeners.size > 0) this.emit('aggregates', this.aggregates());
    };
    step();
  }

  /**
   * Loss against the clock while idle (nothing arrives from a dead host): the requests whose wait is over are
   * judged, JUDGE_SLICE a turn (a flood of unanswered requests that stops leaves a million waiting: 118 ms in
   * one turn); the statistics are pushed once they all are.
   */
  private judgeIdle(judgedBefore: boolean): void {
    if (!this.session) return;
    const echo = this.ingestor.echo;
    const idleNs = (performance.now() - this.lastIngestAt) * 1e6;
    const judged = echo.advanceIdle(idleNs, JUDGE_SLICE) || judgedBefore;
    if (echo.idleDue(idleNs)) {
      this.judgingIdle = true;
      setImmediate(() =>
        this.loopWork(() => {
          this.judgingIdle = false;
          this.judgeIdle(judged);
        }),
      );
      return;
    }
    // Pushed as the tick pushes (sliced, at most every 500 ms): under a flood this judges a few requests every
    // tick, and a push of its own each time counted every outcome and listed every peer in one turn, twice as
    // often as the periodic push. Idle, it is the only news: the push says the dead host's requests are lost.
    if (!judged) return;
    this.push.outcomesChanged();
    if (this.listeners.size > 0 && this.push.aggregatesDue(Date.now(), this.store.length))
      this.pushAggregates();
  }

  setState(state: CaptureState): void {
    this.state = state;
    this.emit('state', state);
  }

  private emit<E extends EventName>(event: E, data: Events[E]): void {
    for (const listener of this.listeners) listener(event, data);
  }

  /**
   * Starts the worker that makes the store's chunks ahead and has it make them now, instead of at the first
   * capture's second chunk (warm-up.ts: so that the worker's start does not compete with a capture's first
   * second). Resolves with the chunks ready once they all are (or after `timeoutMs`). A later close stops it
   * as ever.
   */
  prepareChunks(timeoutMs?: number): Promise<number> {
    return this.chunkSupply.readyChunks(undefined, timeoutMs);
  }

  /**
   * A new buffer of at least `bytes` for records on their way to a worker (the insights' stages): one whose
   * pages the chunk worker has faulted in when one is ready and `bytes` is at most PAGE_BUFFER_BYTES, else a
   * fresh one.
   */
  pageBuffer(bytes: number): ArrayBuffer {
    return (bytes <= PAGE_BUFFER_BYTES ? this.chunkSupply.takeBuffer() : undefined) ?? new ArrayBuffer(bytes);
  }

  /** Stops capturing and releases everything; the service is unusable afterwards. */
  close(): void {
    clearInterval(this.timer);
    this.interfaceWatch?.close();
    this.interfaceWatch = null;
    this.jobs.cancelAll();
    this.stop();
    this.pendingIngest = null;
    this.waitingBatches = [];
    this.spools.close();
    this.chunkSupply.close();
    this.store.supply = null;
    this.listeners.clear();
  }
}
