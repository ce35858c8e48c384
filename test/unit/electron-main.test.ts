/**
 * electron/main against a stand-in `electron` module: the window is locked down, only the app's own
 * frame may call the service, and service events reach the page.
 */
import { EventEmitter } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IPC_EVENT_CHANNEL, IPC_REQUEST_CHANNEL } from '../../electron/common/contract.js';
import {
  type ElectronLike,
  type IpcReply,
  captureFilesIn,
  denyPermissions,
  lockDown,
  runApp,
} from '../../electron/main/app.js';
import { CaptureService } from '../../electron/core/service.js';
import { link, pcapFile } from '../../electron/core/files/testing/file-builder.js';
import { ipv4Icmp } from '../../electron/core/files/testing/packets.js';

class FakeSession {
  requestHandler: ((c: unknown, permission: string, cb: (ok: boolean) => void) => void) | null = null;
  checkHandler: ((c: unknown, permission: string) => boolean) | null = null;
  setPermissionRequestHandler(h: FakeSession['requestHandler']): void {
    this.requestHandler = h;
  }
  setPermissionCheckHandler(h: FakeSession['checkHandler']): void {
    this.checkHandler = h;
  }
}

class FakeWebContents extends EventEmitter {
  mainFrame = { url: '' };
  session = new FakeSession();
  sent: unknown[][] = [];
  openHandler: (() => { action: string }) | null = null;
  send(...args: unknown[]): void {
    this.sent.push(args);
  }
  setWindowOpenHandler(h: () => { action: string }): void {
    this.openHandler = h;
  }
}

/** The native dialogs, answering what the test queued; records what they were asked. */
class FakeDialog {
  answers: string[][] = [];
  asked: { kind: 'save' | 'open'; options: Record<string, unknown> }[] = [];
  showSaveDialog(_w: unknown, options: Record<string, unknown>) {
    this.asked.push({ kind: 'save', options });
    const path = this.answers.shift()?.[0];
    return Promise.resolve(path === undefined ? { canceled: true } : { canceled: false, filePath: path });
  }
  showOpenDialog(_w: unknown, options: Record<string, unknown>) {
    this.asked.push({ kind: 'open', options });
    const paths = this.answers.shift();
    return Promise.resolve(
      paths === undefined ? { canceled: true, filePaths: [] } : { canceled: false, filePaths: paths },
    );
  }
}

function standIn(lock = true, userData?: string) {
  const dialog = new FakeDialog();
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
      ...(userData ? { getPath: () => userData } : {}),
    },
    dialog,
    BrowserWindow: FakeWindow,
    ipcMain: {
      handle: (channel: string, l: (event: unknown, ...args: unknown[]) => unknown) =>
        handlers.set(channel, l),
    },
  } as unknown as ElectronLike;
  return { electron, handlers, windows, appEvents, dialog };
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

  it('denies every permission the app does not use, and allows notifications', () => {
    const session = new FakeWebContents().session;
    denyPermissions(session as never);
    const answers: Record<string, boolean> = {};
    for (const p of ['media', 'geolocation', 'openExternal', 'clipboard-read', 'hid', 'notifications']) {
      session.requestHandler!(null, p, (ok) => (answers[p] = ok));
      expect(session.checkHandler!(null, p)).toBe(p === 'notifications');
    }
    expect(answers).toEqual({
      media: false,
      geolocation: false,
      openExternal: false,
      'clipboard-read': false,
      hid: false,
      notifications: true,
    });
  });
});

