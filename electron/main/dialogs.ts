/**
 * Files in the Electron window: paths come from the native dialogs only. The page asks "export" or
 * "open"; the main process shows dialog.showSaveDialog / showOpenDialog, remembers the last folder and
 * the recent files (in userData/dialogs.json), and hands the service the chosen path. A page that names
 * a path itself is refused.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, extname, join } from 'node:path';
import type {
  BrowserWindow,
  OpenDialogOptions,
  OpenDialogReturnValue,
  SaveDialogOptions,
  SaveDialogReturnValue,
} from 'electron';
import type { z } from 'zod';
import { type ExportFormat, type FileChoices, PageRequestSchemas, ServiceError } from '../common/contract.js';
import { plainWords } from '../common/plain-words.js';
import type { CaptureService } from '../core/service.js';

export interface DialogLike {
  showSaveDialog(window: BrowserWindow, options: SaveDialogOptions): Promise<SaveDialogReturnValue>;
  showOpenDialog(window: BrowserWindow, options: OpenDialogOptions): Promise<OpenDialogReturnValue>;
}

interface Remembered {
  lastFolder: string | null;
  recent: string[];
}

const RECENT_MAX = 10;
const FORMAT_FILTERS: Record<ExportFormat, { name: string; extensions: string[] }> = {
  pcapng: { name: 'pcapng capture', extensions: ['pcapng'] },
  pcap: { name: 'pcap capture', extensions: ['pcap'] },
  csv: { name: 'CSV table', extensions: ['csv'] },
  ndjson: { name: 'NDJSON (one JSON object a line)', extensions: ['ndjson'] },
};

function keyOf(path: string): string {
  return createHash('sha256').update(path).digest('base64url').slice(0, 16);
}

function stamp(): string {
  return new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-');
}

export class DialogFiles {
  private remembered: Remembered = { lastFolder: null, recent: [] };

  constructor(
    private readonly dialog: DialogLike,
    private readonly window: BrowserWindow,
    private readonly service: CaptureService,
    /** Where the last folder and recent files are kept (null: only for this run). */
    private readonly stateFile: string | null,
  ) {
    try {
      if (stateFile && existsSync(stateFile)) {
        const saved = JSON.parse(readFileSync(stateFile, 'utf8')) as Partial<Remembered>;
        this.remembered = {
          lastFolder: typeof saved.lastFolder === 'string' ? saved.lastFolder : null,
          recent: Array.isArray(saved.recent)
            ? saved.recent.filter((p): p is string => typeof p === 'string').slice(0, RECENT_MAX)
            : [],
        };
      }
    } catch {
      // a damaged file: start afresh
    }
  }

  /** Page requests over IPC: file requests become dialogs, the rest go to the service. */
  async handle(method: unknown, params: unknown): Promise<unknown> {
    if (method !== 'export.start' && method !== 'file.open' && method !== 'files.list') {
      return this.service.handle(method, params, 'ipc');
    }
    if (params !== null && typeof params === 'object' && 'path' in params) {
      throw new ServiceError(
        'bad-request',
        'the page cannot name a path: files are chosen in the open and save dialogs',
      );
    }
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
    if (method === 'export.start') {
      return this.exportWithDialog(parsed.data as z.output<(typeof PageRequestSchemas)['export.start']>);
    }
    return this.openWithDialog(parsed.data as z.output<(typeof PageRequestSchemas)['file.open']>);
  }

  /** Opens a file the user named outside the page (command line, file manager). */
  async openPath(path: string): Promise<unknown> {
    const started = await this.service.handle('file.open', { path }, 'ipc');
    this.remember(path);
    return started;
  }

  choices(): FileChoices {
    return {
      mode: 'dialog',
      folder: null,
      recent: this.remembered.recent
        .filter((p) => existsSync(p))
        .map((p) => ({ key: keyOf(p), name: basename(p), folder: dirname(p) })),
      lastFolder: this.remembered.lastFolder,
      maxUploadBytes: null,
    };
  }

  private startFolder(): string {
    const last = this.remembered.lastFolder;
    return last && existsSync(last) ? last : homedir();
  }

  private async exportWithDialog(p: z.output<(typeof PageRequestSchemas)['export.start']>): Promise<unknown> {
    const chosen = await this.dialog.showSaveDialog(this.window, {
      title: 'Export packets',
      defaultPath: join(this.startFolder(), `icmpcap-${stamp()}.${p.format}`),
      filters: [FORMAT_FILTERS[p.format], { name: 'All files', extensions: ['*'] }],
      // The dialog asks before replacing a file (GTK does only when told).
      properties: ['createDirectory', 'showOverwriteConfirmation'],
    });
    if (chosen.canceled || !chosen.filePath) return { id: null };
    const path = extname(chosen.filePath) ? chosen.filePath : `${chosen.filePath}.${p.format}`;
    this.remembered.lastFolder = dirname(path);
    this.save();
    // The save dialog has asked before replacing a file.
    return this.plain(() => this.service.handle('export.start', { ...p, path, overwrite: true }, 'ipc'));
  }

  private async openWithDialog(p: z.output<(typeof PageRequestSchemas)['file.open']>): Promise<unknown> {
    let path: string;
    if (p.from === 'dialog') {
      const chosen = await this.dialog.showOpenDialog(this.window, {
        title: 'Open a capture file',
        defaultPath: this.startFolder(),
        filters: [
          { name: 'Capture files', extensions: ['pcapng', 'pcap', 'cap', 'ntar'] },
          { name: 'All files', extensions: ['*'] },
        ],
        properties: ['openFile'],
      });
      const first = chosen.filePaths[0];
      if (chosen.canceled || first === undefined) return { id: null };
      path = first;
    } else if (p.from === 'recent') {
      const found = this.remembered.recent.find((r) => keyOf(r) === p.key);
      if (!found) throw new ServiceError('not-found', 'that file is no longer in the recent list');
      path = found;
    } else {
      throw new ServiceError('bad-request', 'in the app window, choose the file in the open dialog');
    }
    // Checked before the service replaces what is shown: a file that is gone or a folder changes nothing.
    let isFile = false;
    try {
      isFile = statSync(path).isFile();
    } catch (err) {
      throw new ServiceError(
        'not-found',
        `cannot open ${basename(path)}: ${plainWords((err as Error).message)}`,
      );
    }
    if (!isFile)
      throw new ServiceError('bad-request', `${basename(path)} is not a file: choose a pcap or pcapng file`);
    this.remembered.lastFolder = dirname(path);
    this.save();
    return this.plain(() => this.openPath(path));
  }

  private async plain(work: () => Promise<unknown>): Promise<unknown> {
    try {
      return await work();
    } catch (err) {
      if (err instanceof ServiceError) throw new ServiceError(err.code, plainWords(err.message));
      throw err;
    }
  }

  private remember(path: string): void {
    this.remembered.recent = [path, ...this.remembered.recent.filter((p) => p !== path)].slice(0, RECENT_MAX);
    this.save();
  }

  private save(): void {
    if (!this.stateFile) return;
    try {
      mkdirSync(dirname(this.stateFile), { recursive: true });
      writeFileSync(this.stateFile, JSON.stringify(this.remembered, null, 2), { mode: 0o600 });
    } catch {
      // remembering is a convenience: the dialogs work without it
    }
  }
}
