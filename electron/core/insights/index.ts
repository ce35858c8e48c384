/**
 * Problems, Paths, Neighbours and Alerts for the UI: the answer and neighbour health engines (engines.ts) fed
 * from the service's record tap on a worker thread of their own (worker.ts), the alert engine on the service's
 * thread (its rules' filters read the service's index); their results served over the contract
 * (electron/common/insights.ts) and pushed at most twice a second while they change, as the service pushes its
 * aggregates.
 *
 *   const insights = attachInsights(service, { alerts: flagValues });   // serve, the Electron main process
 *
 * A capture that starts again (new capture, Clear, an opened file: frame numbers start over at 1) starts
 * every engine over. Requests are answered once the worker has taken in every record tapped before them.
 */
import { mkdirSync } from 'node:fs';
import type { Worker } from 'node:worker_threads';
import type { z } from 'zod';
import {
  type AlertFiring,
  type InsightRequestName,
  type InsightRequestSchemas,
  MAX_FIRINGS,
} from '../../common/insights.js';
import { AlertRunner, type AlertEvent } from '../alerts/index.js';
import { snapshotName } from '../alerts/actions.js';
import { type AlertFlagValues, alertsFile, snapshotDir } from '../alerts/cli.js';
import type { NeighbourOptions } from '../neighbours/health.js';
import { OFF, REC_F_PAD, alignRecord, forEachRecord } from '../record.js';
import { CachedDecoder } from './decode.js';
import type { CaptureService } from '../service.js';
import { AlertRuleStore, checkRule } from './alert-rules.js';
import { firingInfo } from './convert.js';
import { type HealthSettings, healthOptions } from './engines.js';
import { GatewayTable } from './gateways.js';
import { startWorker } from '../workers.js';
import type { EngineRequest, FromWorker, ToWorker, WorkerSetup } from './worker-protocol.js';

export interface InsightsOptions {
  /** The alert flags of the command line (`--alert`, `--no-alert-file`, `--alert-dir`, `--alert-commands`). */
  alerts?: AlertFlagValues;
  /** How often changes are pushed, ms (default 500). */
  pushMs?: number;
  /** Learning period of neighbour health, s (default 30). */
  learnSeconds?: number;
  /** Where the rules file is (default $XDG_CONFIG_HOME/icmpcap/alerts.conf). */
  rulesFile?: string;
  log?: (line: string) => void;
  /** Bytes that may wait for the worker before a live capture goes on without it (default MAX_QUEUED_BYTES). */
  maxQueuedBytes?: number;
  /** Bytes waiting for the worker past which a file being opened waits for it (default OPEN_QUEUED_BYTES). */
  openQueuedBytes?: number;
}

type Params<M extends InsightRequestName> = z.output<(typeof InsightRequestSchemas)[M]>;

/**
 * Bytes of records sent to the worker and not taken in yet, past which a live capture's records go on without
 * the insights (counted, and said in the log) rather than pile up in memory: the worker takes in a record in a
 * fraction of the service's time, so only a flood faster than any link gets there.
 */
export const MAX_QUEUED_BYTES = 64 << 20;
/** While a file is opened, the open waits for the worker once this many bytes wait for it. */
const OPEN_QUEUED_BYTES = 8 << 20;
/** The records of a turn's slices go to the worker in one message of up to this many bytes. */
const STAGE_BYTES = 1 << 20;
/** Buffers kept for reuse. */
const MAX_SPARE = 8;
/** Worker failures in a row (none taking a batch in between) after which the insights stay off. */
const MAX_FAILURES = 3;

