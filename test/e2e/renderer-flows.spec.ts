/**
 * Peers: one row per flow. Namespace A pings two addresses of B; B drops every 2nd echo reply from its
 * second address (nftables), so the flows differ in loss. The peers view must show two rows with their
 * own loss, chart two lines, and filter to one flow or to its unanswered requests.
 */
import { type Page, expect, test } from '@playwright/test';
import { type NetnsPair, createNetnsPair } from '../support/netns.js';
import { type ServedApp, openCheckedPage, serveInNetns } from '../support/serve.js';

const N = 10;
const SECOND = '198.51.100.3';

let net: NetnsPair;
let app: ServedApp | undefined;

test.beforeAll(async () => {
  net = createNetnsPair('fl');
  net.exec(net.b, ['ip', 'addr', 'add', `${SECOND}/24`, 'dev', net.ifB]);
  const nft = (...args: string[]) => net.exec(net.b, ['nft', ...args]);
  nft('add', 'table', 'inet', 't');
  nft('add', 'chain', 'inet', 't', 'out', '{ type filter hook output priority 0; }');
  nft(
    'add',
    'rule',
    'inet',
    't',
    'out',
    'ip',
    'saddr',
    SECOND,
    'icmp',
    'type',
    'echo-reply',
    'numgen',
    'inc',
    'mod',
    '2',
    '==',
    '0',
    'drop',
  );
  app = await serveInNetns(net.a, ['-i', net.ifA]);
  for (const to of [net.v4.b, SECOND]) {
    try {
      net.exec(net.a, ['ping', '-c', String(N), '-i', '0.02', '-W', '1', to]);
    } catch {
      /* replies dropped on purpose */
    }
  }
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

const flowRow = (page: Page, to: string) =>
  page.locator(`[data-testid="peer-row"][data-flow="${net.v4.a}>${to}"]`);

test('two flows from one host with different loss: two rows, two chart lines, a filter for each', async () => {
  const page = await openCheckedPage(app!, problems);
  await page.getByTestId('tab-peers').click();
  const clean = flowRow(page, net.v4.b);
  const lossy = flowRow(page, SECOND);
  await expect(clean.locator('[data-col="loss"]')).toHaveText('0.0 %', { timeout: 20_000 });
  await expect(lossy.locator('[data-col="loss"]')).toHaveText('50.0 %', { timeout: 20_000 });
  await expect(clean.locator('[data-col="local"]')).toHaveText(net.v4.a);
  await expect(clean.locator('[data-col="role"]')).toHaveText('we ping it →');
  await expect(lossy.locator('[data-col="requests"]')).toHaveText(String(N));
  await expect(lossy.locator('[data-col="replies"]')).toHaveText(String(N / 2));

  // Rows are ticked independently; each is a line of its own.
  await lossy.getByRole('checkbox').check();
  await expect(clean.getByRole('checkbox')).not.toBeChecked();
  await clean.getByRole('checkbox').check();
  const legend = page.getByTestId('rtt-chart').locator('.u-legend');
  await expect(legend).toContainText(`${net.v4.a} → ${net.v4.b}`);
  await expect(legend).toContainText(`${net.v4.a} → ${SECOND}`);
  // The lossy flow's lost requests are marked on the chart, at the time they were sent.
  await expect(legend).toContainText(`lost (${net.v4.a} → ${SECOND})`);
  // Hovering shows the time to the ms and only the series with a point there.
  const over = page.getByTestId('rtt-chart').locator('.u-over');
  const box = (await over.boundingBox())!;
  await page.mouse.move(box.x + box.width * 0.3, box.y + box.height / 2);
  await expect(legend.locator('.u-series').first()).toContainText(/\d\d:\d\d:\d\d\.\d{3}/);
  await expect(legend.locator('.u-series:not(.no-point)')).toHaveCount(2);
  await page.screenshot({ path: 'artifacts/screenshots/peers-flows-light.png' });
  await page.mouse.move(0, 0);

  // The lossy flow's unanswered requests, then the whole clean flow.
  await lossy.getByRole('button', { name: /unanswered requests/ }).click();
  await expect(page.getByTestId('tab-packets')).toHaveAttribute('aria-selected', 'true');
  await expect(page.getByTestId('filter-input')).toHaveValue(
    `ip.src == ${net.v4.a} && ip.dst == ${SECOND} && icmp.resp_not_found`,
  );
  await expect(page.getByTestId('status-view')).toHaveText(`${N / 2} shown`);
  // The charts do not follow the display filter, and say so.
  await page.getByTestId('tab-charts').click();
  await expect(page.getByTestId('charts-scope')).toContainText('applies to the packet table only');
  await page.getByTestId('tab-peers').click();
  await clean.getByRole('button', { name: net.v4.b, exact: true }).click();
  await expect(page.getByTestId('status-view')).toHaveText(`${2 * N} shown`);
  await page.close();
});
