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

export async function serveInNetns(ns: string, serveArgs: string[]): Promise<ServedApp> {
  const tmp = mkdtempSync(join(tmpdir(), 'icmpcap-e2e-'));
  const wrapper = join(tmp, 'chromium-in-netns');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${ns} /usr/bin/chromium "$@"\n`);
  chmodSync(wrapper, 0o755);
  const proc = spawn(
    'ip',
    ['netns', 'exec', ns, process.execPath, 'bin/icmpcap.mjs', 'serve', ...serveArgs],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
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
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code) => reject(new Error(`icmpcap serve exited with ${code}:\n${out}`)));
  });
  const browser = await chromium.launch({ executablePath: wrapper, args: CHROMIUM_ARGS });
  return {
    url,
    proc,
    browser,
    output: () => out,
    async close() {
      await browser.close().catch(() => undefined);
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGINT');
        await new Promise((r) => proc.once('exit', r));
      }
      rmSync(tmp, { recursive: true, force: true });
    },
  };
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
