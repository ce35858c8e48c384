/**
 * Files for pages in a browser. A browser page never names a path on the service's machine: an export
 * becomes a download (GET /download/<job id>, token in the Authorization header), a file to open is an
 * upload (POST /upload) or a name in the one capture folder the user gave `icmpcap serve --captures`.
 * Paths the service uses stay here; pages see file names, and system errors in plain words.
 */
import { randomBytes } from 'node:crypto';
import {
  type Dirent,
  createReadStream,
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  realpathSync,
  rmSync,
  statSync,
} from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { basename, join, sep } from 'node:path';
import type { z } from 'zod';
import {
  type CaptureState,
  type EventName,
  type FileChoices,
  type Job,
  PageRequestSchemas,
  ServiceError,
  isPageRequestName,
} from '../../common/contract.js';
import { plainWords } from '../../common/plain-words.js';
import type { RouteContext, RunningServer } from '../server.js';
import type { CaptureService } from '../service.js';

export interface PageFilesOptions {
  service: CaptureService;
  /** A private folder (created 0700) for downloads and uploads; removed by close(). */
  workDir: string;
  /** The one folder whose capture files pages may open by name (`--captures DIR`). */
  captureFolder?: string;
  /** The largest upload taken, in bytes (default 4 GiB). */
  maxUploadBytes?: number;
}

const CAPTURE_FILE = /\.(pcapng|pcap|cap|ntar)$/i;
const KEEP_DOWNLOADS = 4;
const KEEP_UPLOADS = 4;
/** Job names kept: more than the jobs `hello` lists (FINISHED_KEPT and those running). */
const JOB_NAMES_KEPT = 128;

interface Kept {
  path: string;
  /** What the page sees instead of the path. */
  name: string;
}

/** A download's job `job` as it is now: once ended, done (fetchable) or not (its partial file removed). */
function downloadEnded(download: Kept & { done: boolean }, job: Job): void {
  if (job.state === 'running') return;
  download.done = job.state === 'done';
  if (!download.done) rmSync(download.path, { force: true });
}

