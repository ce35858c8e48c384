/**
 * electron/main against a stand-in `electron` module: the window is locked down, only the app's own
 * frame may call the service, and service events reach the page.
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IPC_EVENT_CHANNEL, IPC_REQUEST_CHANNEL } from '../../electron/common/contract.js';
import {
  type ElectronLike,
  type IpcReply,
  captureFilesIn,
  lockDown,
  runApp,
} from '../../electron/main/app.js';
import { CaptureService } from '../../electron/core/service.js';

class FakeWebContents extends EventEmitter {
  mainFrame = { url: '' };
  sent: unknown[][] = [];
  openHandler: (() => { action: string }) | null = null;
  send(...args: unknown[]): void {
    this.sent.push(args);
  }
  setWindowOpenHandler(h: () => { action: string }): void {
    this.openHandler = h;
  }
}

function standIn(lock = true) {
  const handlers = new Map<string, (event: unknown, ...args: unknown[]) => unknown>();
  const appEvents = new EventEmitter();
  const windows: FakeWindow[] = [];
  class FakeWindow extends EventEmitter {
    webContents = new FakeWebContents();
    constructor(readonly options: Record<string, unknown>) {
      super();
      windows.push(this);
    }
    focused = 0;
    isDestroyed() {
      return false;
    }
    isMinimized() {
      return false;
    }
    restore() {}
    focus() {
      this.focused++;
    }
    loadFile(path: string) {
      this.webContents.mainFrame.url = `file://${path}`;
      return Promise.resolve();
    }
  }
  const electron = {
    app: {
      whenReady: () => Promise.resolve(),
      on: (e: string, l: (...a: unknown[]) => void) => appEvents.on(e, l),
      quit: () => appEvents.emit('quit-called'),
      requestSingleInstanceLock: () => lock,
    },
    BrowserWindow: FakeWindow,
    ipcMain: {
      handle: (channel: string, l: (event: unknown, ...args: unknown[]) => unknown) =>
        handlers.set(channel, l),
    },
  } as unknown as ElectronLike;
  return { electron, handlers, windows, appEvents };
}

const spoolDir = join(mkdtempSync(join(tmpdir(), 'icmpcap-main-')), 'spool');

function service(): CaptureService {
  return new CaptureService({
    native: new Error('native addon not built in this test'),
    version: '9.9.9',
    spoolDir,
  });
}

describe('electron main', () => {
  it('creates a sandboxed, isolated window without Node in the page', async () => {
    const { electron, windows } = standIn();
    const svc = service();
    await runApp(electron, svc, { preload: '/app/preload.js', indexHtml: '/app/index.html' });
    const prefs = windows[0]!.options.webPreferences as Record<string, unknown>;
    expect(prefs).toMatchObject({
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      preload: '/app/preload.js',
    });
    svc.close();
  });

  it('answers requests from the app frame and refuses other frames and senders', async () => {
    const { electron, handlers, windows } = standIn();
    const svc = service();
    await runApp(electron, svc, { preload: '/p.js', indexHtml: '/app/index.html' });
    const wc = windows[0]!.webContents;
    const handle = handlers.get(IPC_REQUEST_CHANNEL)!;

    const ok = (await handle({ sender: wc, senderFrame: wc.mainFrame }, 'hello', {})) as IpcReply;
    expect(ok.ok).toBe(true);
    expect(ok.ok && (ok.result as { version: string }).version).toBe('9.9.9');

    const otherFrame = { url: 'file:///app/index.html' };
    const refused = (await handle({ sender: wc, senderFrame: otherFrame }, 'hello', {})) as IpcReply;
    expect(refused).toMatchObject({ ok: false, error: { code: 'bad-request' } });

    const foreign = (await handle(
      { sender: new FakeWebContents(), senderFrame: wc.mainFrame },
      'hello',
      {},
    )) as IpcReply;
    expect(foreign.ok).toBe(false);

    const bad = (await handle({ sender: wc, senderFrame: wc.mainFrame }, 'view.rows', {
      start: -1,
    })) as IpcReply;
    expect(bad).toMatchObject({ ok: false, error: { code: 'bad-request' } });
    const unknown = (await handle({ sender: wc, senderFrame: wc.mainFrame }, 'fs.readFile', {})) as IpcReply;
    expect(unknown).toMatchObject({ ok: false, error: { code: 'unknown-method' } });
    svc.close();
  });

  it('forwards service events to the page', async () => {
    const { electron, windows } = standIn();
    const svc = service();
    await runApp(electron, svc, { preload: '/p.js', indexHtml: '/app/index.html' });
    await svc.handle('capture.clear', {}, 'ipc');
    expect(windows[0]!.webContents.sent.some((m) => m[0] === IPC_EVENT_CHANNEL && m[1] === 'counts')).toBe(
      true,
    );
    svc.close();
  });

  it('opens a capture file named on the command line, and one passed to a second instance', async () => {
    const { electron, windows, appEvents } = standIn();
    const svc = service();
    await runApp(
      electron,
      svc,
      { preload: '/p.js', indexHtml: '/app/index.html' },
      ['icmpcap', '--x', 'one.pcapng'],
      '/data',
    );
    const wc = windows[0]!.webContents;
    const jobPaths = () => wc.sent.filter((m) => m[1] === 'job').map((m) => (m[2] as { path: string }).path);
    await new Promise((r) => setTimeout(r, 50));
    expect(jobPaths()).toContain('/data/one.pcapng');
    appEvents.emit('second-instance', {}, ['icmpcap', 'file:///tmp/two.pcap'], '/home');
    await new Promise((r) => setTimeout(r, 50));
    expect(jobPaths()).toContain('/tmp/two.pcap');
    expect(windows[0]!.focused).toBe(1);
    svc.close();
  });

  it('leaves the work to the running instance when it cannot get the lock', async () => {
    const { electron, windows, appEvents } = standIn(false);
    let quit = 0;
    appEvents.on('quit-called', () => quit++);
    const svc = service();
    expect(await runApp(electron, svc, { preload: '/p.js', indexHtml: '/app/index.html' })).toBeNull();
    expect(windows).toHaveLength(0);
    expect(quit).toBe(1);
    svc.close();
  });

  it('picks capture files out of a command line', () => {
    expect(
      captureFilesIn(['/usr/lib/icmpcap/icmpcap', '--no-sandbox', 'a.PCAP', 'b.txt', 'c/d.pcapng'], '/w'),
    ).toEqual(['/w/a.PCAP', '/w/c/d.pcapng']);
  });

  it('refuses navigation, webviews and new windows', () => {
    const wc = new FakeWebContents();
    lockDown(wc as never);
    let prevented = 0;
    const event = { preventDefault: () => prevented++ };
    wc.emit('will-navigate', event, 'https://example.invalid/');
    wc.emit('will-attach-webview', event);
    expect(prevented).toBe(2);
    expect(wc.openHandler!()).toEqual({ action: 'deny' });
  });
});
