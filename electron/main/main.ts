/** Electron entry point: the real `electron` module, the capture service and the built renderer. */
import * as electron from 'electron';
import { join } from 'node:path';
import { loadNative } from '../core/native.js';
import { projectRoot } from '../core/paths.js';
import { attachInsights } from '../core/insights/index.js';
import { RemoteHosts } from '../core/remote/hosts.js';
import { CaptureService } from '../core/service.js';
import { version } from '../core/version.js';
import { warmUp } from '../core/service/warm-up.js';
import { runApp } from './app.js';
import { notifyFirings } from './notify.js';

const root = projectRoot();
let native;
try {
  native = loadNative();
} catch (err) {
  native = err instanceof Error ? err : new Error(String(err));
}
const service = new CaptureService({ native, version: version() });
service.watchInterfaces();
attachInsights(service);
const win = await runApp(
  electron,
  service,
  {
    preload: join(root, 'dist', 'preload', 'preload', 'preload.js'),
    indexHtml: join(root, 'dist', 'renderer', 'index.html'),
  },
  process.argv.slice(1),
  process.cwd(),
  new RemoteHosts(),
);
// The capture path is warmed while the window waits for the user (core/service/warm-up.ts).
void warmUp(service, { delayMs: 2000 });
if (win)
  notifyFirings(electron, service, () => {
    if (win.isDestroyed()) return;
    win.show();
    win.focus();
  });
