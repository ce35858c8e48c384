/**
 * A buffered, crash-tidy file writer for exports: bytes go to `.<name>.partial-<random>` in the target
 * directory through two 1 MiB buffers (one filling while the other is written, so a slow disk holds the
 * producer back instead of growing memory) and the file is renamed into place only by `commit`.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const BUFFER_SIZE = 1 << 20;
/** Bytes written between datasyncs started while the export goes on (so the last one has little left). */
const SYNC_EVERY = 32 << 20;

export class ExportFileSink {
  /** The buffer being filled; write at `pos`, after making room with `reserve`. */
  buf: Buffer;
  view: DataView;
  pos = 0;
  private spare: Buffer;
  private pending: Promise<unknown> | null = null;
  private written = 0;
  /** A datasync running beside the writes, and where the last one started. */
  private syncing: Promise<void> | null = null;
  private syncedAt = 0;

  private constructor(
    private readonly handle: fs.promises.FileHandle,
    readonly tempPath: string,
    readonly finalPath: string,
    bufferSize: number,
  ) {
    this.buf = Buffer.allocUnsafe(bufferSize);
    this.view = viewOf(this.buf);
    this.spare = Buffer.allocUnsafe(bufferSize);
  }

  /** `bufferSize`: bytes per buffer (two of them); bigger means fewer, larger writes. */
  static async create(finalPath: string, bufferSize = BUFFER_SIZE): Promise<ExportFileSink> {
    const dir = path.dirname(path.resolve(finalPath));
    const name = path.basename(finalPath);
    if (name === '' || name === '.' || name === '..') {
      throw new Error(`Cannot export to ${finalPath}: choose a file name, not a directory`);
    }
    const tempPath = path.join(dir, `.${name}.partial-${randomBytes(6).toString('hex')}`);
    try {
      const stat = await fs.promises.stat(finalPath).catch(() => null);
      if (stat?.isDirectory()) throw Object.assign(new Error('it is a directory'), { code: 'EISDIR' });
      const handle = await fs.promises.open(tempPath, 'wx', 0o644);
      return new ExportFileSink(handle, tempPath, finalPath, bufferSize);
    } catch (err) {
      throw exportWriteError(err, finalPath);
    }
  }

  /** Bytes handed to the file so far plus those still buffered. */
  get bytes(): number {
    return this.written + this.pos;
  }

  /** The temporary file's descriptor, for a writer of another thread (the spool exports' worker). */
  get fd(): number {
    return this.handle.fd;
  }

  /**
   * Counts `bytes` written to the file from its start by someone else (through `fd`, at positions of their
   * own), before anything of this sink's: `commit` then syncs, closes and renames as for its own bytes.
   */
  adopt(bytes: number): void {
    if (this.written !== 0 || this.pos !== 0) throw new Error('adopt() goes before any write of the sink');
    this.written = bytes;
  }

  get room(): number {
    return this.buf.length - this.pos;
  }

  /** Makes room for `size` bytes in `buf` at `pos`: hands the full buffer to the disk and swaps buffers. */
  async reserve(size: number): Promise<void> {
    if (this.room >= size) return;
    await this.pending; // backpressure: at most one buffer in flight
    const full = this.buf.subarray(0, this.pos);
    this.pending = this.writeAll(full);
    this.written += this.pos;
    if (this.written - this.syncedAt >= SYNC_EVERY && this.syncing === null) {
      // The disk writes back what we have so far while we go on: commit's datasync finds little left.
      // A failure here shows again in commit's own datasync, which reports it.
      this.syncedAt = this.written;
      const written = this.pending;
      this.syncing = written
        .then(() => this.handle.datasync())
        .catch(() => undefined)
        .finally(() => {
          this.syncing = null;
        });
    }
    let next = this.spare;
    if (next.length < size) next = Buffer.allocUnsafe(size);
    this.spare = this.buf;
    this.buf = next;
    this.view = viewOf(next);
    this.pos = 0;
  }

  writeBytes(bytes: Uint8Array): void {
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** Writes a string; the caller reserved `text.length * 3` bytes (the UTF-8 worst case for UTF-16 units). */
  writeText(text: string): void {
    this.pos += this.buf.write(text, this.pos, 'utf8');
  }

  /** Flushes, closes and renames the file into place. */
  async commit(): Promise<number> {
    await this.pending;
    this.pending = null;
    await this.syncing;
    await this.writeAll(this.buf.subarray(0, this.pos));
    this.written += this.pos;
    this.pos = 0;
    try {
      // On disk before it takes the name: a crash never leaves a short file where a good one was.
      await this.handle.datasync();
    } catch (err) {
      await this.handle.close().catch(() => undefined);
      await fs.promises.rm(this.tempPath, { force: true });
      throw exportWriteError(err, this.finalPath);
    }
    await this.handle.close();
    try {
      await fs.promises.rename(this.tempPath, this.finalPath);
    } catch (err) {
      await fs.promises.rm(this.tempPath, { force: true });
      throw exportWriteError(err, this.finalPath);
    }
    return this.written;
  }

  /** Closes and deletes the temporary file; the chosen name is never touched. */
  async discard(): Promise<void> {
    await this.pending?.catch(() => undefined);
    this.pending = null;
    await this.syncing;
    await this.handle.close().catch(() => undefined);
    await fs.promises.rm(this.tempPath, { force: true });
  }

  private async writeAll(bytes: Buffer): Promise<void> {
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await this.handle.write(bytes, done, bytes.length - done);
      done += bytesWritten;
    }
  }
}

function viewOf(buffer: Buffer): DataView {
  return new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** The error of an export to `finalPath` that `err` (an fs error) stopped, saying what to do. */
export function exportWriteError(err: unknown, finalPath: string): Error {
  return new Error(
    `Cannot write the export to ${finalPath}: ${explain(err, path.dirname(path.resolve(finalPath)))}`,
    {
      cause: err,
    },
  );
}

function explain(err: unknown, dir: string): string {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return `the folder ${dir} does not exist; choose an existing folder`;
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return `no permission to write in ${dir}; choose a folder you can write to`;
    case 'ENOSPC':
    case 'EDQUOT':
      return `the disk holding ${dir} is full; free some space or choose another disk`;
    case 'EISDIR':
      return 'that path is a folder; choose a file name';
    case 'ENOTDIR':
      return `${dir} is not a folder; choose an existing folder`;
    default:
      return `${(err as Error).message}; choose another location`;
  }
}
