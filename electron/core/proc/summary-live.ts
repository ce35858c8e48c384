/**
 * The per-process summary of the capture's live records, as the service answers `procs.summary` (which the
 * Processes tab asks every second): the same rows as ProcessSummary over the records a process is known
 * for, kept per chunk of the store so a call counts only the records that came since the last one (a full
 * chunk is counted once), lets go of the chunks a ring buffer evicted, and works in slices that yield to
 * the event loop. Counting every record at every call held the service's thread 140-190 ms at 1 M
 * attributed records, seconds at 20 M, once a second.
 *
 * A chunk's part holds per process its counts, its first and last record times and the address ids of its
 * peers (a set while the chunk fills, then a sorted array). Address ids are freed only once no live record
 * names them, so the ids of live parts name one address each; the rows count distinct ids.
 */
import type { ProcessSummaryRow } from '../../common/contract.js';
import { CHUNK_MASK, CHUNK_SHIFT, CHUNK_SIZE, type RecordStore } from '../store.js';
import { ERRORS, REPLY, REQUEST } from './summary.js';
import type { ProcColumn, ProcessTable } from './table.js';

/** How long one slice of counting or merging may hold the event loop. */
export const SUMMARY_SLICE_MS = 8;
/** Records counted between looks at the clock. */
const STEP = 4096;

const DIR_OUT = 1;

interface PartEntry {
  sent: number;
  received: number;
  requests: number;
  replies: number;
  errors: number;
  /** tsRel (ns from the store's base) of the first and last record counted. */
  first: number;
  last: number;
  /** Peers' address ids: a set while the chunk fills, sorted and distinct once it is full. */
  peers: Set<number> | Int32Array;
}

interface Part {
  /** The records counted: `from` (the chunk's first live record) up to `to`. */
  from: number;
  to: number;
  entries: Map<number, PartEntry>;
}

/** Thrown inside a run that a clear (a new capture) made pointless; the caller starts over. */
class Cleared extends Error {}

export class LiveProcessSummary {
  /** Parts by chunk number. */
  private parts: (Part | undefined)[] = [];
  private epoch = 0;
  /** Per address id, the merge that last counted it as a peer (distinct counts without a set). */
  private seen = new Uint32Array(1024);
  private stamp = 0;
  /** The call under way (see rows). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly column: ProcColumn,
    private readonly processes: ProcessTable,
    private readonly sliceMs = SUMMARY_SLICE_MS,
  ) {}

  /** Forgets every part (a new capture: record numbers and process ids start over). */
  clear(): void {
    this.parts = [];
    this.epoch++;
  }

