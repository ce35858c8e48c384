/**
 * The renderer against the real service in browser mode with real pings between two namespaces:
 * rows in order with the right fields, filtering by typing, a bad filter shown at its position,
 * filtering by right-click, the details tree and its hex highlighting, keyboard selection, and
 * screenshots of the table and details in light and dark.
 */
import { type Page, expect, test } from '@playwright/test';
import { type NetnsPair, createNetnsPair } from '../support/netns.js';
import { type ServedApp, openCheckedPage, serveInNetns } from '../support/serve.js';

const N = 6;
const ID4 = 0x2a01;
const ID6 = 0x2a02;

let net: NetnsPair;
let app: ServedApp | undefined;

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

/** Uncaught page errors and CSP violations (the page's CSP forbids inline styles and eval) fail the test. */
const problems: string[] = [];
test.afterEach(() => {
  const seen = problems.splice(0);
  expect(seen).toEqual([]);
});

test.afterAll(async () => {
  await app?.close();
  net?.destroy();
});

async function openApp(colorScheme: 'light' | 'dark' = 'light', height = 900): Promise<Page> {
  const page = await openCheckedPage(app!, problems, { colorScheme, height });
  await expect(page.getByTestId('status-state')).toHaveText('running');
  // The view (filter) lives in the service and outlives pages: start each test unfiltered.
  if (await page.getByTestId('filter-input').inputValue()) await applyFilter(page, '');
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
        src: el.querySelector('[data-col="src"]')!.textContent.trim(),
        type: el.querySelector('[data-col="type"]')!.textContent.trim(),
        id: el.querySelector('[data-col="id"]')!.textContent.trim(),
        seq: el.querySelector('[data-col="seq"]')!.textContent.trim(),
        ttl: el.querySelector('[data-col="ttl"]')!.textContent.trim(),
        len: el.querySelector('[data-col="len"]')!.textContent.trim(),
        rtt: el.querySelector('[data-col="rtt"]')!.textContent.trim(),
        dir: el.querySelector('[data-col="dir"]')!.textContent.trim(),
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
  await expect(marked).toHaveAttribute('data-at', String(bad.indexOf('ip.srcc')));
  await page.screenshot({ path: 'artifacts/screenshots/filter-error-light.png' });
  // Applying it keeps the old view and shows the same error.
  await page.getByTestId('filter-input').press('Enter');
  await expect(error).toBeVisible();
  expect(await cells(page, 'type')).toHaveLength(N);
  await applyFilter(page, '');
  await waitForAll(page);

  // The check's verdict is about the text it checked: typing on takes the old error mark away at once,
  // while the check of the new text still waits for its turn (a half-typed filter's mark once stayed on
  // the finished one until a later answer came, or for good when an older answer came last).
  await page.getByTestId('filter-input').fill(bad);
  await expect(marked).toHaveText('i');
  const stale = await page.getByTestId('filter-input').evaluate(async (el: HTMLInputElement) => {
    el.value = 'icmp.type == echo-reply && ip.src == 1.2.3.4';
    el.dispatchEvent(new Event('input', { bubbles: true }));
    // Vue renders in a microtask; the new text's check is not even sent before its 150 ms timer, which
    // fires after this one.
    await new Promise((resolve) => setTimeout(resolve, 0));
    const invalid = el.getAttribute('aria-invalid') === 'true' ? ['aria-invalid'] : [];
    return [...document.querySelectorAll('.filter-field .err')].map((e) => e.textContent).concat(invalid);
  });
  expect(stale).toEqual([]);
  await expect(page.getByTestId('filter-error')).toBeHidden();
  await page.close();
});

