/**
 * The smaller points of issue 18 against the real service with real pings: the interface selector shows
 * what is captured, Escape leaves the filter box, a bad filter says what is still applied without moving
 * the table, Pause says the view is frozen and counts what arrived, the theme switch, the snap length
 * shown as such; and screenshots of every view in light and dark (artifacts/screenshots).
 */
import { type Page, expect, test } from '@playwright/test';
import { type NetnsPair, createNetnsPair } from '../support/netns.js';
import { type ServedApp, openCheckedPage, serveInNetns } from '../support/serve.js';

let net: NetnsPair;
let app: ServedApp | undefined;

test.beforeAll(async () => {
  net = createNetnsPair('sm');
  app = await serveInNetns(net.a, ['-i', net.ifA]);
  // 1000-byte pings: more than the default snap length (256) keeps.
  net.exec(net.b, ['ping', '-c', '3', '-i', '0.05', '-s', '1000', '-W', '2', net.v4.a]);
});

const problems: string[] = [];
test.afterEach(() => {
  const seen = problems.splice(0);
  expect(seen).toEqual([]);
});

test.afterAll(async () => {
  await app?.close();
  net?.destroy();
});

async function count(page: Page): Promise<number> {
  return Number((await page.getByTestId('status-count').textContent())!.replace(/\D/g, ''));
}

test('interface, Escape, a bad filter, snap length, Pause', async () => {
  const page = await openCheckedPage(app!, problems);
  await expect(page.getByTestId('status-state')).toHaveText('running');
  await expect(page.getByTestId('capturing-on')).toHaveText(net.ifA);

  // Escape leaves the filter box for the table, the text kept.
  const input = page.getByTestId('filter-input');
  await input.click();
  await input.fill('icmp');
  await input.press('Escape');
  await input.press('Escape').catch(() => undefined);
  await expect(page.getByTestId('scroller')).toBeFocused();
  await expect(input).toHaveValue('icmp');

  // Apply a filter, then a bad one: it says the previous one is still applied, and the table stays put.
  await input.fill('icmp.type == echo-request');
  await input.press('Enter');
  await expect(page.getByTestId('status-view')).toHaveText('3 shown');
  const tableTop = (await page.getByTestId('scroller').boundingBox())!.y;
  await input.fill('icmp.type == ');
  await input.press('Enter');
  await expect(page.getByTestId('filter-error')).toBeVisible();
  await expect(page.getByTestId('filter-still')).toHaveText(
    '— not applied; still showing: icmp.type == echo-request',
  );
  expect((await page.getByTestId('scroller').boundingBox())!.y).toBe(tableTop);
  await page.screenshot({ path: 'artifacts/screenshots/filter-error-light.png' });

  // Snap length: "captured 256 of 1028 bytes", not a malformed packet.
  await page.getByTestId('packet-row').first().click();
  await expect(page.getByTestId('details-snap')).toHaveText('captured 256 of 1028 bytes');
  await input.fill('');
  await input.press('Enter');

  // Pause: frozen, and counting what arrives.
  // Packets of the earlier steps (and neighbour discovery) may still arrive after the click: the label
  // counts from the moment of the pause, so the total at the pause is the count minus the label.
  await page.getByRole('button', { name: /Pause/ }).click();
  const frozen = page.getByTestId('status-paused');
  await expect(frozen).toHaveText(/^view frozen: \d+ new since the pause$/);
  const sinceThePause = async () => Number(/(\d+) new/.exec((await frozen.textContent()) ?? '')?.[1]);
  const pausedAt = async () => (await count(page)) - (await sinceThePause());
  // Two readings in a row that agree: the count and the label have both caught up.
  let atPause = NaN;
  await expect
    .poll(async () => {
      const previous = atPause;
      atPause = await pausedAt();
      return atPause === previous;
    })
    .toBe(true);
  const before = await count(page);
  net.exec(net.b, ['ping', '-c', '2', '-i', '0.05', '-W', '2', net.v4.a]);
  await expect.poll(() => count(page)).toBeGreaterThanOrEqual(before + 4);
  await expect.poll(pausedAt).toBe(atPause);
  expect(await sinceThePause()).toBeGreaterThanOrEqual(4);
  await page.getByRole('button', { name: /Resume/ }).click();
  await expect(page.getByTestId('status-paused')).toBeHidden();
  await page.close();
});

test('the theme switch, and every view in light and dark', async () => {
  const page = await openCheckedPage(app!, problems, { colorScheme: 'light' });
  await expect(page.getByTestId('status-state')).toHaveText('running');
  const html = page.locator('html');
  await expect(html).toHaveAttribute('data-theme', 'light');
  // "System" follows the system.
  await page.emulateMedia({ colorScheme: 'dark' });
  await expect(html).toHaveAttribute('data-theme', 'dark');
  await page.emulateMedia({ colorScheme: 'light' });
  await expect(html).toHaveAttribute('data-theme', 'light');

  for (const theme of ['light', 'dark'] as const) {
    await page.getByTestId('theme').selectOption(theme);
    await expect(html).toHaveAttribute('data-theme', theme);
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(bg).toBe(theme === 'dark' ? 'rgb(22, 24, 28)' : 'rgb(255, 255, 255)');

    await page.getByTestId('tab-packets').click();
    await page.getByTestId('packet-row').first().click();
    await expect(page.getByTestId('details')).toContainText('Record');
    await page.screenshot({ path: `artifacts/screenshots/view-packets-${theme}.png` });

    await page.getByTestId('tab-peers').click();
    const row = page.getByTestId('peer-row').first();
    await expect(row).toBeVisible();
    if (!(await row.getByRole('checkbox').isChecked())) await row.getByRole('checkbox').check();
    await expect(page.getByTestId('rtt-chart').locator('canvas')).toHaveCount(1);
    await page.screenshot({ path: `artifacts/screenshots/view-peers-${theme}.png` });

    await page.getByTestId('tab-charts').click();
    await expect(page.getByTestId('pps-chart').locator('canvas')).toHaveCount(1);
    await page.screenshot({ path: `artifacts/screenshots/view-charts-${theme}.png` });

    await page.getByTestId('tab-packets').click();
    await page.getByRole('button', { name: 'Clear', exact: true }).click();
    await expect(page.getByRole('dialog', { name: 'Unsaved packets' })).toBeVisible();
    await page.screenshot({ path: `artifacts/screenshots/view-discard-${theme}.png` });
    await page
      .getByRole('dialog', { name: 'Unsaved packets' })
      .getByRole('button', { name: 'Cancel' })
      .click();

    await page.getByRole('button', { name: 'Export…' }).click();
    await expect(page.getByRole('dialog', { name: 'Export packets' })).toBeVisible();
    await page.screenshot({ path: `artifacts/screenshots/view-export-${theme}.png` });
    await page.keyboard.press('Escape');
  }
  await page.getByTestId('theme').selectOption('system');
  await page.close();
});
