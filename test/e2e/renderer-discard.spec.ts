/**
 * Nothing captured is discarded by surprise (real pings, the real service in browser mode): Clear, Start
 * and Open ask first while packets are in no file; an export of everything makes them saved; the
 * details pane empties when the data set changes; a failed Open leaves what is shown alone.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Page, expect, test } from '@playwright/test';
import { type NetnsPair, createNetnsPair } from '../support/netns.js';
import { type ServedApp, openCheckedPage, serveInNetns } from '../support/serve.js';

const N = 4;

let net: NetnsPair;
let app: ServedApp | undefined;
let tmp: string;

test.beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-discard-'));
  net = createNetnsPair('dc');
  // IPv4 pings only: without IPv6 no router solicitation or MLD report arrives between an export and the
  // next step (a packet in no file rightly makes Clear ask, which is not what these steps are about).
  net.exec(net.a, ['sysctl', '-qw', `net.ipv6.conf.${net.ifA}.disable_ipv6=1`]);
  net.exec(net.b, ['sysctl', '-qw', `net.ipv6.conf.${net.ifB}.disable_ipv6=1`]);
  app = await serveInNetns(net.a, ['-i', net.ifA]);
});

const problems: string[] = [];
test.afterEach(() => {
  const seen = problems.splice(0);
  expect(seen).toEqual([]);
});

test.afterAll(async () => {
  await app?.close();
  net?.destroy();
  rmSync(tmp, { recursive: true, force: true });
});

const ping = () => net.exec(net.b, ['ping', '-c', String(N), '-i', '0.05', '-W', '2', net.v4.a]);

async function count(page: Page): Promise<number> {
  return Number((await page.getByTestId('status-count').textContent())!.replace(/\D/g, ''));
}

test('Clear asks while packets are not exported; Cancel keeps them, Discard clears them and the details', async () => {
  const page = await openCheckedPage(app!, problems);
  await expect(page.getByTestId('status-state')).toHaveText('running');
  ping();
  // At least the pings (the link's own IPv6 chatter may add a few).
  await expect.poll(() => count(page)).toBeGreaterThanOrEqual(2 * N);
  const captured = await count(page);
  await page.getByTestId('packet-row').first().click();
  await expect(page.getByTestId('details')).toContainText('Record 1');

  await page.getByRole('button', { name: 'Clear', exact: true }).click();
  const ask = page.getByRole('dialog', { name: 'Unsaved packets' });
  await expect(ask).toContainText(/(\d+) captured packets are not exported yet. Clearing forgets them./);
  const asked = Number(/(\d+) captured/.exec((await ask.textContent())!)![1]);
  expect(asked).toBeGreaterThanOrEqual(captured);
  await page.screenshot({ path: 'artifacts/screenshots/discard-light.png' });
  await ask.getByRole('button', { name: 'Cancel' }).click();
  await expect(ask).toBeHidden();
  expect(await count(page)).toBeGreaterThanOrEqual(captured);
  await expect(page.getByTestId('details')).toContainText('Record 1');

  await page.getByRole('button', { name: 'Clear', exact: true }).click();
  await ask.getByTestId('discard-confirm').click();
  await expect(page.getByTestId('status-count')).toHaveText('0 packets');
  await expect(page.getByTestId('details')).toContainText('Select a packet');
  await page.close();
});

test('after an export of everything, Clear does not ask; Start and Open ask again for new packets', async () => {
  const page = await openCheckedPage(app!, problems);
  await expect(page.getByTestId('status-state')).toHaveText('running');
  ping();
  await expect.poll(() => count(page)).toBeGreaterThanOrEqual(2 * N);
  await page.getByRole('button', { name: 'Export…' }).click();
  const exportDialog = page.getByRole('dialog', { name: 'Export packets' });
  await exportDialog.getByTestId('export-scope-all').check();
  const download = page.waitForEvent('download', { timeout: 30_000 });
  await exportDialog.getByTestId('export-start').click();
  await expect(page.getByTestId('job')).toHaveAttribute('data-state', 'done', { timeout: 20_000 });
  await (await download).saveAs(join(tmp, 'all.pcapng'));
  await page.getByRole('button', { name: /Dismiss/ }).click();

  await page.getByRole('button', { name: 'Clear', exact: true }).click();
  await expect(page.getByTestId('status-count')).toHaveText('0 packets');
  await expect(page.getByRole('dialog', { name: 'Unsaved packets' })).toBeHidden();

  ping();
  await expect.poll(() => count(page)).toBeGreaterThanOrEqual(2 * N);
  await page.getByRole('button', { name: /Stop/ }).click();
  await expect(page.getByTestId('status-state')).toHaveText('stopped');
  await page.getByRole('button', { name: /Start/ }).click();
  const ask = page.getByRole('dialog', { name: 'Unsaved packets' });
  await expect(ask).toContainText('A new capture replaces them');
  await ask.getByRole('button', { name: 'Cancel' }).click();
  await page.getByRole('button', { name: 'Open…' }).click();
  await expect(ask).toContainText('Opening a file replaces them');
  await ask.getByRole('button', { name: 'Cancel' }).click();
  await expect(page.getByRole('dialog', { name: 'Open a capture file' })).toBeHidden();
  expect(await count(page)).toBeGreaterThanOrEqual(2 * N);
  await page.close();
});

// The service reads the file before it lets the capture go, so a file that is no capture changes nothing:
// not the packets, not the source, not the selection (the page asked first, and keeps it).
test('a failed Open (not a capture file) leaves the packets, the selection and the state as they were', async () => {
  const page = await openCheckedPage(app!, problems);
  await expect(page.getByTestId('status-state')).toHaveText(/running|stopped/);
  ping();
  await expect.poll(() => count(page)).toBeGreaterThanOrEqual(2 * N);
  const stop = page.getByRole('button', { name: /Stop/ });
  if (await stop.isVisible()) await stop.click();
  await expect(page.getByTestId('status-state')).toHaveText('stopped');
  const before = await count(page);
  expect(before).toBeGreaterThanOrEqual(2 * N);
  await page.getByTestId('packet-row').nth(1).click();
  await expect(page.getByTestId('details')).toContainText('Record');
  await page.getByRole('button', { name: 'Open…' }).click();
  await page.getByRole('dialog', { name: 'Unsaved packets' }).getByTestId('discard-confirm').click();
  const bogus = join(tmp, 'notes.pcapng');
  writeFileSync(bogus, 'these are notes, not packets\n'.repeat(20));
  await page.getByTestId('open-upload').setInputFiles(bogus);
  await page.getByTestId('open-upload-start').click();
  await expect(
    page.locator('[data-testid="open-error"], [data-testid="job"][data-state="error"]').first(),
  ).toBeVisible({
    timeout: 20_000,
  });
  await expect(page.getByTestId('status-state')).toHaveText('stopped');
  await expect(page.getByTestId('status-source')).toHaveText('AF_PACKET');
  expect(await count(page)).toBe(before);
  await expect(page.getByTestId('packet-row')).toHaveCount(before);
  await expect(page.getByTestId('details')).toContainText('Record');
  await page.close();
});
