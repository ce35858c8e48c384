/**
 * Runs `icmpcap serve` inside a network namespace and chromium inside the same namespace (so the
 * service's 127.0.0.1 is the browser's), for end-to-end tests with real packets.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, type Page, chromium } from '@playwright/test';
import { CHROMIUM_ARGS } from '../../playwright.config.js';

export interface ServedApp {
  url: string;
  proc: ChildProcess;
  browser: Browser;
  /** Everything the server printed so far. */
  output(): string;
  close(): Promise<void>;
}

/**
 * Starts `icmpcap serve SERVE_ARGS` in namespace `ns` and a browser for it. Should anything fail once the service
 * started (it never says it serves or captures, the browser does not launch), what was started is stopped and the
 * folder removed before the error is thrown: nothing is left running for the next spec.
 */
export async function serveInNetns(ns: string, serveArgs: string[]): Promise<ServedApp> {
  const tmp = mkdtempSync(join(tmpdir(), 'icmpcap-e2e-'));
  let proc: ChildProcess | null = null;
  let browser: Browser | null = null;
  let out = '';
  try {
    const wrapper = join(tmp, 'chromium-in-netns');
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${ns} /usr/bin/chromium "$@"\n`);
    chmodSync(wrapper, 0o755);
    const served = spawn(
      'ip',
      ['netns', 'exec', ns, process.execPath, 'bin/icmpcap.mjs', 'serve', ...serveArgs],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    proc = served;
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`icmpcap serve did not start:\n${out}`)), 20_000);
      const onData = (d: Buffer) => {
        out += d.toString();
        const m = /serving on (http:\/\/\S+)/.exec(out);
        const noStart = serveArgs.includes('--no-start');
        if (m && (noStart || /capturing with|not capturing/.test(out))) {
          clearTimeout(timer);
          if (/not capturing/.test(out)) reject(new Error(`icmpcap serve is not capturing:\n${out}`));
          else resolve(m[1]!);
        }
      };
      served.stdout.on('data', onData);
      served.stderr.on('data', onData);
      served.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      served.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`icmpcap serve exited with ${code}:\n${out}`));
      });
    });
    browser = await chromium.launch({ executablePath: wrapper, args: CHROMIUM_ARGS });
    const launched = browser;
    return {
      url,
      proc: served,
      browser: launched,
      output: () => out,
      async close() {
        await launched.close().catch(() => undefined);
        await stop(served);
        rmSync(tmp, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await browser?.close().catch(() => undefined);
    if (proc) await stop(proc);
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** Stops a process this module started: SIGINT (serve stops cleanly), SIGKILL if it is still there after 10 s. */
async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGINT');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/**
 * Opens the app in a new page that records page errors and Content-Security-Policy violations into
 * `problems` (tests assert it stays empty).
 */
export async function openCheckedPage(
  app: ServedApp,
  problems: string[],
  opts: {
    colorScheme?: 'light' | 'dark';
    height?: number;
    /** Browser permissions granted to the page (e.g. 'notifications'). */
    permissions?: string[];
    /** Runs before the app loads (init scripts that observe the page). */
    beforeGoto?: (page: Page) => Promise<void>;
  } = {},
): Promise<Page> {
  const page = await app.browser.newPage({
    viewport: { width: 1400, height: opts.height ?? 900 },
    colorScheme: opts.colorScheme ?? 'light',
    ...(opts.permissions ? { permissions: opts.permissions } : {}),
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content Security Policy|CSP violation/.test(msg.text()))
      problems.push(msg.text());
  });
  await page.addInitScript(() =>
    document.addEventListener('securitypolicyviolation', (e) =>
      console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI} ${e.sample}`),
    ),
  );
  await opts.beforeGoto?.(page);
  await page.goto(app.url);
  return page;
}