test('the filter bar completes fields and values, colours tokens, and recalls history', async () => {
  const page = await openApp();
  await waitForAll(page);
  const input = page.getByTestId('filter-input');
  const options = page.getByRole('listbox', { name: 'Suggestions' }).getByRole('option');
  await input.click();
  await input.pressSequentially('icmpv6.ty');
  await expect(options.first()).toContainText('icmpv6.type');
  await input.press('Tab');
  await expect(input).toHaveValue('icmpv6.type ');
  await expect(options.first()).toHaveText('==');
  await input.press('Tab');
  await input.pressSequentially('neighbor-');
  const texts = async () => (await options.allTextContents()).map((t) => t.trim());
  await expect.poll(texts).toEqual(['neighbor-solicitation', 'neighbor-advertisement']);
  await input.press('ArrowDown');
  await input.press('ArrowDown');
  await input.press('Enter');
  await expect(input).toHaveValue('icmpv6.type == neighbor-advertisement ');
  await input.pressSequentially('&& iface == ');
  await expect.poll(texts).toEqual(['lo', net.ifA]);
  await input.press('Escape');
  const tokens = await page
    .locator('.filter-field .overlay span')
    .evaluateAll((els) =>
      els.map((e) => `${e.className}:${e.textContent}`).filter((t) => !t.startsWith('tok-space')),
    );
  expect(tokens).toEqual([
    'tok-field:icmpv6.type',
    'tok-operator:==',
    'tok-value:neighbor-advertisement',
    'tok-logic:&&',
    'tok-field:iface',
    'tok-operator:==',
  ]);
  // History: what was applied comes back with the up arrow, after a reload too.
  await page.evaluate(() =>
    localStorage.setItem('icmpcap.filterHistory', JSON.stringify(['ttl > 3', 'dir == in'])),
  );
  await page.reload();
  await page.getByTestId('filter-input').click();
  await page.getByTestId('filter-input').press('ArrowUp');
  await expect(page.getByTestId('filter-input')).toHaveValue('ttl > 3');
  await page.getByTestId('filter-input').press('ArrowUp');
  await expect(page.getByTestId('filter-input')).toHaveValue('dir == in');
  await page.getByTestId('filter-input').press('ArrowDown');
  await expect(page.getByTestId('filter-input')).toHaveValue('ttl > 3');
  await page.close();
});

