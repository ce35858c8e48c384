/**
 * The renderer against the real service in browser mode with real pings between two namespaces:
 * rows in order with the right fields, filtering by typing, a bad filter shown at its position,
 * filtering by right-click, the details tree and its hex highlighting, keyboard selection, and
 * screenshots of the table and details in light and dark.
 */
import { type Page, expect, test } from '@playwright/test';
import { type NetnsPair, createNetnsPair } from '../support/netns.js';
import { type ServedApp, serveInNetns } from '../support/serve.js';

const N = 6;
const ID4 = 0x2a01;
const ID6 = 0x2a02;

let net: NetnsPair;
let app: ServedApp | undefined;

test.describe.configure({ mode: 'serial' });

test.beforeAll(async () => {
  net = createNetnsPair('rt');
  app = await serveInNetns(net.a, ['-i', net.ifA]);
  net.exec(net.b, [
    'ping',
    '-c',
    String(N),
    '-i',
    '0.05',
    '-W',
    '2',
    '-p',
    'c0ffee',
    '-e',
    String(ID4),
    net.v4.a,
  ]);
  net.exec(net.b, ['ping', '-6', '-c', String(N), '-i', '0.05', '-W', '2', '-e', String(ID6), net.v6.a]);
});

test.afterAll(async () => {
  await app?.close();
  net?.destroy();
});

async function openApp(colorScheme: 'light' | 'dark' = 'light', height = 900): Promise<Page> {
  const page = await app!.browser.newPage({ viewport: { width: 1400, height }, colorScheme });
  page.on('pageerror', (err) => console.error('page error:', err.message));
  await page.goto(app!.url);
  await expect(page.getByTestId('status-state')).toHaveText('running');
  return page;
}

function cells(page: Page, col: string): Promise<string[]> {
  return page
    .getByTestId('packet-row')
    .evaluateAll(
      (els, c) => els.map((el) => el.querySelector(`[data-col="${c}"]`)?.textContent?.trim() ?? ''),
      col,
    );
}

/** Waits until the status bar counts every echo packet the pings made (and the view shows them all). */
async function waitForAll(page: Page): Promise<void> {
  const count = async () =>
    Number((await page.getByTestId('status-count').textContent())!.replace(/\D/g, ''));
  await expect.poll(count).toBeGreaterThanOrEqual(4 * N);
  await expect(page.getByTestId('status-view')).toBeHidden();
}

async function applyFilter(page: Page, text: string): Promise<void> {
  const input = page.getByTestId('filter-input');
  await input.fill(text);
  await input.press('Enter');
}

test('rows arrive in capture order with the right fields', async () => {
  const page = await openApp('light', 1400);
  await page.getByRole('button', { name: 'Hide details' }).click();
  await expect
    .poll(async () => (await cells(page, 'type')).filter((t) => t.startsWith('Echo')).length)
    .toBe(4 * N);
  const nos = (await cells(page, 'no')).map(Number);
  expect(nos).toEqual([...nos].sort((a, b) => a - b));
  const seq4 = await page.getByTestId('packet-row').evaluateAll((els) =>
    els
      .map((el) => ({
        src: el.querySelector('[data-col="src"]')!.textContent!.trim(),
        type: el.querySelector('[data-col="type"]')!.textContent!.trim(),
        id: el.querySelector('[data-col="id"]')!.textContent!.trim(),
        seq: el.querySelector('[data-col="seq"]')!.textContent!.trim(),
        ttl: el.querySelector('[data-col="ttl"]')!.textContent!.trim(),
        len: el.querySelector('[data-col="len"]')!.textContent!.trim(),
        rtt: el.querySelector('[data-col="rtt"]')!.textContent!.trim(),
        dir: el.querySelector('[data-col="dir"]')!.textContent!.trim(),
      }))
      .filter((r) => r.id === String(0x2a01)),
  );
  expect(seq4).toHaveLength(2 * N);
  for (let i = 0; i < N; i++) {
    const [req, rep] = [seq4[2 * i]!, seq4[2 * i + 1]!];
    expect(req).toMatchObject({
      src: net.v4.b,
      type: 'Echo Request',
      seq: String(i + 1),
      ttl: '64',
      len: '84',
      dir: 'in',
      rtt: '',
    });
    expect(rep).toMatchObject({
      src: net.v4.a,
      type: 'Echo Reply',
      seq: String(i + 1),
      ttl: '64',
      len: '84',
      dir: 'out',
    });
    expect(Number(rep.rtt)).toBeGreaterThan(0);
    expect(Number(rep.rtt)).toBeLessThan(50);
  }
  await page.screenshot({ path: 'artifacts/screenshots/table-light.png' });
  await page.close();
});

test('typing a filter narrows the table; a bad filter is underlined at its position', async () => {
  const page = await openApp();
  await waitForAll(page);
  await applyFilter(page, `icmp.type == echo-reply && ip.src == ${net.v4.a}`);
  await expect.poll(async () => (await cells(page, 'type')).length).toBe(N);
  expect(new Set(await cells(page, 'type'))).toEqual(new Set(['Echo Reply']));
  expect(new Set(await cells(page, 'src'))).toEqual(new Set([net.v4.a]));
  await expect(page.getByTestId('status-view')).toHaveText(`${N} shown`);

  const bad = 'icmp.type == echo-reply && ip.srcc == 1.2.3.4';
  await page.getByTestId('filter-input').fill(bad);
  const error = page.getByTestId('filter-error');
  await expect(error).toBeVisible();
  await expect(error).toContainText('ip.srcc');
  // The live check underlines the offending character: the start of the unknown field.
  const marked = page.locator('.filter-field .err');
  await expect(marked).toHaveText('i');
  await expect(error).toContainText(`at ${bad.indexOf('ip.srcc') + 1}:`);
  await page.screenshot({ path: 'artifacts/screenshots/filter-error-light.png' });
  // Applying it keeps the old view and shows the same error.
  await page.getByTestId('filter-input').press('Enter');
  await expect(error).toBeVisible();
  expect(await cells(page, 'type')).toHaveLength(N);
  await applyFilter(page, '');
  await waitForAll(page);
  await page.close();
});

