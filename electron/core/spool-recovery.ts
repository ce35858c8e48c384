/**
 * Spools left behind by processes that ended without cleaning up (a crash, `kill -9`, a power cut): found at
 * start, listed, written out to a file, or removed. A spool is the segments `capture-<time>-<pid>-NNNN.pcapng`
 * of one capture (see spool-store.ts); its id is `<time>-<pid>`.
 *
 * Recovering to pcapng copies the segments' bytes (each segment is a whole pcapng section, so their
 * concatenation is one valid pcapng file), cutting only a block that `kill -9` left half written; the other
 * formats go through the file reader and exportRecords. The output appears atomically (temporary file,
 * fsync, rename).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { ExportFormat } from '../common/contract.js';
import { stableHomes } from './privilege.js';
import { defaultSpoolDir } from './spool-store.js';
import { exportRecords, openCaptureFile, type ExportRow } from './files/index.js';
import { decodeRecord, forEachRecord, type DecodedRecord } from './record.js';

/**
 * Where spools may be: this user's cache, and those of the accounts icmpcap started as root drops to when they
 * have no usable home (the system account icmpcap, -Z nobody): privilege.ts keeps their files in
 * /var/lib/icmpcap/home/NAME, or in /var/cache/icmpcap for the account that owns it (earlier versions).
 */
export function spoolDirs(): string[] {
  const dirs = [
    defaultSpoolDir(),
    ...stableHomes().map((home) => path.join(home, 'cache', 'icmpcap', 'spool')),
  ];
  return [...new Set(dirs)];
}

export interface LeftoverSpool {
  /** `<time>-<pid>`: what `icmpcap spool recover` and `clean` take. */
  id: string;
  /** When the capture started (from the spool's name), ms since the epoch. */
  startedAtMs: number;
  pid: number;
  /** Complete packet blocks in its segments. */
  packets: number;
  bytes: number;
  segments: string[];
}

const SEGMENT_NAME = /^capture-(\d{8})-(\d{6})-(\d+)-(\d{4})\.pcapng$/;
const BLOCK_EPB = 6;

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A spool's segments on disk, grouped by name (no byte read yet). */
export interface SpoolGroup {
  id: string;
  pid: number;
  startedAtMs: number;
  segments: string[];
}

/** The spools among `names` (files of `dir`); those of running processes only if `includeLive`. */
function spoolGroups(dir: string, names: string[], includeLive: boolean): SpoolGroup[] {
  const groups = new Map<string, SpoolGroup>();
  for (const name of names.sort()) {
    const m = SEGMENT_NAME.exec(name);
    if (!m) continue;
    const [, day, time, pidText] = m;
    const id = `${day}-${time}-${pidText}`;
    let group = groups.get(id);
    if (!group) {
      const iso = `${day!.slice(0, 4)}-${day!.slice(4, 6)}-${day!.slice(6)}T${time!.slice(0, 2)}:${time!.slice(2, 4)}:${time!.slice(4)}Z`;
      group = { id, pid: Number(pidText), startedAtMs: Date.parse(iso), segments: [] };
      groups.set(id, group);
    }
    group.segments.push(path.join(dir, name));
  }
  return [...groups.values()].filter((g) => includeLive || !alive(g.pid));
}

const newestFirst = (a: SpoolGroup, b: SpoolGroup): number =>
  b.startedAtMs - a.startedAtMs || b.id.localeCompare(a.id);

/**
 * The spools in `dir` whose process is gone, newest first. `includeLive` also lists those of running
 * processes (never to be cleaned). Reads every segment on this thread (the command line's `icmpcap spool`);
 * the service uses listLeftoverSpoolsAsync.
 */
export function listLeftoverSpools(dir: string | string[], includeLive = false): LeftoverSpool[] {
  const out: LeftoverSpool[] = [];
  for (const d of [dir].flat()) {
    let names: string[];
    try {
      names = fs.readdirSync(d);
    } catch {
      continue;
    }
    for (const g of spoolGroups(d, names, includeLive)) {
      let packets = 0;
      let bytes = 0;
      for (const segment of g.segments) {
        const scan = scanSegment(segment);
        packets += scan.packets;
        bytes += scan.size;
      }
      out.push({ ...g, packets, bytes });
    }
  }
  return out.sort(newestFirst);
}