describe('electron main: files come from the native dialogs only', () => {
  const dir = mkdtempSync(join(tmpdir(), 'icmpcap-dialogs-'));
  const capture = join(dir, 'pings.pcap');
  writeFileSync(
    capture,
    pcapFile(
      1,
      Array.from({ length: 50 }, (_, i) => ({
        tsNs: 1_700_000_000_000_000_000n + BigInt(i) * 1_000_000n,
        frame: link.ethernet(ipv4Icmp({ seq: i + 1 })),
      })),
    ),
  );

  async function app() {
    const env = standIn(true, join(dir, 'userData'));
    const svc = service();
    await runApp(env.electron, svc, { preload: '/p.js', indexHtml: '/app/index.html' });
    const wc = env.windows[0]!.webContents;
    const ask = async (method: string, params: unknown) =>
      (await env.handlers.get(IPC_REQUEST_CHANNEL)!(
        { sender: wc, senderFrame: wc.mainFrame },
        method,
        params,
      )) as IpcReply;
    const finished = async (id: number) => {
      for (let i = 0; i < 100; i++) {
        const job = wc.sent
          .filter((m) => m[1] === 'job')
          .map((m) => m[2] as { id: number; state: string; message?: string })
          .find((j) => j.id === id && j.state !== 'running');
        if (job) return job;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`job ${id} did not finish`);
    };
    return { ...env, svc, ask, finished };
  }

  it('refuses a path named by the page, before any dialog', async () => {
    const { ask, dialog, svc } = await app();
    expect(await ask('file.open', { path: '/etc/shadow' })).toMatchObject({
      ok: false,
      error: { code: 'bad-request' },
    });
    expect(
      await ask('export.start', { format: 'csv', scope: 'all', path: join(dir, 'evil.csv') }),
    ).toMatchObject({ ok: false, error: { code: 'bad-request' } });
    expect(dialog.asked).toEqual([]);
    expect(existsSync(join(dir, 'evil.csv'))).toBe(false);
    svc.close();
  });

  it('opens what the open dialog chose, remembers it, and exports where the save dialog chose', async () => {
    const { ask, dialog, finished, svc } = await app();
    dialog.answers.push([capture]);
    const opened = await ask('file.open', { from: 'dialog' });
    expect(opened.ok).toBe(true);
    expect((await finished((opened as { result: { id: number } }).result.id)).state).toBe('done');
    expect(dialog.asked[0]).toMatchObject({ kind: 'open', options: { properties: ['openFile'] } });

    const list = (await ask('files.list', {})) as {
      ok: true;
      result: { recent: { key: string; name: string }[]; lastFolder: string };
    };
    expect(list.result).toMatchObject({
      mode: 'dialog',
      lastFolder: dir,
      recent: [{ name: 'pings.pcap', folder: dir }],
    });

    const out = join(dir, 'chosen.pcap');
    dialog.answers.push([out]);
    const exported = await ask('export.start', { format: 'pcap', scope: 'all' });
    expect((await finished((exported as { result: { id: number } }).result.id)).state).toBe('done');
    expect(statSync(out).size).toBe(statSync(capture).size - 50 * 14);
    // GTK asks before replacing a file only when told to; the dialog starts in the last folder.
    expect(dialog.asked[1]!.options).toMatchObject({
      properties: expect.arrayContaining(['showOverwriteConfirmation']) as unknown,
    });
    expect(String(dialog.asked[1]!.options.defaultPath)).toMatch(new RegExp(`^${dir}/icmpcap-.*\\.pcap$`));

    // Cancelled dialogs start nothing.
    expect(await ask('export.start', { format: 'pcap', scope: 'all' })).toEqual({
      ok: true,
      result: { id: null },
    });
    expect(await ask('file.open', { from: 'dialog' })).toEqual({ ok: true, result: { id: null } });

    // A recent file opens by its key; the page never sees more than its name and folder.
    const again = await ask('file.open', { from: 'recent', key: list.result.recent[0]!.key });
    expect((await finished((again as { result: { id: number } }).result.id)).state).toBe('done');
    expect(JSON.parse(readFileSync(join(dir, 'userData', 'dialogs.json'), 'utf8'))).toMatchObject({
      lastFolder: dir,
      recent: [capture],
    });
    svc.close();
  });

  it('says in plain words when the chosen file cannot be read', async () => {
    const { ask, dialog, svc } = await app();
    dialog.answers.push([dir], [join(dir, 'gone.pcap')]);
    const folder = await ask('file.open', { from: 'dialog' });
    expect(folder).toMatchObject({
      ok: false,
      error: { message: expect.stringContaining('is not a file') as unknown },
    });
    const gone = await ask('file.open', { from: 'dialog' });
    expect(gone).toMatchObject({
      ok: false,
      error: { code: 'not-found', message: 'cannot open gone.pcap: there is no such file or folder' },
    });
    svc.close();
  });
});
