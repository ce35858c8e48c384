/**
 * The capture service: owns the native session, keeps the columnar index, answers the renderer's
 * requests and pushes counts and state. Plain Node: nothing here imports Electron, so the same service
 * runs behind Electron IPC and behind the WebSocket server.
 */
import type { z } from 'zod';
import {
  type CaptureState,
  type Counts,
  type EventName,
  type Events,
  type Hello,
  type InterfaceInfo,
  type RequestName,
  RequestSchemas,
  type Results,
  type Row,
  ServiceError,
  type SourceAvailability,
  type SourceKind,
  isRequestName,
} from '../common/contract.js';
import { Ingestor } from './ingest.js';
import type { Native, NativeSession, SessionEvent } from './native.js';
import { MISC_F_HAS_ECHO, RecordStore } from './store.js';

export type EventListener = <E extends EventName>(event: E, data: Events[E]) => void;

export interface ServiceOptions {
  /** The native addon, or the reason it could not be loaded. */
  native: Native | Error;
  version: string;
  /** How often counts are pushed, in ms. */
  tickMs?: number;
}

const DIRS = ['in', 'out', 'fwd', '?'] as const;

export class CaptureService {
  readonly store = new RecordStore();
  private readonly ingestor: Ingestor;
  private readonly listeners = new Set<EventListener>();
  private session: NativeSession | null = null;
  private state: CaptureState = { state: 'idle', interfaces: [] };
  private ifnames = new Map<number, string>();
  private frozenView: number | null = null;
  private lastDrops = { kernel: 0, ring: 0 };
  private rateWindow: { atMs: number; total: number }[] = [];
  private lastPushed = '';
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly options: ServiceOptions) {
    this.ingestor = new Ingestor(this.store, (ifindex) => this.ifname(ifindex));
    this.timer = setInterval(() => this.tick(), options.tickMs ?? 250);
    this.timer.unref();
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
      case 'interfaces.list':
        return this.interfaces();
      case 'sources.probe':
        return this.probe();
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
    let session: NativeSession;
    try {
      session = native.open({ source, interfaces: params.interfaces, snaplen: params.snaplen });
      session.start(
        (batch) => this.onBatch(batch),
        (ev) => this.onSessionEvent(ev),
      );
    } catch (err) {
      this.setState({ state: 'error', interfaces: params.interfaces, source, message: errorMessage(err) });
      throw new ServiceError('capture-failed', errorMessage(err));
    }
    this.session = session;
    this.frozenView = null;
    this.setState({ state: 'running', source, interfaces: params.interfaces, startedAtMs: Date.now() });
    return this.state;
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
    this.frozenView = null;
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
      this.frozenView = this.store.length;
      this.setState({ ...this.state, state: 'paused' });
    } else {
      if (this.state.state !== 'paused') throw new ServiceError('bad-request', 'the capture is not paused');
      this.frozenView = null;
      this.setState({ ...this.state, state: 'running' });
    }
    this.tick();
    return this.state;
  }

  clear(): void {
    this.ingestor.clear();
    this.rateWindow = [];
    if (this.frozenView !== null) this.frozenView = 0;
    this.tick();
  }

  private onBatch(batch: ArrayBuffer): void {
    this.ingestor.ingest(batch);
  }

  private onSessionEvent(ev: SessionEvent): void {
    if (ev.type === 'error' || ev.type === 'interface-gone') {
      this.stop(ev.message);
    }
  }

  private readDrops(session: NativeSession): void {
    const s = session.stats();
    this.lastDrops = { kernel: s.droppedKernel, ring: s.droppedRing };
  }

  private viewLength(): number {
    return this.frozenView ?? this.store.length;
  }

  counts(): Counts {
    const now = Date.now();
    const oldest = this.rateWindow[0];
    const rate =
      oldest && now > oldest.atMs ? ((this.store.length - oldest.total) * 1000) / (now - oldest.atMs) : 0;
    return {
      total: this.store.length,
      view: this.viewLength(),
      rate: Math.max(0, Math.round(rate)),
      droppedKernel: this.lastDrops.kernel,
      droppedRing: this.lastDrops.ring,
      firstTsNs: this.store.baseNs === null ? null : this.store.baseNs.toString(),
      filter: '',
    };
  }

  rows(start: number, count: number): Results['view.rows'] {
    const view = this.viewLength();
    const end = Math.min(view, start + count);
    const rows: Row[] = [];
    for (let n = start; n < end; n++) rows.push(this.row(n));
    return { start, rows, view };
  }

  private row(index: number): Row {
    const c = this.store.chunkOf(index);
    const i = index & 0xffff;
    const meta = c.meta[i]!;
    const misc = c.misc[i]!;
    const hasEcho = (misc & MISC_F_HAS_ECHO) !== 0;
    const idSeq = c.idSeq[i]!;
    const rtt = c.rtt[i]!;
    return {
      no: index + 1,
      tsNs: ((this.store.baseNs ?? 0n) + BigInt(c.tsRel[i]!)).toString(),
      dir: DIRS[(meta >>> 16) & 3]!,
      iface: this.ingestor.interfaces.get((misc >>> 8) & 0xffff),
      family: meta >>> 24 === 6 ? 6 : 4,
      src: this.ingestor.addresses.text[c.src[i]!]!,
      dst: this.ingestor.addresses.text[c.dst[i]!]!,
      type: meta & 0xff,
      code: (meta >>> 8) & 0xff,
      id: hasEcho ? idSeq >>> 16 : null,
      seq: hasEcho ? idSeq & 0xffff : null,
      ttl: misc & 0xff,
      len: c.len[i]! & 0xffff,
      rttMs: Number.isNaN(rtt) ? null : Math.round(rtt * 1000) / 1000,
    };
  }

  private tick(): void {
    const now = Date.now();
    if (this.session) this.readDrops(this.session);
    this.rateWindow.push({ atMs: now, total: this.store.length });
    while (this.rateWindow.length > 1 && now - this.rateWindow[0]!.atMs > 1000) this.rateWindow.shift();
    const counts = this.counts();
    const key = `${counts.total}/${counts.view}/${counts.rate}/${counts.droppedKernel}/${counts.droppedRing}`;
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
    this.stop();
    this.listeners.clear();
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
