/**
 * `capture -w`: the output file, written as records arrive (as dumpcap writes), or standard output with
 * `-w -`. Every write is a whole number of blocks, so the file is valid whenever the process stops.
 * `-b` switches files with dumpcap's meanings and names: `out.pcapng` becomes `out_00001_20261129080651.pcapng`,
 * `out_00002_...` (number from 1, local time the file was opened); `files:N` keeps the newest N.
 *
 * The first file is opened before the capture starts (a path that cannot be written fails first, and root opens
 * it before dropping root), but used only once it has started (`begin`): dumpcap opens its file only then, so a
 * capture that never starts leaves no file of its own behind and a file that was there as it was (`discard`).
 */
import {
  closeSync,
  constants,
  fstatSync,
  ftruncateSync,
  lstatSync,
  openSync,
  readlinkSync,
  rmSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, extname, isAbsolute, join, resolve } from 'node:path';
import type { ExportFormat, ExportRow } from '../files/index.js';
import { ByteChunk, createEncoder, type RowEncoder } from './encode.js';
import { explainFileError, OutputClosed } from './errors.js';

/** `-b` conditions, as dumpcap's ring buffer: any of the first four switches files. */
export interface Rotation {
  /** Seconds a file stays open. */
  duration?: number;
  /** Switch once a file has reached this many kB (1000 bytes). */
  filesize?: number;
  /** Switch when the wall clock is a multiple of this many seconds. */
  interval?: number;
  /** Switch after this many packets. */
  packets?: number;
  /** Keep only the newest N files. */
  files?: number;
}

export interface OutputOptions {
  format: ExportFormat;
  /** A file name, or `-` for standard output. */
  path: string;
  rotation?: Rotation;
  /** -a files:N: after N files, write no more (`finished` turns true). */
  stopAfterFiles?: number;
  application: string;
  snaplen: number;
}

const STDOUT = 1;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Writes all of `data` to `fd`, waiting out a full non-blocking pipe; a closed reader is OutputClosed. */
export function writeAllSync(fd: number, data: Uint8Array): void {
  let done = 0;
  while (done < data.length) {
    try {
      done += writeSync(fd, data, done, data.length - done);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') {
        Atomics.wait(sleeper, 0, 0, 5);
        continue;
      }
      if (code === 'EPIPE') throw new OutputClosed('the reader of the output went away');
      throw err;
    }
  }
}

/** dumpcap's name of the n-th file of a ring: `prefix_NNNNN_YYYYmmddHHMMSS.ext` in local time. */
export function ringFileName(path: string, n: number, at: Date): string {
  const ext = extname(path);
  const prefix = join(dirname(path), basename(path, ext));
  const p2 = (v: number): string => String(v).padStart(2, '0');
  const time =
    `${at.getFullYear()}${p2(at.getMonth() + 1)}${p2(at.getDate())}` +
    `${p2(at.getHours())}${p2(at.getMinutes())}${p2(at.getSeconds())}`;
  return `${prefix}_${String(n).padStart(5, '0')}_${time}${ext}`;
}

/** A file as the kernel knows it: what was opened is still what the name gives only while these match. */
function identity(st: { dev: bigint; ino: bigint }): string {
  return `${st.dev}:${st.ino}`;
}

/** Links followed at most, as the kernel's limit (ELOOP beyond it). */
const MAX_LINKS = 40;

/**
 * Where a symbolic link to a missing file leads, as the kernel follows it (each link's target read from the
 * folder the link is in, through any links in the folders): the missing file's name in a folder that is there.
 * Null when `name` is not such a link, or no longer one.
 */
function missingLinkTarget(name: string): string | null {
  const leads = linkLeadsTo(name);
  return leads !== null && leads.missing ? leads.path : null;
}

/**
 * Where `name` leads when it is a link: the last path of its chain of links, and whether that is missing; null
 * when `name` is no link (or the chain cannot be read, or is longer than MAX_LINKS).
 */