export class Insights {
  private firings: AlertFiring[] = [];
  private firingIds = 0;
  private runner: AlertRunner | null = null;
  private readonly rules: AlertRuleStore;
  private healthSettings: HealthSettings = {};
  private readonly gateways = new GatewayTable();
  /** The alert engine's decoder (every record is decoded for it while rules are set). */
  private readonly decoder = new CachedDecoder();
  private lastNo = 0;
  private readonly offTap: () => void;
  private readonly offEvents: () => void;
  private readonly offCatchUp: () => void;
  private readonly log: (line: string) => void;
  private worker!: Worker;
  /** Interface names sent to the worker. */
  private sentNames = new Map<number, string>();
  /** Bytes sent to the worker and not taken in yet. */
  private queuedBytes = 0;
  /** Records not sent to the worker since it fell MAX_QUEUED_BYTES behind (said once it catches up). */
  private skipped = 0;
  private nextId = 0;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  /** Resolved when the worker's backlog is under OPEN_QUEUED_BYTES / 2 again. */
  private drained: { promise: Promise<void>; resolve(): void } | null = null;
  private closed = false;
  /** Records gathered for the worker this turn: `staged` bytes of `stage`, frames from `stageFirstNo`. */
  private stage: Uint8Array | null = null;
  private staged = 0;
  private stageFirstNo = 0;
  /** The frame number the next slice continues the stage with. */
  private stageNextNo = 0;
  private stageFile = false;
  private stageNames: [number, string][] = [];
  private sendScheduled = false;
  /** Buffers the worker handed back (reused for the next stages). */
  private spare: ArrayBuffer[] = [];
  /** Scratch: the interfaces of a slice. */
  private readonly seenIfs = new Int32Array(16);
  /** Worker failures in a row without a batch taken in: past MAX_FAILURES the insights stay off (`off`). */
  private failures = 0;
  private off: string | null = null;

  constructor(
    private readonly service: CaptureService,
    private readonly opts: InsightsOptions = {},
  ) {
    this.log = opts.log ?? ((l) => process.stderr.write(`${l}\n`));
    const flags = opts.alerts ?? {};
    this.rules = new AlertRuleStore(
      opts.rulesFile ?? alertsFile(),
      flags.alert ?? [],
      !flags['no-alert-file'],
    );
    this.spawn();
    this.rebuildRunner();
    this.offTap = service.tapRecords((batch, firstNo, ifname, byteOffset, byteLength, firstIndex) =>
      this.onBatch(batch, firstNo, ifname, byteOffset, byteLength, firstIndex),
    );
    this.offCatchUp = service.addCatchUp(() => this.caughtUp());
    // Clear empties the capture without a new batch: the answers go with it.
    this.offEvents = service.on((event, data) => {
      if (event === 'counts' && (data as { total: number }).total === 0 && this.lastNo > 0) this.reset();
    });
    service.serveRequests({
      'problems.list': () => this.ask({ method: 'problems.list' }),
      'paths.list': () => this.ask({ method: 'paths.list' }),
      'neighbours.get': () => this.ask({ method: 'neighbours.get' }),
      'neighbours.configure': (p) => this.configure(p as Params<'neighbours.configure'>),
      'alerts.rules': () => this.rules.info(),
      'alerts.check': (p) => (p as Params<'alerts.check'>).rules.map((t) => checkRule(t).check),
      'alerts.setRules': (p) => this.setRules(p as Params<'alerts.setRules'>),
      'alerts.firings': () => this.firings,
    });
  }

  /** Starts the worker (again, after it failed: its engines start over, as after Clear). */
  private spawn(): void {
    const setup: WorkerSetup = {
      pushMs: this.opts.pushMs ?? 500,
      learnSeconds: this.opts.learnSeconds ?? 30,
    };
    const worker = startWorker(import.meta.url, './worker', setup);
    this.worker = worker;
    this.sentNames = new Map();
    this.queuedBytes = 0;
    this.stage = null;
    this.staged = 0;
    this.stageNames = [];
    // A replaced worker's last messages (counts of a backlog that went with it) are not this one's.
    worker.on('message', (message: FromWorker) => {
      if (this.worker === worker) this.onMessage(message);
    });
    const failed = (why: string): void => {
      if (this.worker !== worker || this.closed || this.off !== null) return;
      this.log(`icmpcap insights: the worker stopped (${why}); Problems, Paths and Neighbours start over`);
      for (const p of this.pending.values()) p.reject(new Error(`the insights worker stopped: ${why}`));
      this.pending.clear();
      this.settleDrained();
      void worker.terminate();
      if (++this.failures >= MAX_FAILURES) {
        this.off = why;
        this.log(`icmpcap insights: the worker failed ${this.failures} times in a row; they stay off`);
        return;
      }
      this.spawn();
    };
    worker.on('error', (err) => failed(err.message));
    worker.on('exit', (code) => failed(`exit code ${code}`));
    // The service's own handles keep the process alive; the worker alone does not.
    worker.unref();
    const settings = this.healthSettings;
    if (settings.allowRouters !== undefined || settings.learnSeconds !== undefined)
      this.post({ t: 'request', id: -1, request: { method: 'neighbours.configure', params: settings } });
  }