test('right-click on a cell filters by its value', async () => {
  const page = await openApp();
  const row = page.getByTestId('packet-row').filter({ hasText: net.v6.b }).first();
  await row.locator('[data-col="src"]').click({ button: 'right' });
  const item = page.getByRole('menuitem', { name: /Filter: equal/ });
  await expect(item).toHaveAttribute('data-filter', `ipv6.src == ${net.v6.b}`);
  await item.click();
  await expect(page.getByTestId('filter-input')).toHaveValue(`ipv6.src == ${net.v6.b}`);
  await expect.poll(async () => new Set(await cells(page, 'src'))).toEqual(new Set([net.v6.b]));
  expect(await cells(page, 'src')).toHaveLength(N);

  // ...and "or equal" from the keyboard: select a row, move to the Type column, menu key, "|".
  await page.getByTestId('filter-input').fill('');
  await page.getByTestId('filter-input').press('Enter');
  await waitForAll(page);
  await applyFilter(page, `ipv6.src == ${net.v6.b}`);
  await expect.poll(async () => (await cells(page, 'src')).length).toBe(N);
  await page.getByTestId('packet-row').first().locator('[data-col="no"]').click();
  await page.keyboard.press('ArrowRight'); // focus moves from No. to Time
  for (let i = 0; i < 5; i++) await page.keyboard.press('ArrowRight'); // ... to Type
  await page.keyboard.press('Shift+F10');
  await expect(page.getByRole('menu')).toBeVisible();
  await page.keyboard.press('|');
  await expect(page.getByTestId('filter-input')).toHaveValue(
    `(ipv6.src == ${net.v6.b}) || icmpv6.type == echo-request`,
  );
  await page.close();
});

test('details show the decoded tree; hovering a field lights its bytes and hovering bytes lights the field', async () => {
  const page = await openApp();
  await applyFilter(page, `icmp.id == ${ID4} && icmp.type == echo-request`);
  await expect.poll(async () => (await cells(page, 'no')).length).toBe(N);
  await page.getByTestId('packet-row').nth(2).click();
  const details = page.getByTestId('details');
  const field = (label: string) => details.locator(`[data-testid="field-node"][data-label="${label}"]`);
  await expect(field('Internet Protocol Version 4')).toContainText(`${net.v4.b} → ${net.v4.a}`);
  await expect(field('Sequence number').first()).toContainText('3 (0x0003)');
  await expect(field('Identifier').first()).toContainText(`${ID4}`);
  await expect(field('Checksum').first()).toContainText('[correct]');

  const lit = () =>
    page
      .locator('[data-testid="hex-byte"].hl')
      .evaluateAll((els) => els.map((e) => Number((e as HTMLElement).dataset.offset)));
  await field('Source address').hover();
  await expect.poll(lit).toEqual([12, 13, 14, 15]);
  await field('Identifier').first().hover();
  await expect.poll(lit).toEqual([24, 25]);
  const idBytes = await page.locator('[data-testid="hex-byte"][data-offset="24"]').textContent();
  expect(idBytes).toBe((ID4 >> 8).toString(16).padStart(2, '0'));
  // The other way: a byte of the TTL lights the TTL field and only its byte.
  await page.locator('[data-testid="hex-byte"][data-offset="8"]').hover();
  await expect(details.locator('[data-testid="field-node"].active')).toHaveAttribute(
    'data-label',
    'Time to live',
  );
  await expect.poll(lit).toEqual([8]);
  await page.screenshot({ path: 'artifacts/screenshots/details-light.png' });
  await page.close();
});

test('keyboard: arrows, Home, End move the selection; it survives a filter change', async () => {
  const page = await openApp();
  await applyFilter(page, '');
  await waitForAll(page);
  await page.getByTestId('packet-row').first().click();
  const selectedNo = () =>
    page.locator('[data-testid="packet-row"][aria-selected="true"]').getAttribute('data-no');
  const firstNo = await selectedNo();
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('ArrowDown');
  await expect.poll(selectedNo).toBe(String(Number(firstNo) + 2));
  await page.keyboard.press('End');
  const all = (await cells(page, 'no')).map(Number);
  await expect.poll(selectedNo).toBe(String(Math.max(...all)));
  await page.keyboard.press('Home');
  await expect.poll(selectedNo).toBe('1');
  await page.keyboard.press('ArrowDown'); // record 2: the first reply
  await page.keyboard.press('Enter');
  await expect(page.getByTestId('details')).toContainText('Record 2');
  // Filtering to replies keeps record 2 selected.
  await applyFilter(page, 'icmp.type == echo-reply');
  await expect.poll(selectedNo).toBe('2');
  await page.close();
});

test('screenshots in dark', async () => {
  const page = await openApp('dark');
  await waitForAll(page);
  await page.getByTestId('packet-row').nth(1).click();
  await page.locator('[data-testid="field-node"][data-label="Source address"]').first().hover();
  await page.screenshot({ path: 'artifacts/screenshots/table-details-dark.png' });
  await page.close();
});