function linkLeadsTo(name: string): { path: string; missing: boolean } | null {
  let path = name;
  for (let links = 0; links <= MAX_LINKS; links++) {
    let isLink: boolean;
    try {
      isLink = lstatSync(path).isSymbolicLink();
    } catch (err) {
      if (path === name) return null;
      // Not there to look at (a file on its way where a folder should be, a folder not to be searched).
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return { path, missing: false };
      // Missing: the kernel makes it there (if its folder is there; else making it fails anyway).
      const last = basename(path);
      if (path.endsWith('/') || last === '.' || last === '..') return null;
      return { path, missing: true };
    }
    if (!isLink) return path === name ? null : { path, missing: false };
    let target: string;
    try {
      target = readlinkSync(path);
      // Not normalised, and the folders not resolved here: the kernel resolves them when the file is made (with
      // its protections: fs.protected_symlinks) and `..` after a linked folder is its to resolve, not path.join's.
      if (!isAbsolute(target)) target = `${dirname(path)}/${target}`;
    } catch {
      return null;
    }
    path = target;
  }
  return null;
}

/**
 * Opens `name` for writing without emptying it: an existing file keeps its contents until the capture starts.
 * `made`: the file this call created (O_EXCL), so it may be removed should the capture never start: `name`, or
 * for a link to a missing file, the file the link leads to (the link stays). A file that appeared meanwhile is
 * opened as `w` opens it, and counts as not made here.
 */
