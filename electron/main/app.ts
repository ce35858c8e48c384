/**
 * The Electron main process, written against the few Electron APIs it uses so that unit tests can drive
 * it with a stand-in `electron` module. main.ts passes the real one.
 */
import type {
  BrowserWindow,
  BrowserWindowConstructorOptions,
  IpcMainInvokeEvent,
  Session,
  WebContents,
} from 'electron';
import { IPC_EVENT_CHANNEL, IPC_REQUEST_CHANNEL, type Job } from '../common/contract.js';
import { plainWords } from '../common/plain-words.js';
import { type DialogLike, DialogFiles } from './dialogs.js';
import { RemoteHosts } from '../core/remote/hosts.js';
import type { CaptureService } from '../core/service.js';
import { contractError } from '../common/contract-error.js';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ElectronLike {
  app: {
    whenReady(): Promise<unknown>;
    on(event: 'window-all-closed' | 'before-quit', listener: () => void): unknown;
    on(event: 'web-contents-created', listener: (e: unknown, contents: WebContents) => void): unknown;
    on(
      event: 'second-instance',
      listener: (e: unknown, argv: string[], workingDirectory: string) => void,
    ): unknown;
    requestSingleInstanceLock(): boolean;
    quit(): void;
    /** Where dialogs.json (last folder, recent files) is kept; absent in old stand-ins. */
    getPath?(name: 'userData'): string;
  };
  dialog: DialogLike;
  BrowserWindow: new (options: BrowserWindowConstructorOptions) => BrowserWindow;
  ipcMain: {
    handle(channel: string, listener: (event: IpcMainInvokeEvent, ...args: unknown[]) => unknown): void;
  };
}

export interface AppPaths {
  preload: string;
  indexHtml: string;
}

/** Capture files named on the command line (the desktop entry passes them for .pcap and .pcapng). */
export function captureFilesIn(argv: readonly string[], cwd: string): string[] {
  return argv
    .filter((arg) => !arg.startsWith('-') && /\.(pcapng|pcap|cap|ntar)$/i.test(arg))
    .map((arg) => resolve(cwd, arg.startsWith('file://') ? fileURLToPath(arg) : arg));
}

export type IpcReply = { ok: true; result: unknown } | { ok: false; error: ReturnType<typeof contractError> };

export const WINDOW_OPTIONS = (preload: string): BrowserWindowConstructorOptions => ({
  width: 1280,
  height: 800,
  minWidth: 800,
  minHeight: 500,
  title: 'icmpcap',
  show: true,
  webPreferences: {
    preload,
    contextIsolation: true,
    sandbox: true,
    nodeIntegration: false,
    webSecurity: true,
    spellcheck: false,
  },
});

/** Permissions the page may have: notifications (for alerts); everything else is denied. */
export const ALLOWED_PERMISSIONS: ReadonlySet<string> = new Set(['notifications']);

/** Denies every permission request and check the app does not use (camera, geolocation, USB, ...). */
export function denyPermissions(
  session: Pick<Session, 'setPermissionRequestHandler' | 'setPermissionCheckHandler'>,
): void {
  session.setPermissionRequestHandler((_contents, permission, callback) =>
    callback(ALLOWED_PERMISSIONS.has(permission)),
  );
  session.setPermissionCheckHandler((_contents, permission) => ALLOWED_PERMISSIONS.has(permission));
}

/** Refuses navigation away from the app and every new window. */
export function lockDown(contents: WebContents): void {
  contents.on('will-navigate', (event) => event.preventDefault());
  contents.on('will-attach-webview', (event) => event.preventDefault());
  contents.setWindowOpenHandler(() => ({ action: 'deny' }));
}

export async function runApp(
  electron: ElectronLike,
  service: CaptureService,
  paths: AppPaths,
  argv: readonly string[] = [],
  cwd = process.cwd(),
  remote?: RemoteHosts,
): Promise<BrowserWindow | null> {
  const { app, BrowserWindow: Window, ipcMain } = electron;
  // One window: opening a capture file from the file manager while icmpcap runs opens it there.
  if (!app.requestSingleInstanceLock()) {
    app.quit();
    return null;
  }
  app.on('web-contents-created', (_e, contents) => lockDown(contents));
  await app.whenReady();
  const win = new Window(WINDOW_OPTIONS(paths.preload));
  denyPermissions(win.webContents.session);
  const indexUrl = new URL(`file://${paths.indexHtml}`).href;
  const dialogFiles = new DialogFiles(
    electron.dialog,
    win,
    service,
    app.getPath ? join(app.getPath('userData'), 'dialogs.json') : null,
  );

  ipcMain.handle(IPC_REQUEST_CHANNEL, async (event, method, params): Promise<IpcReply> => {
    // Only the app's own page in our window may talk to the service.
    const frame = event.senderFrame;
    if (
      event.sender !== win.webContents ||
      !frame ||
      frame !== win.webContents.mainFrame ||
      frame.url !== indexUrl
    ) {
      return { ok: false, error: { code: 'bad-request', message: 'request from an unknown frame refused' } };
    }
    try {
      // Remote agents are reached by this process on the page's behalf (electron/core/remote).
      if (remote && RemoteHosts.handles(method))
        return { ok: true, result: await remote.handle(method, params) };
      // File requests become native dialogs here; the page never names a path.
      return { ok: true, result: await dialogFiles.handle(method, params) };
    } catch (err) {
      return { ok: false, error: contractError(err) };
    }
  });

  const off = service.on((event, data) => {
    if (win.isDestroyed()) return;
    const job = event === 'job' ? (data as Job) : null;
    const shown = job?.message ? { ...job, message: plainWords(job.message) } : data;
    win.webContents.send(IPC_EVENT_CHANNEL, event, shown);
  });
  const offRemote = remote?.on((event, data) => {
    if (!win.isDestroyed()) win.webContents.send(IPC_EVENT_CHANNEL, event, data);
  });
  win.on('closed', () => {
    off();
    offRemote?.();
  });
  app.on('window-all-closed', () => app.quit());
  app.on('before-quit', () => {
    remote?.close();
    service.close();
  });
  const openFiles = (files: string[]): void => {
    const file = files[0];
    if (file === undefined) return;
    // Progress and errors reach the page as job events, like an open started from the UI.
    dialogFiles.openPath(file).catch((err: unknown) => {
      if (win.isDestroyed()) return;
      const message = `cannot open ${file}: ${plainWords(contractError(err).message)}`;
      win.webContents.send(IPC_EVENT_CHANNEL, 'state', { state: 'error', interfaces: [], message });
    });
  };
  app.on('second-instance', (_e, otherArgv, otherCwd) => {
    if (win.isDestroyed()) return;
    if (win.isMinimized()) win.restore();
    win.focus();
    openFiles(captureFilesIn(otherArgv, otherCwd));
  });
  await win.loadFile(paths.indexHtml);
  openFiles(captureFilesIn(argv, cwd));
  return win;
}