/**
 * listLeftoverSpools off the event loop: the segments are read in the thread pool, a window at a time, and
 * their blocks counted between reads, so a leftover of gigabytes (2 M records: 258 MB, 100 ms of reading on
 * the loop; 20 M: 2.6 GB) never holds the service's turn.
 */
export async function listLeftoverSpoolsAsync(
  dir: string | string[],
  includeLive = false,
): Promise<LeftoverSpool[]> {
  const out: LeftoverSpool[] = [];
  for (const d of [dir].flat()) {
    let names: string[];
    try {
      names = await fs.promises.readdir(d);
    } catch {
      continue;
    }
    for (const g of spoolGroups(d, names, includeLive)) {
      let packets = 0;
      let bytes = 0;
      for (const segment of g.segments) {
        const scan = await scanSegmentAsync(segment);
        packets += scan.packets;
        bytes += scan.size;
      }
      out.push({ ...g, packets, bytes });
    }
  }
  return out.sort(newestFirst);
}

interface SegmentScan {
  packets: number;
  /** Bytes of whole blocks from the start (where a block cut by `kill -9` begins). */
  complete: number;
  size: number;
}

/**
 * Walks a segment's blocks, counting packet blocks: yields the file offset of each window it needs read into
 * `buf` and takes the bytes read there (scanSegment reads them on this thread, scanSegmentAsync in the pool).
 */
function* segmentBlocks(size: number, buf: Buffer): Generator<number, SegmentScan, number> {
  let packets = 0;
  let at = 0; // file offset of the next block
  let bufStart = 0;
  let bufEnd = 0;
  while (at + 12 <= size) {
    if (at + 8 > bufEnd) {
      bufStart = at;
      bufEnd = at + (yield at);
      if (bufEnd < at + 8) break;
    }
    const type = buf.readUInt32LE(at - bufStart);
    const length = buf.readUInt32LE(at - bufStart + 4);
    if (length < 12 || length % 4 !== 0 || at + length > size) break;
    if (type === BLOCK_EPB) packets++;
    at += length;
  }
  return { packets, complete: at, size };
}