function openUnemptied(name: string): { fd: number; made: string | null } {
  const { O_WRONLY, O_CREAT, O_EXCL } = constants;
  try {
    return { fd: openSync(name, O_WRONLY), made: null };
  } catch (err) {
    // The kernel followed any links to a missing file (it would have said EACCES where it may not follow them,
    // as fs.protected_symlinks has it): making that file is ours to do, and to undo.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  try {
    return { fd: openSync(name, O_WRONLY | O_CREAT | O_EXCL, 0o644), made: name };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  // `name` is there but led nowhere: a link to a missing file. Make the file it leads to, exclusively.
  const target = missingLinkTarget(name);
  if (target !== null) {
    try {
      return { fd: openSync(target, O_WRONLY | O_CREAT | O_EXCL, 0o644), made: target };
    } catch {
      // Made meanwhile, or not ours to make there: opened as `w` opens it, below, which says why if it fails.
    }
  }
  return { fd: openSync(name, O_WRONLY | O_CREAT, 0o644), made: null };
}

export class CaptureOutput {
  private fd = -1;
  private encoder!: RowEncoder;
  private readonly chunk = new ByteChunk();
  /** Numbered files of a ring, oldest first (only with -b). */
  private readonly ring: string[] = [];
  private fileNumber = 0;
  private fileOpenedMs = 0;
  private fileBytes = 0;
  private filePackets = 0;
  /** Packets written to every file. */
  packets = 0;
  /** The file being written (`-` for standard output). */
  current = '';
  /** -a files:N was reached: the last file is closed and rows are no longer written. */
  finished = false;
  /** The capture started: the files are written (before, the first is only open). */
  private begun = false;
  /**
   * The first file, when this run made it (for a link to a missing file, the file it leads to): removed by
   * discard() if it is still that file.
   */
  private made: { path: string; id: string } | null = null;

  private constructor(private readonly opts: OutputOptions) {}

  /**
   * Opens the first file now, so a bad path fails before anything is captured; nothing is written to it (a file
   * that was there is not emptied) until begin().
   */
  static open(opts: OutputOptions): CaptureOutput {
    const out = new CaptureOutput(opts);
    out.openNext(Date.now());
    return out;
  }

  /** The capture has started: empties the first file if it held something, and writes its header. */
  begin(): void {
    if (this.begun) return;
    this.begun = true;
    this.made = null;
    this.startFile();
  }

  /**
   * The capture never started: closes the first file unwritten, and removes it if this run made it. A file that
   * was there is left as it was; standard output got nothing. Returns why a file made here is left, if it is.
   */
  discard(): string | null {
    if (this.begun || this.fd < 0) return null;
    const made = this.made;
    this.made = null;
    if (!this.toStdout) closeSync(this.fd);
    this.fd = -1;
    if (!made) return null;
    try {
      // Only the file this run made: not whatever the name was given to since.
      if (identity(lstatSync(made.path, { bigint: true })) === made.id) unlinkSync(made.path);
      return null;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      // Made by root before it dropped root: the account it runs as now may not remove it (a sticky /tmp, a
      // folder only root writes to). It is empty; the user removes it.
      return (
        `${made.path} was made for this capture, which never started, and could not be removed ` +
        `(${(err as Error).message}): it is empty; remove it with rm`
      );
    }
  }

  get toStdout(): boolean {
    return this.opts.path === '-';
  }

  /** Files started so far (1 without -b). */
  get files(): number {
    return Math.max(1, this.fileNumber);
  }

  /** Bytes in the current file. */
  get bytes(): number {
    return this.fileBytes;
  }

  /** Writes rows to the file(s), switching files where -b says; returns after the bytes are written. */
  write(rows: Iterable<ExportRow>): void {
    const rotation = this.opts.rotation;
    for (const row of rows) {
      if (this.finished) break;
      const before = this.chunk.pos;
      this.encoder.row(row, this.chunk);
      this.fileBytes += this.chunk.pos - before;
      this.filePackets++;
      this.packets++;
      if (
        rotation &&
        ((rotation.filesize !== undefined && this.fileBytes >= rotation.filesize * 1000) ||
          (rotation.packets !== undefined && this.filePackets >= rotation.packets))
      ) {
        this.switchFile(Date.now());
      }
    }
    this.flush();
  }

  /** Switches files on time (-b duration / interval); call a few times a second. */
  tick(nowMs: number): void {
    const rotation = this.opts.rotation;
    if (!rotation || this.finished) return;
    const byDuration =
      rotation.duration !== undefined && nowMs - this.fileOpenedMs >= rotation.duration * 1000;
    const byInterval =
      rotation.interval !== undefined &&
      Math.floor(nowMs / (rotation.interval * 1000)) !==
        Math.floor(this.fileOpenedMs / (rotation.interval * 1000));
    if (byDuration || byInterval) this.switchFile(nowMs);
  }

  close(): void {
    if (this.fd < 0) return;
    try {
      this.flush();
    } finally {
      if (!this.toStdout) closeSync(this.fd);
      this.fd = -1;
    }
  }

  private flush(): void {
    if (this.chunk.pos === 0) return;
    const data = this.chunk.take();
    try {
      writeAllSync(this.fd, data);
    } catch (err) {
      if (err instanceof OutputClosed) throw err;
      throw new Error(
        `${explainFileError(err, this.current, dirname(this.current))}. ` +
          `${this.packets.toLocaleString('en')} packets were written before this`,
        { cause: err },
      );
    }
  }

  private switchFile(nowMs: number): void {
    this.flush();
    if (this.opts.stopAfterFiles !== undefined && this.fileNumber >= this.opts.stopAfterFiles) {
      this.finished = true;
      return;
    }
    closeSync(this.fd);
    this.fd = -1;
    this.openNext(nowMs);
  }

  private openNext(nowMs: number): void {
    const { path, rotation } = this.opts;
    if (path === '-') {
      this.fd = STDOUT;
      this.current = '-';
    } else {
      const target = resolve(path);
      const name = rotation ? ringFileName(target, ++this.fileNumber, new Date(nowMs)) : target;
      let made: string | null = null;
      try {
        ({ fd: this.fd, made } = openUnemptied(name));
      } catch (err) {
        // A link to a file in a folder that is missing fails as ENOENT too, while the link's own folder is there:
        // the message names the folder the link leads into.
        // Any other failure through a link is the place it leads to's, not the link's folder's.
        const leadsTo =
          (err as NodeJS.ErrnoException).code === 'ENOENT'
            ? missingLinkTarget(name)
            : (linkLeadsTo(name)?.path ?? null);
        throw new Error(explainFileError(err, name, dirname(name), leadsTo), { cause: err });
      }
      this.current = name;
      if (!this.begun && made !== null) {
        const id = identity(fstatSync(this.fd, { bigint: true }));
        this.made = { path: made, id };
      }
      if (rotation) {
        this.ring.push(name);
        while (rotation.files !== undefined && this.ring.length > rotation.files) {
          rmSync(this.ring.shift()!, { force: true });
        }
      }
    }
    this.fileOpenedMs = nowMs;
    if (this.begun) this.startFile();
  }

  /** Empties the file just opened (when it is a file: not a pipe or a device) and writes its header. */
  private startFile(): void {
    if (!this.toStdout && fstatSync(this.fd).isFile()) ftruncateSync(this.fd, 0);
    this.fileBytes = 0;
    this.filePackets = 0;
    this.encoder = createEncoder(this.opts.format, this.opts);
    this.encoder.header(this.chunk);
    this.fileBytes = this.chunk.pos;
    this.flush();
  }
}
