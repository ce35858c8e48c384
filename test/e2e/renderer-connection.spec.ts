/**
 * The page knows when the service is gone. The service runs in namespace A on a fixed port with real
 * pings from B; the test stops it (SIGSTOP: it answers nothing, as a hung or unreachable service), then
 * kills it (SIGKILL) and starts a new one on the same port. The page must say "Disconnected —
 * reconnecting…", grey what it shows and stop the elapsed clock; back on the same service it shows the
 * same rows, filter and selection; a restarted service is picked up when the address's #token changes.
 */
import { type Page, type WebSocketRoute, expect, test } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type NetnsPair, createNetnsPair } from '../support/netns.js';
import { type ServedApp, openCheckedPage, serveInNetns } from '../support/serve.js';

const N = 6;
const PORT = 20000 + (process.pid % 20000);

let net: NetnsPair;
let app: ServedApp | undefined;
let second: ServedApp | undefined;
let cache: string;
const savedCache = process.env.XDG_CACHE_HOME;

test.beforeAll(async () => {
  // The killed service leaves its spool behind, as a crash does: in a cache folder of this test's own
  // (the services run as the account icmpcap, so it owns it), not in the machine's, where every later
  // icmpcap would offer it as a leftover capture.
  cache = mkdtempSync(join(tmpdir(), 'icmpcap-e2e-cn-'));
  execFileSync('chown', ['icmpcap:icmpcap', cache]);
  process.env.XDG_CACHE_HOME = cache;
  net = createNetnsPair('cn');
  app = await serveInNetns(net.a, ['-i', net.ifA, '--port', String(PORT)]);
  net.exec(net.b, ['ping', '-c', String(N), '-i', '0.05', '-W', '2', net.v4.a]);
});

const problems: string[] = [];
test.afterEach(() => {
  const seen = problems.splice(0);
  expect(seen).toEqual([]);
});

test.afterAll(async () => {
  if (app?.proc.exitCode === null) app.proc.kill('SIGCONT');
  await app?.close();
  await second?.close();
  net?.destroy();
  if (savedCache === undefined) delete process.env.XDG_CACHE_HOME;
  else process.env.XDG_CACHE_HOME = savedCache;
  rmSync(cache, { recursive: true, force: true });
});

function rowTexts(page: Page): Promise<string[]> {
  return page.getByTestId('packet-row').evaluateAll((els) => els.map((el) => el.textContent ?? ''));
}

test('a stopped service: banner, greyed, clock stopped; back: same rows, filter and selection', async () => {
  const page = await openCheckedPage(app!, problems);
  await expect(page.getByTestId('status-state')).toHaveText('running');
  const input = page.getByTestId('filter-input');
  await input.fill('icmp.type == echo-request');
  await input.press('Enter');
  await expect(page.getByTestId('status-view')).toHaveText(`${N} shown`);
  await page.getByTestId('packet-row').nth(2).click();
  const selectedNo = await page
    .locator('[data-testid="packet-row"][aria-selected="true"]')
    .getAttribute('data-no');
  const rows = await rowTexts(page);
  expect(rows).toHaveLength(N);

  app!.proc.kill('SIGSTOP');
  const banner = page.getByTestId('connection-banner');
  await expect(banner).toContainText('Disconnected — reconnecting…', { timeout: 15_000 });
  await expect(page.getByTestId('status-state')).toHaveText('disconnected');
  await expect(page.locator('.app')).toHaveClass(/disconnected/);
  await expect(page.getByRole('button', { name: /Stop/ })).toBeVisible();
  const elapsed = await page.getByTestId('status-elapsed').textContent();
  // The page asks whether anything answers at its address; a stopped service does not, within seconds.
  await expect(page.getByTestId('connection-hint')).toContainText('nothing answers', { timeout: 15_000 });
  expect(await page.getByTestId('status-elapsed').textContent()).toBe(elapsed);
  await page.screenshot({ path: 'artifacts/screenshots/disconnected-light.png' });

  app!.proc.kill('SIGCONT');
  await expect(banner).toBeHidden({ timeout: 15_000 });
  await expect(page.getByTestId('status-state')).toHaveText('running');
  await expect(input).toHaveValue('icmp.type == echo-request');
  await expect(page.getByTestId('status-view')).toHaveText(`${N} shown`);
  await expect.poll(() => rowTexts(page)).toEqual(rows);
  await expect(page.locator('[data-testid="packet-row"][aria-selected="true"]')).toHaveAttribute(
    'data-no',
    selectedNo!,
  );
  await page.close();
});

test('a killed service: banner at once; a new service on the same port is taken when the #token changes', async () => {
  // The first service's job events that end a job never reach the page (as when it was away): its export
  // shows as running when the service dies.
  let endsLost = true;
  const page = await openCheckedPage(app!, problems, {
    beforeGoto: (p) =>
      p.routeWebSocket(/\/ws$/, (ws: WebSocketRoute) => {
        const server = ws.connectToServer();
        ws.onMessage((m) => server.send(m));
        server.onMessage((m) => {
          const text = String(m);
          if (endsLost && text.includes('"event":"job"') && !text.includes('"state":"running"')) return;
          ws.send(m);
        });
      }),
  });
  await expect(page.getByTestId('status-state')).toHaveText('running');
  const input = page.getByTestId('filter-input');
  await expect(input).toHaveValue('icmp.type == echo-request');
  await page.getByRole('button', { name: 'Export…' }).click();
  const dialog = page.getByRole('dialog', { name: 'Export packets' });
  await dialog.getByTestId('export-scope-all').check();
  await dialog.getByTestId('export-start').click();
  const job = page.getByTestId('job');
  await expect(job).toHaveAttribute('data-state', 'running');

  app!.proc.kill('SIGKILL');
  endsLost = false;
  await expect(page.getByTestId('connection-banner')).toBeVisible();
  await expect(page.getByTestId('status-state')).toHaveText('disconnected');
  await expect(page.getByTestId('connection-hint')).toContainText('nothing answers');

  second = await serveInNetns(net.a, ['-i', net.ifA, '--port', String(PORT)]);
  // The old token is refused; the page says a service answers but does not take it.
  await expect(page.getByTestId('connection-hint')).toContainText('does not take this page’s token', {
    timeout: 15_000,
  });
  const token = new URL(second.url).hash;
  await page.evaluate((hash) => (location.hash = hash), token);
  await expect(page.getByTestId('connection-banner')).toBeHidden({ timeout: 10_000 });
  await expect(page.getByTestId('status-state')).toHaveText('running');
  // The new service does not know the export: it is not shown running forever, but as ended, outcome unknown.
  await expect(job).toHaveAttribute('data-state', 'error');
  await expect(job).toContainText('whether it finished is unknown');
  // The new service gets this page's filter; its capture is new (empty until pinged).
  await expect(input).toHaveValue('icmp.type == echo-request');
  await expect(page.getByTestId('status-view')).toHaveText('0 shown');
  net.exec(net.b, ['ping', '-c', '2', '-i', '0.05', '-W', '2', net.v4.a]);
  await expect(page.getByTestId('status-view')).toHaveText('2 shown');
  await page.close();
});
