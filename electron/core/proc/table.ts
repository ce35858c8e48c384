/**
 * Processes interned to small numbers, so a record holds one 32-bit index (0: unknown) instead of a pid,
 * a name, a uid and a cgroup; the per-chunk column of those indices is allocated only for chunks that
 * have an attributed record, so traffic no local process sent costs nothing.
 */
import { CHUNK_MASK, CHUNK_SHIFT, CHUNK_SIZE } from '../store.js';
import type { ProcessInfo } from './processes.js';

export const PROC_UNKNOWN = 0;

export class ProcessTable {
  readonly entries: (ProcessInfo | null)[] = [null];
  private readonly ids = new Map<string, number>();

  intern(info: ProcessInfo): number {
    const key = `${info.pid}\t${info.name}\t${info.uid}\t${info.cgroup}`;
    let id = this.ids.get(key);
    if (id === undefined) {
      id = this.entries.length;
      this.entries.push(info);
      this.ids.set(key, id);
    }
    return id;
  }

  get(id: number): ProcessInfo | null {
    return this.entries[id] ?? null;
  }

  clear(): void {
    this.entries.length = 1;
    this.ids.clear();
  }
}

/** Process index per record, by chunk (record index >>> CHUNK_SHIFT), allocated on first use. */
export class ProcColumn {
  private chunks: (Uint32Array | undefined)[] = [];
  /** Chunks below this one are released. */
  private firstChunk = 0;

  get(index: number): number {
    return this.chunks[index >>> CHUNK_SHIFT]?.[index & CHUNK_MASK] ?? PROC_UNKNOWN;
  }

  set(index: number, proc: number): void {
    const c = index >>> CHUNK_SHIFT;
    let chunk = this.chunks[c];
    if (chunk === undefined) {
      if (proc === PROC_UNKNOWN) return;
      chunk = new Uint32Array(CHUNK_SIZE);
      this.chunks[c] = chunk;
    }
    chunk[index & CHUNK_MASK] = proc;
  }

  /** Releases the chunks below record `firstIndex` (the ring buffer dropped them). */
  evictTo(firstIndex: number): void {
    const to = Math.min(firstIndex >>> CHUNK_SHIFT, this.chunks.length);
    for (let c = this.firstChunk; c < to; c++) this.chunks[c] = undefined;
    this.firstChunk = Math.max(this.firstChunk, to);
  }

  /** Calls `visit` for every record with a known process, in record order, from `from` on. */
  forEachKnown(from: number, to: number, visit: (index: number, proc: number) => void): void {
    for (let c = from >>> CHUNK_SHIFT; c < this.chunks.length && c << CHUNK_SHIFT < to; c++) {
      const chunk = this.chunks[c];
      if (chunk === undefined) continue;
      const base = c << CHUNK_SHIFT;
      const end = Math.min(CHUNK_SIZE, to - base);
      for (let i = Math.max(0, from - base); i < end; i++)
        if (chunk[i] !== PROC_UNKNOWN) visit(base + i, chunk[i]!);
    }
  }

  get bytesAllocated(): number {
    return this.chunks.reduce((n, c) => n + (c ? c.byteLength : 0), 0);
  }

  clear(): void {
    this.chunks = [];
    this.firstChunk = 0;
  }
}
