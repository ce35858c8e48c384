#!/usr/bin/env node
// `npm start`: builds what changed, then opens the desktop app. Where no Electron binary can be had (as
// on machines without internet), or when started as root (the GUI never runs as root), it says so in one
// line and serves the same UI in browser mode on 127.0.0.1 with a random token in the printed URL.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

/** The capture service's V8 and Node flags (build/app-meta.cjs): taken only at a process's start. */
const { serviceV8Flags, serviceNodeFlags } = createRequire(import.meta.url)('../build/app-meta.cjs');

const root = new URL('..', import.meta.url).pathname;
process.chdir(root);

const build = spawnSync('npm', ['run', '--silent', 'build'], { stdio: 'inherit' });
if (build.status !== 0) {
  console.error('icmpcap: the build failed (see above); fix it and run npm start again');
  process.exit(1);
}

function electronBinary() {
  const dir = join(root, 'node_modules', 'electron');
  const name = existsSync(join(dir, 'path.txt')) ? readFileSync(join(dir, 'path.txt'), 'utf8') : 'electron';
  if (process.env.ELECTRON_OVERRIDE_DIST_PATH) {
    const p = join(process.env.ELECTRON_OVERRIDE_DIST_PATH, name);
    return existsSync(p) ? { path: p } : { why: `ELECTRON_OVERRIDE_DIST_PATH has no ${name}` };
  }
  const local = join(dir, 'dist', name);
  if (existsSync(local)) return { path: local };
  // Electron fetches its binary on first run; try once, quietly.
  const fetch = spawnSync(process.execPath, [join(dir, 'install.js')], { stdio: 'ignore', timeout: 120_000 });
  if (fetch.status === 0 && existsSync(join(dir, 'path.txt'))) {
    const fetched = join(dir, 'dist', readFileSync(join(dir, 'path.txt'), 'utf8'));
    if (existsSync(fetched)) return { path: fetched };
  }
  return { why: 'the Electron binary could not be downloaded (no network?)' };
}

const args = process.argv.slice(2);
let why;
if (process.getuid?.() === 0) {
  why = 'started as root, and the desktop window never runs as root';
} else {
  const electron = electronBinary();
  if (electron.path) {
    const child = spawn(electron.path, [`--js-flags=${serviceV8Flags.join(' ')}`, '.', ...args], {
      stdio: 'inherit',
    });
    child.on('exit', (code) => process.exit(code ?? 0));
    process.on('SIGINT', () => child.kill('SIGINT'));
    process.on('SIGTERM', () => child.kill('SIGTERM'));
  } else {
    why = electron.why;
  }
}
if (why) {
  console.log(`icmpcap: ${why}: serving the same UI in browser mode instead (Ctrl-C stops it)`);
  const child = spawn(
    process.execPath,
    [...serviceV8Flags, ...serviceNodeFlags, join(root, 'bin', 'icmpcap.mjs'), 'serve', ...args],
    {
      stdio: 'inherit',
    },
  );
  // The server handles Ctrl-C itself (the terminal sends SIGINT to the whole group); wait for it.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  child.on('exit', (code) => process.exit(code ?? 0));
}