export function scanSegment(file: string): SegmentScan {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    const walk = segmentBlocks(fs.fstatSync(fd).size, buf);
    for (let step = walk.next(); ;) {
      if (step.done) return step.value;
      step = walk.next(fs.readSync(fd, buf, 0, buf.length, step.value));
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** scanSegment with its reads in the thread pool (see listLeftoverSpoolsAsync). */
export async function scanSegmentAsync(file: string): Promise<SegmentScan> {
  const handle = await fs.promises.open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    const walk = segmentBlocks((await handle.stat()).size, buf);
    for (let step = walk.next(); ;) {
      if (step.done) return step.value;
      step = walk.next((await handle.read(buf, 0, buf.length, step.value)).bytesRead);
    }
  } finally {
    await handle.close();
  }
}

/** The spool `id` of `spools` ('latest': the newest), or an error that says what there is. */
function pickSpool<T extends SpoolGroup>(
  dir: string | string[],
  id: string,
  spools: T[],
  withLive: () => SpoolGroup[],
): T {
  if (spools.length === 0) throw new Error(`no spool was left behind in ${[dir].flat().join(' or ')}`);
  if (id === 'latest') return spools[0]!;
  const found = spools.find((s) => s.id === id);
  if (!found) {
    const live = withLive().find((s) => s.id === id);
    throw new Error(
      live
        ? `spool ${id} belongs to a running icmpcap (pid ${live.pid}); stop it first`
        : `no spool ${id} in ${[dir].flat().join(' or ')}; \`icmpcap spool\` lists them (${spools.map((s) => s.id).join(', ')})`,
    );
  }
  return found;
}

export function findSpool(dir: string | string[], id: string): LeftoverSpool {
  return pickSpool(dir, id, listLeftoverSpools(dir), () => listLeftoverSpools(dir, true));
}

/** The spools' segments by name, newest first, read off the event loop (no segment is read). */
async function spoolGroupsAsync(dir: string | string[], includeLive: boolean): Promise<SpoolGroup[]> {
  const out: SpoolGroup[] = [];
  for (const d of [dir].flat()) {
    try {
      out.push(...spoolGroups(d, await fs.promises.readdir(d), includeLive));
    } catch {
      // no such folder: no spool there
    }
  }
  return out.sort(newestFirst);
}

/** findSpool for the service: by name only (opening or removing needs the segments, not their count). */
export async function findSpoolAsync(dir: string | string[], id: string): Promise<SpoolGroup> {
  const spools = await spoolGroupsAsync(dir, false);
  const live = await spoolGroupsAsync(dir, true);
  return pickSpool(dir, id, spools, () => live);
}

export function formatOf(file: string, format?: string): ExportFormat {
  const f = (format ?? path.extname(file).slice(1)).toLowerCase();
  if (f === 'pcapng' || f === 'pcap' || f === 'csv' || f === 'ndjson') return f;
  throw new Error(`cannot tell the format of ${file}: name it .pcapng, .pcap, .csv or .ndjson, or give -F`);
}

/** Writes a leftover spool to `out`; returns the packets written. Refuses to overwrite unless asked. */
export async function recoverSpool(
  spool: LeftoverSpool,
  out: string,
  opts: { format?: ExportFormat; overwrite?: boolean } = {},
): Promise<{ records: number; path: string }> {
  const format = opts.format ?? formatOf(out);
  if (!opts.overwrite && fs.existsSync(out))
    throw new Error(`${out} exists; choose another name (or pass --force to replace it)`);
  if (format === 'pcapng') return { records: await copySegments(spool, out), path: out };
  let records = 0;
  async function* rows(): AsyncGenerator<ExportRow> {
    for (const segment of spool.segments) {
      const reader = openCaptureFile(segment);
      const names = new Map<number, string>();
      for (;;) {
        const next = await reader.next();
        if (next.done) break;
        for (const { id, name } of next.value.interfaces) names.set(id, name);
        const decoded: DecodedRecord[] = [];
        forEachRecord(next.value.batch, (view, offset) => decoded.push(decodeRecord(view, offset)));
        for (const record of decoded) {
          records++;
          yield { no: records, record, ifname: names.get(record.ifindex) ?? `if${record.ifindex}` };
        }
      }
    }
  }
  const result = await exportRecords(rows(), { format, path: out });
  return { records: result.records, path: out };
}

async function copySegments(spool: LeftoverSpool, out: string): Promise<number> {
  const dir = path.dirname(path.resolve(out));
  const temp = path.join(dir, `.${path.basename(out)}.partial-${randomBytes(6).toString('hex')}`);
  const handle = await fs.promises.open(temp, 'wx', 0o644);
  let packets = 0;
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (const segment of spool.segments) {
      const { complete, packets: n } = scanSegment(segment);
      packets += n;
      const fd = fs.openSync(segment, 'r');
      try {
        for (let at = 0; at < complete;) {
          const got = fs.readSync(fd, buf, 0, Math.min(buf.length, complete - at), at);
          if (got === 0) break;
          await handle.write(buf, 0, got);
          at += got;
        }
      } finally {
        fs.closeSync(fd);
      }
    }
    await handle.datasync();
    await handle.close();
    await fs.promises.rename(temp, out);
  } catch (err) {
    await handle.close().catch(() => undefined);
    await fs.promises.rm(temp, { force: true });
    throw err;
  }
  return packets;
}

/** Removes one leftover spool (or every one); returns the ids removed. Never touches a running capture's. */
export function cleanSpools(dir: string | string[], id?: string): string[] {
  const spools = id === undefined ? listLeftoverSpools(dir) : [findSpool(dir, id)];
  for (const spool of spools) for (const segment of spool.segments) fs.rmSync(segment, { force: true });
  return spools.map((s) => s.id);
}

/**
 * cleanSpools for the service: the segments are unlinked in the thread pool (gigabytes of a leftover take
 * the file system hundreds of ms), and none is read first.
 */
export async function cleanSpoolsAsync(dir: string | string[], id?: string): Promise<string[]> {
  const spools = id === undefined ? await spoolGroupsAsync(dir, false) : [await findSpoolAsync(dir, id)];
  for (const spool of spools)
    for (const segment of spool.segments) await fs.promises.rm(segment, { force: true });
  return spools.map((s) => s.id);
}