/** A plain file name for a download or an upload: no folders, no control characters, not empty. */
function cleanName(name: string, fallback: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = basename(name.replace(/[\u0000-\u001f\u007f"\\]/g, '')).slice(0, 200);
  return clean && !clean.startsWith('.') ? clean : fallback;
}

function stamp(): string {
  return new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-');
}

export class PageFiles {
  private readonly work: string;
  private readonly downloads = new Map<number, Kept & { done: boolean }>();
  private readonly uploads = new Map<string, Kept>();
  /** Jobs this gateway started, with the name the page knows them by (the last JOB_NAMES_KEPT). */
  private readonly jobNames = new Map<number, string>();
  private readonly folder: string | null;
  private readonly maxUpload: number;
  private readonly off: () => void;

  constructor(private readonly opts: PageFilesOptions) {
    mkdirSync(opts.workDir, { recursive: true, mode: 0o700 });
    this.work = mkdtempSync(join(opts.workDir, 'web-'));
    mkdirSync(join(this.work, 'downloads'), { mode: 0o700 });
    mkdirSync(join(this.work, 'uploads'), { mode: 0o700 });
    this.folder = opts.captureFolder ? realpathSync(opts.captureFolder) : null;
    this.maxUpload = opts.maxUploadBytes ?? 4 * 1024 ** 3;
    this.off = opts.service.on((event, data) => {
      if (event !== 'job') return;
      const job = data as Job;
      const download = this.downloads.get(job.id);
      if (download) downloadEnded(download, job);
    });
  }

  /** Page requests over the WebSocket: file requests become paths here, the rest go to the service. */
  async handle(method: unknown, params: unknown): Promise<unknown> {
    if (method === 'export.start' || method === 'file.open') refusePath(params);
    if (
      isPageRequestName(method) &&
      (method === 'export.start' || method === 'file.open' || method === 'files.list')
    ) {
      const schema = PageRequestSchemas[method] as z.ZodType;
      const parsed = schema.safeParse(params ?? {});
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const where = issue && issue.path.length ? ` (${issue.path.join('.')})` : '';
        throw new ServiceError(
          'bad-request',
          `bad parameters for ${method}${where}: ${issue?.message ?? 'invalid'}`,
        );
      }
      if (method === 'files.list') return this.choices();
      if (method === 'export.start')
        return this.exportForDownload(parsed.data as z.output<(typeof PageRequestSchemas)['export.start']>);
      return this.open(parsed.data as z.output<(typeof PageRequestSchemas)['file.open']>);
    }
    const result = await this.opts.service.handle(method, params, 'websocket');
    return method === 'hello' || (typeof method === 'string' && method.startsWith('capture.'))
      ? this.forPage(result)
      : result;
  }

  /** Events as a page sees them: names instead of this machine's paths, errors in plain words. */
  eventForPage(event: EventName, data: unknown): unknown {
    if (event === 'job') return this.jobForPage(data as Job);
    if (event === 'state') return this.pageState(data as CaptureState);
    return data;
  }

  /** Mounts GET /download/<job id> and POST /upload on the server. */
  mount(mount: RunningServer['mount']): void {
    mount('/download/', (req, res, ctx) => this.serveDownload(req, res, ctx));
    mount('/upload', (req, res, ctx) => this.receiveUpload(req, res, ctx));
  }

  close(): void {
    this.off();
    rmSync(this.work, { recursive: true, force: true });
  }

  private choices(): FileChoices {
    return {
      mode: 'browser',
      folder: this.folder ? this.folderFiles(this.folder) : null,
      recent: [],
      lastFolder: null,
      maxUploadBytes: this.maxUpload,
    };
  }

  private folderFiles(folder: string): NonNullable<FileChoices['folder']> {
    let entries: Dirent[];
    try {
      entries = readdirSync(folder, { withFileTypes: true });
    } catch (err) {
      throw new ServiceError(
        'not-found',
        `the capture folder cannot be read: ${plainWords((err as Error).message)}`,
      );
    }
    const files: NonNullable<FileChoices['folder']> = [];
    for (const entry of entries) {
      if (!CAPTURE_FILE.test(entry.name) || entry.name.startsWith('.')) continue;
      const path = this.inFolder(entry.name);
      if (!path) continue;
      try {
        const st = statSync(path);
        files.push({ name: entry.name, bytes: st.size, modifiedMs: st.mtimeMs });
      } catch {
        // gone since readdir
      }
    }
    return files.sort((a, b) => b.modifiedMs - a.modifiedMs).slice(0, 500);
  }

  /** The real path of a capture-folder file, or null when it is not a regular file inside the folder. */
  private inFolder(name: string): string | null {
    if (!this.folder || name.includes('/') || name.includes('\0') || name.startsWith('.')) return null;
    try {
      // A symbolic link that leads out of the folder does not count as in it.
      const real = realpathSync(join(this.folder, name));
      if (!real.startsWith(this.folder + sep) || !statSync(real).isFile()) return null;
      return real;
    } catch {
      return null;
    }
  }

  private async exportForDownload(
    p: z.output<(typeof PageRequestSchemas)['export.start']>,
  ): Promise<unknown> {
    const file = join(this.work, 'downloads', `${randomBytes(12).toString('base64url')}.${p.format}`);
    const started = (await this.opts.service.handle('export.start', { ...p, path: file }, 'websocket')) as {
      id: number;
    };
    const name = `icmpcap-${stamp()}.${p.format}`;
    const download = { path: file, name, done: false };
    this.downloads.set(started.id, download);
    // Its end may have come already (its event found no download to mark): the service's list tells.
    const now = this.opts.service.jobs.list().find((job) => job.id === started.id);
    if (now !== undefined) downloadEnded(download, now);
    this.nameJob(started.id, name);
    for (const [id, old] of this.downloads) {
      if (this.downloads.size <= KEEP_DOWNLOADS) break;
      rmSync(old.path, { force: true });
      this.downloads.delete(id);
    }
    return started;
  }

  private async open(p: z.output<(typeof PageRequestSchemas)['file.open']>): Promise<unknown> {
    let kept: Kept;
    if (p.from === 'folder') {
      if (!this.folder) {
        throw new ServiceError(
          'bad-request',
          'this service has no capture folder: upload the file, or restart it with --captures DIR',
        );
      }
      const path = this.inFolder(p.name);
      if (!path)
        throw new ServiceError('not-found', `there is no capture file named ${p.name} in the capture folder`);
      kept = { path, name: p.name };
    } else if (p.from === 'upload') {
      const upload = this.uploads.get(p.upload);
      if (!upload) throw new ServiceError('not-found', 'that upload is gone: upload the file again');
      kept = upload;
    } else {
      throw new ServiceError(
        'bad-request',
        'a page in a browser opens files by upload or from the capture folder, not with a dialog of the service machine',
      );
    }
    try {
      const started = (await this.opts.service.handle('file.open', { path: kept.path }, 'websocket')) as {
        id: number;
      };
      this.nameJob(started.id, kept.name);
      return started;
    } catch (err) {
      if (err instanceof ServiceError)
        throw new ServiceError(err.code, this.hidePaths(plainWords(err.message), kept.path, kept.name));
      throw err;
    }
  }

  private serveDownload(req: IncomingMessage, res: ServerResponse, ctx: RouteContext): void {
    if (!ctx.authorized) return ctx.text(401, 'a download needs the token (Authorization: Bearer)');
    if (req.method !== 'GET') return ctx.text(405, 'downloads are fetched with GET');
    const id = /^\d{1,9}$/.test(ctx.rest) ? Number(ctx.rest) : NaN;
    const download = this.downloads.get(id);
    if (!download) return ctx.text(404, 'no such export: export again');
    if (!download.done) return ctx.text(409, 'the export is not finished yet');
    let size: number;
    try {
      size = statSync(download.path).size;
    } catch {
      return ctx.text(404, 'the export is gone: export again');
    }
    res.writeHead(200, {
      'Content-Type': 'application/octet-stream',
      'Content-Length': String(size),
      'Content-Disposition': `attachment; filename="${download.name}"`,
      'X-Content-Type-Options': 'nosniff',
      'Cache-Control': 'no-store',
    });
    const stream = createReadStream(download.path);
    stream.on('error', () => res.destroy());
    stream.pipe(res);
  }

  private receiveUpload(req: IncomingMessage, res: ServerResponse, ctx: RouteContext): Promise<void> | void {
    if (!ctx.authorized) return ctx.text(401, 'an upload needs the token (Authorization: Bearer)');
    if (req.method !== 'POST' || ctx.rest !== '')
      return ctx.text(405, 'upload a capture file with POST /upload');
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (Number.isFinite(declared) && declared > this.maxUpload) {
      req.resume();
      return ctx.text(413, `the file is larger than this service takes (${this.maxUpload} bytes)`);
    }
    let shown = 'upload.pcapng';
    try {
      shown = cleanName(decodeURIComponent(String(req.headers['x-file-name'] ?? '')), shown);
    } catch {
      // a malformed name: keep the fallback
    }
    const id = randomBytes(18).toString('base64url');
    const path = join(this.work, 'uploads', id);
    const out = createWriteStream(path, { flags: 'wx', mode: 0o600 });
    let bytes = 0;
    return new Promise<void>((resolve) => {
      const fail = (status: number, line: string): void => {
        req.unpipe(out);
        out.destroy();
        rmSync(path, { force: true });
        ctx.text(status, line);
        resolve();
      };
      req.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > this.maxUpload)
          fail(413, `the file is larger than this service takes (${this.maxUpload} bytes)`);
      });
      req.on('aborted', () => fail(400, 'the upload was interrupted'));
      out.on('error', (err) => fail(507, `the service cannot keep the upload: ${plainWords(err.message)}`));
      out.on('finish', () => {
        if (res.headersSent) return resolve();
        this.uploads.set(id, { path, name: shown });
        for (const [old, kept] of this.uploads) {
          if (this.uploads.size <= KEEP_UPLOADS) break;
          rmSync(kept.path, { force: true });
          this.uploads.delete(old);
        }
        res
          .writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' })
          .end(JSON.stringify({ upload: id, name: shown, bytes }));
        resolve();
      });
      req.pipe(out);
    });
  }

  /** A job as a page sees it: the name it knows the file by, not the path here; its message in plain words. */
  private jobForPage(job: Job): Job {
    const name = this.jobNames.get(job.id) ?? basename(job.path);
    const message =
      job.message === undefined ? undefined : this.hidePaths(plainWords(job.message), job.path, name);
    return { ...job, path: name, ...(message === undefined ? {} : { message }) };
  }

  private nameJob(id: number, name: string): void {
    this.jobNames.set(id, name);
    for (const old of this.jobNames.keys()) {
      if (this.jobNames.size <= JOB_NAMES_KEPT) break;
      this.jobNames.delete(old);
    }
  }

  private forPage(result: unknown): unknown {
    if (result === null || typeof result !== 'object') return result;
    if ('state' in result && typeof result.state === 'object' && result.state !== null) {
      // hello: its capture state, and the jobs it lists, as the page sees them.
      const jobs = 'jobs' in result && Array.isArray(result.jobs) ? (result.jobs as Job[]) : undefined;
      return {
        ...result,
        state: this.pageState(result.state as CaptureState),
        ...(jobs === undefined ? {} : { jobs: jobs.map((job) => this.jobForPage(job)) }),
      };
    }
    if ('state' in result && typeof result.state === 'string') return this.pageState(result as CaptureState);
    return result;
  }

  private pageState(state: CaptureState): CaptureState {
    if (state.file === undefined) return state;
    const name = this.nameOf(state.file);
    const message =
      state.message === undefined ? undefined : this.hidePaths(plainWords(state.message), state.file, name);
    return { ...state, file: name, ...(message === undefined ? {} : { message }) };
  }

  private nameOf(path: string): string {
    for (const kept of this.uploads.values()) if (kept.path === path) return kept.name;
    return basename(path);
  }

  private hidePaths(message: string, path: string, name: string): string {
    return message.split(path).join(name).split(this.work).join('…');
  }
}

/** A page that names a path gets told why not, in words, before anything is read or written. */
function refusePath(params: unknown): void {
  if (params !== null && typeof params === 'object' && 'path' in params) {
    throw new ServiceError(
      'bad-request',
      'a page in a browser cannot name a path on the service machine: exports are downloads, and files are opened by upload or from the capture folder',
    );
  }
}