test('right-click on a cell filters by its value', async () => {
  const page = await openApp();
  // A row whose source (not merely some cell) is B: B's address also shows as the destination of A's rows.
  const row = page
    .getByTestId('packet-row')
    .filter({ has: page.locator('[data-col="src"]', { hasText: net.v6.b }) })
    .first();
  await row.locator('[data-col="src"]').click({ button: 'right' });
  const item = page.getByRole('menuitem', { name: /Filter: equal/ });
  await expect(item).toHaveAttribute('data-filter', `ipv6.src == ${net.v6.b}`);
  await item.click();
  await expect(page.getByTestId('filter-input')).toHaveValue(`ipv6.src == ${net.v6.b}`);
  await expect.poll(async () => new Set(await cells(page, 'src'))).toEqual(new Set([net.v6.b]));
  // N echo requests, plus whatever neighbour discovery B sent.
  expect((await cells(page, 'type')).filter((t) => t === 'Echo Request')).toHaveLength(N);

  // ...and "or equal" from the keyboard: select a row, move to the Type column, menu key, "|".
  await page.getByTestId('filter-input').fill('');
  await page.getByTestId('filter-input').press('Enter');
  await waitForAll(page);
  await applyFilter(page, `ipv6.src == ${net.v6.b}`);
  await expect
    .poll(async () => (await cells(page, 'type')).filter((t) => t === 'Echo Request').length)
    .toBe(N);
  await page
    .getByTestId('packet-row')
    .filter({ has: page.locator('[data-col="type"]', { hasText: 'Echo Request' }) })
    .first()
    .locator('[data-col="no"]')
    .click();
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
  await waitForAll(page);
  await page.getByTestId('packet-row').first().click();
  await page.keyboard.press('Home');
  const target = page
    .getByTestId('packet-row')
    .filter({ has: page.locator('[data-col="id"]', { hasText: String(ID4) }) })
    .filter({ has: page.locator('[data-col="type"]', { hasText: 'Echo Request' }) })
    .filter({ has: page.locator('[data-col="seq"]', { hasText: /^3$/ }) });
  await target.click();
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

test('keyboard: arrows, Home, End move the selection; Enter opens the details', async () => {
  const page = await openApp();
  await waitForAll(page);
  await page.getByTestId('packet-row').first().click();
  const selectedNo = () =>
    page.locator('[data-testid="packet-row"][aria-selected="true"]').getAttribute('data-no');
  const firstNo = await selectedNo();
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('ArrowDown');
  await expect.poll(selectedNo).toBe(String(Number(firstNo) + 2));
  // End selects the newest row (stray neighbour discovery may add more after it).
  const total = Number((await page.getByTestId('status-count').textContent())!.replace(/\D/g, ''));
  await page.keyboard.press('End');
  await expect.poll(async () => Number(await selectedNo())).toBeGreaterThanOrEqual(total);
  await expect(page.locator('[data-testid="packet-row"][aria-selected="true"]')).toBeInViewport();
  await page.keyboard.press('Home');
  await expect.poll(selectedNo).toBe('1');
  await page.keyboard.press('PageDown');
  await expect.poll(async () => Number(await selectedNo())).toBeGreaterThan(5);
  await page.keyboard.press('Home');
  await page.keyboard.press('ArrowDown'); // record 2: the first request from B
  await page.keyboard.press('Enter');
  await expect(page.getByTestId('details')).toContainText('Record 2');
  await expect(page.locator('[data-testid="field-node"]:focus')).toHaveCount(1);
  await page.close();
});

test('the selection survives a filter change and comes back into view', async () => {
  const page = await openApp();
  await waitForAll(page);
  await page.getByTestId('packet-row').first().click();
  await page.keyboard.press('Home');
  await expect(page.getByTestId('packet-row').first()).toHaveAttribute('data-no', '1');
  const reply = page
    .getByTestId('packet-row')
    .filter({ has: page.locator('[data-col="type"]', { hasText: 'Echo Reply' }) })
    .first();
  const no = await reply.getAttribute('data-no');
  await page.locator(`[data-testid="packet-row"][data-no="${no}"]`).click();
  const selected = page.locator('[data-testid="packet-row"][aria-selected="true"]');
  await expect(selected).toHaveAttribute('data-no', no!);
  await applyFilter(page, 'icmp.type == echo-reply');
  await expect.poll(async () => new Set(await cells(page, 'type'))).toEqual(new Set(['Echo Reply']));
  await expect(selected).toHaveAttribute('data-no', no!);
  await expect(selected).toBeInViewport();
  // Scroll the selection out of view, change the filter: it is brought back into view.
  await applyFilter(page, '');
  await expect(selected).toHaveAttribute('data-no', no!);
  await expect(selected).toBeInViewport();
  const box = (await page.getByTestId('scroller').boundingBox())!;
  await page.mouse.move(box.x + 300, box.y + 100);
  await page.mouse.wheel(0, 5000);
  await expect(selected).not.toBeInViewport();
  await applyFilter(page, 'icmp');
  await expect(selected).toHaveAttribute('data-no', no!);
  await expect(selected).toBeInViewport();
  await applyFilter(page, '');
  await page.close();
});

test('scrolled up, the view holds still while packets arrive, with an "N new" control', async () => {
  const page = await openApp('light', 600);
  await waitForAll(page);
  const firstNo = async () => Number(await page.getByTestId('packet-row').first().getAttribute('data-no'));
  await page.getByTestId('packet-row').first().click();
  await page.keyboard.press('Home');
  await expect.poll(firstNo).toBe(1);
  const before = Number((await page.getByTestId('status-count').textContent())!.replace(/\D/g, ''));
  net.exec(net.b, ['ping', '-c', '3', '-i', '0.05', '-W', '2', net.v4.a]);
  const newButton = page.getByRole('button', { name: /new ↓/ });
  await expect(newButton).toHaveText(/^\s*[1-9]\d* new ↓\s*$/);
  expect(await firstNo()).toBe(1);
  const count = async () =>
    Number((await page.getByTestId('status-count').textContent())!.replace(/\D/g, ''));
  await expect.poll(count).toBeGreaterThanOrEqual(before + 6);
  await page.waitForTimeout(500); // let stray neighbour discovery settle
  expect(await firstNo()).toBe(1);
  const after = await count();
  await newButton.click();
  // The newest row is shown: the count as it is then (a stray packet may still arrive after `after` was read).
  const newestShown = async () => Math.max(...(await cells(page, 'no')).map(Number));
  await expect.poll(async () => (await newestShown()) - (await count())).toBe(0);
  expect(await newestShown()).toBeGreaterThanOrEqual(after);
  await expect(newButton).toBeHidden();
  await page.close();
});

test('columns: reorder by dragging, hide from the header menu, resize, and switch the time format', async () => {
  const page = await openApp();
  await waitForAll(page);
  const headers = () =>
    page
      .locator('[role="columnheader"]')
      .evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.col));
  expect((await headers()).slice(0, 6)).toEqual(['no', 'time', 'dir', 'iface', 'src', 'dst']);
  // Drag "Destination" onto "Source": it moves before it.
  await page
    .locator('[role="columnheader"][data-col="dst"]')
    .dragTo(page.locator('[role="columnheader"][data-col="src"]'));
  expect((await headers()).slice(0, 6)).toEqual(['no', 'time', 'dir', 'iface', 'dst', 'src']);
  const firstRowCols = await page
    .getByTestId('packet-row')
    .first()
    .locator('[data-col]')
    .evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.col));
  expect(firstRowCols.slice(0, 6)).toEqual(['no', 'time', 'dir', 'iface', 'dst', 'src']);

  // Hide "Interface" from the header context menu.
  await page.locator('[role="columnheader"][data-col="iface"]').click({ button: 'right' });
  await page.getByRole('menuitemcheckbox', { name: 'Interface' }).click();
  expect(await headers()).not.toContain('iface');
  await expect(page.getByTestId('packet-row').first().locator('[data-col="iface"]')).toHaveCount(0);

  // Resize "Type" by dragging its edge 80 px to the right.
  const type = page.locator('[role="columnheader"][data-col="type"]');
  const before = (await type.boundingBox())!.width;
  const handle = (await type.locator('.resize').boundingBox())!;
  await page.mouse.move(handle.x + 3, handle.y + 5);
  await page.mouse.down();
  await page.mouse.move(handle.x + 83, handle.y + 5, { steps: 5 });
  await page.mouse.up();
  expect(Math.round((await type.boundingBox())!.width - before)).toBe(80);
  const cellWidth = (await page.getByTestId('packet-row').first().locator('[data-col="type"]').boundingBox())!
    .width;
  expect(Math.round(cellWidth)).toBe(Math.round(before + 80));

  // Relative time: the first packet is at 0.
  await page.getByTestId('packet-row').first().click();
  await page.keyboard.press('Home');
  await page.locator('[role="columnheader"][data-col="time"]').click({ button: 'right' });
  await page.getByRole('menuitemradio', { name: /seconds since first packet/ }).click();
  await expect(page.locator('[data-testid="packet-row"][data-no="1"] [data-col="time"]')).toHaveText(
    '0.000000',
  );
  await page.locator('[role="columnheader"][data-col="time"]').click({ button: 'right' });
  await page.getByRole('menuitemcheckbox', { name: 'Nanosecond precision' }).click();
  await expect(page.locator('[data-testid="packet-row"][data-no="1"] [data-col="time"]')).toHaveText(
    '0.000000000',
  );
  await page.screenshot({ path: 'artifacts/screenshots/columns-light.png' });
  // The layout persists across a reload.
  await page.reload();
  await expect(page.locator('[role="columnheader"][data-col="iface"]')).toHaveCount(0);
  expect((await headers()).slice(0, 5)).toEqual(['no', 'time', 'dir', 'dst', 'src']);
  await page.evaluate(() => localStorage.removeItem('icmpcap.tableSettings'));
  await page.close();
});