  /**
   * The rows over the store's live records, busiest first. Calls run one after another (two windows asking at
   * once): a merge marks peers in one shared array, which a second merge between its slices would upset.
   */
  rows(store: RecordStore): Promise<ProcessSummaryRow[]> {
    const next = this.queue.then(() => this.rowsNow(store));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async rowsNow(store: RecordStore): Promise<ProcessSummaryRow[]> {
    for (;;) {
      try {
        return await this.run(store);
      } catch (err) {
        if (!(err instanceof Cleared)) throw err;
      }
    }
  }

  private async run(store: RecordStore): Promise<ProcessSummaryRow[]> {
    const epoch = this.epoch;
    let sliceStart = performance.now();
    const pause = async (): Promise<void> => {
      if (performance.now() - sliceStart < this.sliceMs) return;
      await new Promise((resolve) => setImmediate(resolve));
      if (this.epoch !== epoch) throw new Cleared();
      sliceStart = performance.now();
    };
    // Count what came since the last call, chunk by chunk, up to the records there are now.
    for (;;) {
      const first = store.firstIndex;
      const end = store.length;
      for (let c = 0; c < first >>> CHUNK_SHIFT && c < this.parts.length; c++) this.parts[c] = undefined;
      // Parts past the last record (the store was cleared and filled again without a clear() here).
      this.parts.length = Math.min(this.parts.length, (end + CHUNK_MASK) >>> CHUNK_SHIFT);
      let behind = false;
      for (let c = first >>> CHUNK_SHIFT; c * CHUNK_SIZE < end; c++) {
        const from = Math.max(first, c * CHUNK_SIZE);
        const stop = Math.min(end, (c + 1) * CHUNK_SIZE);
        let part = this.parts[c];
        if (part === undefined || part.from !== from || part.to > stop) {
          part = { from, to: from, entries: new Map() };
          this.parts[c] = part;
        }
        while (part.to < stop) {
          const to = Math.min(stop, part.to + STEP);
          this.count(store, part, part.to, to);
          part.to = to;
          await pause();
          // A ring buffer evicted meanwhile, or records came: look again from the top.
          if (store.firstIndex !== first) {
            behind = true;
            break;
          }
        }
        if (behind) break;
        if (part.to === (c + 1) * CHUNK_SIZE) seal(part);
      }
      if (!behind && store.length === end && store.firstIndex === first) break;
    }
    return this.merge(store, pause);
  }

  /** Counts records `from..to-1` (one chunk's) into `part`. */
  private count(store: RecordStore, part: Part, from: number, to: number): void {
    const chunk = store.chunkOf(from);
    const { meta, src, dst, tsRel } = chunk;
    for (let index = from; index < to; index++) {
      const proc = this.column.get(index);
      if (proc === 0) continue;
      const i = index & CHUNK_MASK;
      const m = meta[i]!;
      const dir = (m >>> 16) & 3;
      const family = m >>> 24 === 6 ? 6 : 4;
      const type = m & 0xff;
      let e = part.entries.get(proc);
      if (e === undefined) {
        e = {
          sent: 0,
          received: 0,
          requests: 0,
          replies: 0,
          errors: 0,
          first: tsRel[i]!,
          last: 0,
          peers: new Set(),
        };
        part.entries.set(proc, e);
      }
      if (dir === DIR_OUT) e.sent++;
      else e.received++;
      if (type === REQUEST[family] && dir === DIR_OUT) e.requests++;
      else if (type === REPLY[family] && dir === 0) e.replies++;
      else if (dir === 0 && ERRORS[family].has(type)) e.errors++;
      (e.peers as Set<number>).add(dir === DIR_OUT ? dst[i]! : src[i]!);
      e.last = tsRel[i]!;
    }
  }

  /** Sums the live parts per process, a process's parts at a time (its peers marked with a stamp of its own). */
  private async merge(store: RecordStore, pause: () => Promise<void>): Promise<ProcessSummaryRow[]> {
    const byProc = new Map<number, PartEntry[]>();
    for (const part of this.parts) {
      if (part === undefined) continue;
      for (const [proc, e] of part.entries) {
        const list = byProc.get(proc);
        if (list === undefined) byProc.set(proc, [e]);
        else list.push(e);
      }
    }
    const base = store.baseNs ?? 0n;
    const rows: ProcessSummaryRow[] = [];
    for (const [proc, entries] of byProc) {
      const info = this.processes.get(proc);
      const row: ProcessSummaryRow = {
        pid: info?.pid ?? null,
        name: info?.name ?? null,
        uid: info?.uid ?? null,
        cgroup: info?.cgroup ?? null,
        sent: 0,
        received: 0,
        requests: 0,
        replies: 0,
        errors: 0,
        peers: 0,
        firstNs: (base + BigInt(entries[0]!.first)).toString(),
        lastNs: (base + BigInt(entries[entries.length - 1]!.last)).toString(),
      };
      const stamp = this.nextStamp();
      for (const e of entries) {
        row.sent += e.sent;
        row.received += e.received;
        row.requests += e.requests;
        row.replies += e.replies;
        row.errors += e.errors;
        row.peers += this.countNew(e.peers, stamp);
        await pause();
      }
      rows.push(row);
    }
    rows.sort((a, b) => b.sent + b.received - (a.sent + a.received) || (a.pid ?? 0) - (b.pid ?? 0));
    return rows;
  }

  private nextStamp(): number {
    if (++this.stamp === 0xffffffff) {
      this.seen.fill(0);
      this.stamp = 1;
    }
    return this.stamp;
  }

  /** Marks `peers` with `stamp`; returns how many were not marked yet. */
  private countNew(peers: Set<number> | Int32Array, stamp: number): number {
    let fresh = 0;
    for (const id of peers) {
      if (id >= this.seen.length) {
        const grown = new Uint32Array(Math.max(id + 1, this.seen.length * 2));
        grown.set(this.seen);
        this.seen = grown;
      }
      if (this.seen[id] !== stamp) {
        this.seen[id] = stamp;
        fresh++;
      }
    }
    return fresh;
  }
}

/** A full chunk's part: its peers become a sorted array (4 bytes an id, not a set entry). */
function seal(part: Part): void {
  for (const e of part.entries.values())
    if (e.peers instanceof Set) e.peers = Int32Array.from(e.peers).sort();
}
