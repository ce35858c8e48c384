/**
 * Wireshark's words in the UI, against the real service in browser mode with real pings between two
 * namespaces: a filter that must read packet bytes says so in the filter bar's status (a columnar one
 * does not), and the details tree names its fields as the registry does (hover title, status line)
 * and builds "apply as filter" / "prepare as filter" from that name.
 */
import { type Page, expect, test } from '@playwright/test';
import { type NetnsPair, createNetnsPair } from '../support/netns.js';
import { type ServedApp, openCheckedPage, serveInNetns } from '../support/serve.js';

const N = 5;
const ID4 = 0x2b01;

let net: NetnsPair;
let app: ServedApp | undefined;

test.beforeAll(async () => {
  net = createNetnsPair('ws');
  app = await serveInNetns(net.a, ['-i', net.ifA]);
  net.exec(net.b, ['ping', '-c', String(N), '-i', '0.05', '-W', '2', '-e', String(ID4), net.v4.a]);
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

async function openApp(): Promise<Page> {
  const page = await openCheckedPage(app!, problems, {});
  await expect(page.getByTestId('status-state')).toHaveText('running');
  if (await page.getByTestId('filter-input').inputValue()) await applyFilter(page, '');
  return page;
}

async function applyFilter(page: Page, text: string): Promise<void> {
  const input = page.getByTestId('filter-input');
  await input.fill(text);
  await input.press('Enter');
}

function cells(page: Page, col: string): Promise<string[]> {
  return page
    .getByTestId('packet-row')
    .evaluateAll(
      (els, c) => els.map((el) => el.querySelector(`[data-col="${c}"]`)?.textContent?.trim() ?? ''),
      col,
    );
}

test('a filter that reads packet bytes says so in the status; a columnar one does not', async () => {
  const page = await openApp();
  await expect
    .poll(async () => (await cells(page, 'type')).filter((t) => t === 'Echo Request').length)
    .toBe(N);
  await applyFilter(page, 'string(icmp.seq) matches "^[13]$"');
  await expect(page.getByTestId('filter-slow')).toContainText('slow filter: reads packet bytes (regex');
  // The filter really applied: requests and replies with sequence numbers 1 and 3.
  await expect.poll(async () => new Set(await cells(page, 'seq'))).toEqual(new Set(['1', '3']));
  await applyFilter(page, 'icmp.type == 8 && ip.src == ' + net.v4.b);
  await expect.poll(async () => new Set(await cells(page, 'type'))).toEqual(new Set(['Echo Request']));
  await expect(page.getByRole('status').filter({ hasText: 'applied in' })).toBeVisible();
  await expect(page.getByTestId('filter-slow')).toHaveCount(0);
  await page.close();
});

test('details fields carry registry names; right-click applies or prepares a filter from them', async () => {
  const page = await openApp();
  const request = page
    .getByTestId('packet-row')
    .filter({ has: page.locator('[data-col="type"]', { hasText: 'Echo Request' }) })
    .filter({ has: page.locator('[data-col="seq"]', { hasText: /^2$/ }) });
  await request.click();
  const details = page.getByTestId('details');
  const seqNode = details.locator('[data-testid="field-node"][data-name="icmp.seq"]');
  await expect(seqNode).toHaveAttribute('title', /\(icmp\.seq\)/);
  await seqNode.hover();
  await expect(page.getByTestId('details-field')).toContainText('icmp.seq — Sequence Number');
  await expect(details.locator('[data-testid="field-node"][data-name="ip.ttl"]')).toHaveCount(1);

  // Prepare: the filter lands in the bar, not applied.
  await details.locator('[data-testid="field-node"][data-name="icmp.type"]').click({ button: 'right' });
  await expect(page.getByTestId('field-apply')).toContainText('icmp.type == 8');
  await page.getByTestId('field-prepare').click();
  await expect(page.getByTestId('filter-input')).toHaveValue('icmp.type == 8');
  expect(new Set(await cells(page, 'type'))).toContain('Echo Reply');

  // Apply: the table shows the packets with that sequence number, requests and replies.
  await seqNode.click({ button: 'right' });
  await page.getByTestId('field-apply').click();
  await expect(page.getByTestId('filter-input')).toHaveValue('icmp.seq == 2');
  await expect
    .poll(async () => ({ seq: new Set(await cells(page, 'seq')), types: (await cells(page, 'type')).sort() }))
    .toEqual({ seq: new Set(['2']), types: ['Echo Reply', 'Echo Request'] });
  await page.close();
});