  private post(message: ToWorker, transfer?: ArrayBuffer[]): void {
    if (this.off === null) this.worker.postMessage(message, transfer);
  }

  private onMessage(message: FromWorker): void {
    switch (message.t) {
      case 'done': {
        this.failures = 0;
        this.queuedBytes -= message.bytes;
        const buffer = message.buffer;
        if (buffer !== undefined && buffer.byteLength >= STAGE_BYTES && this.spare.length < MAX_SPARE)
          this.spare.push(buffer);
        if (this.queuedBytes < this.openQueuedBytes / 2) this.settleDrained();
        if (this.queuedBytes === 0 && this.skipped > 0) {
          this.log(
            `icmpcap insights: ${this.skipped.toLocaleString('en')} records were not analysed for Problems, ` +
              'Paths and Neighbours: the capture came faster than they could follow (every record is captured)',
          );
          this.skipped = 0;
        }
        return;
      }
      case 'reply':
      case 'failed': {
        const p = this.pending.get(message.id);
        if (p === undefined) return;
        this.pending.delete(message.id);
        if (this.pending.size === 0 && this.drained === null) this.worker.unref();
        if (message.t === 'reply') p.resolve(message.value);
        else p.reject(new Error(message.message));
        return;
      }
      case 'push':
        this.service.loopWork(() => {
          if (message.problems) this.service.publish('problems', message.problems);
          if (message.paths) this.service.publish('paths', message.paths);
          if (message.neighbours) this.service.publish('neighbours', message.neighbours);
        });
        return;
      case 'log':
        this.log(message.line);
        return;
    }
  }

  /** The worker's answer, once it has taken in every record sent before. */
  private ask(request: EngineRequest): Promise<unknown> {
    if (this.off !== null)
      return Promise.reject(
        new Error(
          `Problems, Paths and Neighbours are unavailable: their worker failed (${this.off}); restart icmpcap`,
        ),
      );
    return this.request({ t: 'request', id: this.nextId++, request });
  }