test('clicking a header sorts the view through the service', async () => {
  const page = await openApp('light', 1400);
  await page.getByRole('button', { name: 'Hide details' }).click();
  await waitForAll(page);
  await applyFilter(page, `icmp.id == ${ID4}`);
  await expect.poll(async () => (await cells(page, 'no')).length).toBe(2 * N);
  const seqHeader = page.locator('[role="columnheader"][data-col="seq"]');
  await seqHeader.getByRole('button').click();
  await expect(seqHeader).toHaveAttribute('aria-sort', 'ascending');
  await expect
    .poll(async () => (await cells(page, 'seq')).map(Number))
    .toEqual(Array.from({ length: 2 * N }, (_, i) => Math.floor(i / 2) + 1));
  await seqHeader.getByRole('button').click();
  await expect(seqHeader).toHaveAttribute('aria-sort', 'descending');
  await expect
    .poll(async () => (await cells(page, 'seq')).map(Number))
    .toEqual(Array.from({ length: 2 * N }, (_, i) => N - Math.floor(i / 2)));
  await seqHeader.getByRole('button').click();
  await expect(seqHeader).toHaveAttribute('aria-sort', 'none');
  // Sorting runs in slices on the service: the capture order comes back a moment after the click.
  await expect
    .poll(async () => {
      const nos = (await cells(page, 'no')).map(Number);
      return nos.length === 2 * N && nos.every((n, i) => i === 0 || nos[i - 1]! < n);
    })
    .toBe(true);
  await applyFilter(page, '');
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
