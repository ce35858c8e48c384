/**
 * The Electron main process, written against the few Electron APIs it uses so that unit tests can drive
 * it with a stand-in `electron` module. main.ts passes the real one.
 */
import type {
  BrowserWindow,
  BrowserWindowConstructorOptions,
  IpcMainInvokeEvent,
  WebContents,
} from 'electron';
import { IPC_EVENT_CHANNEL, IPC_REQUEST_CHANNEL } from '../common/contract.js';
import type { CaptureService } from '../core/service.js';
import { contractError } from '../core/server.js';

export interface ElectronLike {
  app: {
    whenReady(): Promise<unknown>;
    on(event: 'window-all-closed' | 'before-quit', listener: () => void): unknown;
    on(event: 'web-contents-created', listener: (e: unknown, contents: WebContents) => void): unknown;
    quit(): void;
  };
  BrowserWindow: new (options: BrowserWindowConstructorOptions) => BrowserWindow;
  ipcMain: {
    handle(channel: string, listener: (event: IpcMainInvokeEvent, ...args: unknown[]) => unknown): void;
  };
}

export interface AppPaths {
  preload: string;
  indexHtml: string;
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
): Promise<BrowserWindow> {
  const { app, BrowserWindow: Window, ipcMain } = electron;
  app.on('web-contents-created', (_e, contents) => lockDown(contents));
  await app.whenReady();
  const win = new Window(WINDOW_OPTIONS(paths.preload));
  const indexUrl = new URL(`file://${paths.indexHtml}`).href;

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
      return { ok: true, result: await service.handle(method, params, 'ipc') };
    } catch (err) {
      return { ok: false, error: contractError(err) };
    }
  });

  const off = service.on((event, data) => {
    if (!win.isDestroyed()) win.webContents.send(IPC_EVENT_CHANNEL, event, data);
  });
  win.on('closed', off);
  app.on('window-all-closed', () => app.quit());
  app.on('before-quit', () => service.close());
  await win.loadFile(paths.indexHtml);
  return win;
}