  /** Posts a request or sync; a pending one keeps the process alive until the worker answers. */
  private request(message: ToWorker & { id: number }): Promise<unknown> {
    // Answered with every record tapped so far.
    this.sendStage();
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0 && this.drained === null) this.worker.ref();
      this.pending.set(message.id, { resolve, reject });
      this.post(message);
    });
  }

  private settleDrained(): void {
    const d = this.drained;
    this.drained = null;
    if (d !== null && this.pending.size === 0) this.worker.unref();
    d?.resolve();
  }

  /** Bytes waiting for the worker past which a file being opened waits for it. */
  private get openQueuedBytes(): number {
    return this.opts.openQueuedBytes ?? OPEN_QUEUED_BYTES;
  }

  /** A promise while the worker is openQueuedBytes behind (a file being opened waits for it), else null. */
  private caughtUp(): Promise<void> | null {
    // Off: nothing will ever catch up, and nothing needs to.
    if (this.off !== null || this.queuedBytes < this.openQueuedBytes) return null;
    if (this.drained === null) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.drained = { promise, resolve };
      // What the open waits for keeps the process alive (the worker alone does not): with no other handle, the
      // process would end with the open half done (exit code 13 of an unsettled top-level await in a bench).
      this.worker.ref();
    }
    return this.drained.promise;
  }

  /** Every engine starts over (a new capture, Clear, an opened file). Firings stay: they happened. */
  private reset(): void {
    this.lastNo = 0;
    this.sendStage();
    this.post({ t: 'reset' });
    if (this.runner) this.rebuildRunner();
  }

  private neighbourOptions(): NeighbourOptions {
    return healthOptions(this.healthSettings, this.opts.learnSeconds ?? 30, this.gateways);
  }

  private rebuildRunner(): void {
    const rules = this.rules.rules();
    if (rules.length === 0) {
      this.runner = null;
      return;
    }
    const flags = this.opts.alerts ?? {};
    const needsDir = rules.some((r) => r.snapshotSeconds !== null);
    const dir = flags['alert-dir'] ?? snapshotDir();
    let snapshots = needsDir;
    if (needsDir) {
      try {
        mkdirSync(dir, { recursive: true });
      } catch (err) {
        snapshots = false;
        this.log(
          `icmpcap alerts: no snapshots: cannot create ${dir} (${String(err)}); give one with --alert-dir`,
        );
      }
    }
    const byText = new Map(rules.map((r) => [r.text, r]));
    this.runner = new AlertRunner(snapshots ? rules : rules.map((r) => ({ ...r, snapshotSeconds: null })), {
      ...(snapshots ? { snapshotDir: dir } : {}),
      allowCommands: flags['alert-commands'] === true,
      neighbours: this.neighbourOptions(),
      log: this.log,
      matcher: (filter, fields) => this.service.ruleMatcher(filter, fields),
      onEvent: (ev: AlertEvent) => {
        const rule = byText.get(ev.text);
        const snapshot = snapshots && rule && rule.snapshotSeconds !== null ? snapshotName(rule, ev) : null;
        const firing = firingInfo(ev, ++this.firingIds, snapshot);
        this.firings.push(firing);
        if (this.firings.length > MAX_FIRINGS) this.firings.shift();
        this.service.publish('alert.fired', firing);
      },
    });
  }

  private onBatch(
    batch: ArrayBuffer,
    firstNo: number,
    ifname: (ifindex: number) => string,
    byteOffset: number,
    byteLength: number,
    firstIndex?: number,
  ): void {
    if (firstNo <= this.lastNo) {
      this.lastNo = 0;
      if (this.runner) this.rebuildRunner();
    }
    const runner = this.runner;
    const forward = this.off === null;
    const file = this.service.captureState.source === 'file';
    if (forward && (firstNo !== this.stageNextNo || file !== this.stageFile)) this.sendStage();
    // The interfaces of this slice, each looked up once (the worker is told a name it has not been told).
    const seen = this.seenIfs;
    let seenCount = 0;
    const noteInterface = (ifindex: number): void => {
      let k = 0;
      while (k < seenCount && seen[k] !== ifindex) k++;
      if (k < seenCount) return;
      if (seenCount < seen.length) seen[seenCount++] = ifindex;
      const name = ifname(ifindex);
      if (this.sentNames.get(ifindex) === name) return;
      this.sentNames.set(ifindex, name);
      this.stageNames.push([ifindex, name]);
    };
    let records = 0;
    if (runner === null) {
      // The records' lengths and interfaces only: the service has read this slice whole already.
      const view = new DataView(batch, byteOffset, byteLength);
      let lastIf = -1;
      for (let offset = 0; offset + 8 <= byteLength;) {
        const len = view.getUint32(offset + OFF.len, true);
        if (len < 8) break;
        if ((view.getUint16(offset + OFF.flags, true) & REC_F_PAD) === 0) {
          records++;
          const ifindex = view.getUint32(offset + OFF.ifindex, true);
          if (ifindex !== lastIf) {
            lastIf = ifindex;
            noteInterface(ifindex);
          }
        }
        offset += alignRecord(len);
      }
    } else {
      forEachRecord(
        batch,
        (view, offset) => {
          records++;
          noteInterface(view.getUint32(offset + OFF.ifindex, true));
          // Every record, decoded, for the rules (their filters read the index's columns at its index).
          const frame = firstNo + records - 1;
          const index = firstIndex === undefined ? undefined : firstIndex + (frame - firstNo);
          const record = this.decoder.decode(view, offset);
          runner.observe(record, frame, ifname(record.ifindex), index);
        },
        byteOffset,
        byteLength,
      );
    }
    this.lastNo = firstNo + records - 1;
    if (!forward) return;
    if (this.queuedBytes >= (this.opts.maxQueuedBytes ?? MAX_QUEUED_BYTES) && !file) {
      // Far behind: a live capture's records go on without the insights (the names still go).
      this.skipped += records;
      this.sendStage();
      this.stageNextNo = this.lastNo + 1;
      return;
    }
    // Gathered with the turn's other slices, in a buffer the worker handed back when there is one.
    if (this.stage !== null && this.staged + byteLength > this.stage.length) this.sendStage();
    if (this.stage === null) {
      this.stageFirstNo = firstNo;
      this.stageFile = file;
      const spare = this.spare.pop();
      // A new one is made ahead by the service's chunk worker when one is ready: written here, a fresh buffer
      // took a page fault every 4 KiB (in the ingest-load bench's sort and export, with the worker behind and
      // no buffer handed back, 0.1-0.7 s of this thread in 10 s).
      this.stage = new Uint8Array(
        spare !== undefined && spare.byteLength >= byteLength
          ? spare
          : this.service.pageBuffer(Math.max(STAGE_BYTES, byteLength)),
      );
    }
    this.stage.set(new Uint8Array(batch, byteOffset, byteLength), this.staged);
    this.staged += byteLength;
    this.stageNextNo = this.lastNo + 1;
    if (!this.sendScheduled) {
      this.sendScheduled = true;
      setImmediate(this.sendSoon);
    }
  }

  private readonly sendSoon = (): void => {
    this.sendScheduled = false;
    this.sendStage();
  };

  /** Sends the records gathered (and the names not sent yet) to the worker. */
  private sendStage(): void {
    const stage = this.stage;
    if (this.off !== null || (stage === null && this.stageNames.length === 0)) return;
    const names = this.stageNames;
    this.stageNames = [];
    if (stage === null || this.staged === 0) {
      this.post({
        t: 'batch',
        batch: new ArrayBuffer(0),
        length: 0,
        firstNo: this.stageNextNo,
        names,
        file: this.stageFile,
      });
      return;
    }
    const length = this.staged;
    this.stage = null;
    this.staged = 0;
    this.queuedBytes += length;
    const buffer = stage.buffer as ArrayBuffer;
    this.post(
      { t: 'batch', batch: buffer, length, firstNo: this.stageFirstNo, names, file: this.stageFile },
      [buffer],
    );
  }

  private configure(p: Params<'neighbours.configure'>): Promise<unknown> {
    this.healthSettings = { learnSeconds: p.learnSeconds, allowRouters: p.allowRouters };
    this.rebuildRunner();
    return this.ask({ method: 'neighbours.configure', params: this.healthSettings });
  }

  private setRules(p: Params<'alerts.setRules'>) {
    const { saved, info } = this.rules.set(p.rules);
    if (saved) {
      this.rebuildRunner();
      this.service.publish('alert.rules', info);
    }
    return info;
  }

  /** Waits for the alert actions in flight (webhooks, snapshots) and for the worker to take in every record. */
  async flush(): Promise<void> {
    if (this.off !== null) return this.runner?.flush();
    await Promise.all([this.runner?.flush(), this.request({ t: 'sync', id: this.nextId++ })]);
  }

  close(): void {
    this.closed = true;
    this.offTap();
    this.offEvents();
    this.offCatchUp();
    for (const p of this.pending.values()) p.reject(new Error('the insights were closed'));
    this.pending.clear();
    this.settleDrained();
    void this.worker.terminate();
  }
}

export function attachInsights(service: CaptureService, opts: InsightsOptions = {}): Insights {
  return new Insights(service, opts);
}
