/**
 * Peers, charts and export through the UI, against the real service with real pings. The capture runs
 * in namespace A and pings B; B drops a deterministic share of its echo replies with nftables
 * (every 4th IPv4 reply, every 5th IPv6 reply), so the loss the peers view must show is exact.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Page, expect, test } from '@playwright/test';
import { type NetnsPair, createNetnsPair } from '../support/netns.js';
import { type ServedApp, openCheckedPage, serveInNetns } from '../support/serve.js';

const N = 20;

let net: NetnsPair;
let app: ServedApp | undefined;
let tmp: string;

test.beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-peers-'));
  net = createNetnsPair('pe');
  const nft = (...args: string[]) => net.exec(net.b, ['nft', ...args]);
  nft('add', 'table', 'inet', 't');
  nft('add', 'chain', 'inet', 't', 'out', '{ type filter hook output priority 0; }');
  nft(
    'add',
    'rule',
    'inet',
    't',
    'out',
    'icmp',
    'type',
    'echo-reply',
    'numgen',
    'inc',
    'mod',
    '4',
    '==',
    '0',
    'drop',
  );
  nft(
    'add',
    'rule',
    'inet',
    't',
    'out',
    'icmpv6',
    'type',
    'echo-reply',
    'numgen',
    'inc',
    'mod',
    '5',
    '==',
    '0',
    'drop',
  );
  app = await serveInNetns(net.a, ['-i', net.ifA]);
  // ping exits 1 when replies are missing: that is the point here.
  const ping = (args: string[]) => {
    try {
      net.exec(net.a, ['ping', '-c', String(N), '-i', '0.02', '-W', '1', ...args]);
    } catch {
      /* some replies were dropped on purpose */
    }
  };
  ping([net.v4.b]);
  ping(['-6', net.v6.b]);
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
  rmSync(tmp, { recursive: true, force: true });
});

async function openApp(colorScheme: 'light' | 'dark' = 'light'): Promise<Page> {
  const page = await openCheckedPage(app!, problems, { colorScheme });
  await expect(page.getByTestId('status-state')).toHaveText(/running|stopped/);
  // The view (filter) lives in the service and outlives pages: start each test unfiltered.
  const input = page.getByTestId('filter-input');
  if (await input.inputValue()) {
    await input.fill('');
    await input.press('Enter');
    await expect(page.getByTestId('status-view')).toBeHidden();
  }
  return page;
}

async function peerCells(page: Page, peer: string): Promise<Record<string, string>> {
  return page.locator(`[data-testid="peer-row"][data-peer="${peer}"]`).evaluate((tr) => {
    const out: Record<string, string> = {};
    for (const td of tr.querySelectorAll<HTMLElement>('td[data-col]'))
      out[td.dataset.col!] = td.textContent.trim();
    return out;
  });
}

test('the peers view shows the exact loss made by nftables and plausible RTTs', async () => {
  const page = await openApp();
  await page.getByTestId('tab-peers').click();
  const v4 = page.locator(`[data-testid="peer-row"][data-peer="${net.v4.b}"]`);
  const v6 = page.locator(`[data-testid="peer-row"][data-peer="${net.v6.b}"]`);
  await expect(v4).toBeVisible({ timeout: 15_000 });
  await expect(v6).toBeVisible();
  // Loss is counted once a request's timeout has passed: wait for it to settle.
  await expect.poll(async () => (await peerCells(page, net.v4.b)).loss, { timeout: 20_000 }).toBe('25.0 %');
  await expect.poll(async () => (await peerCells(page, net.v6.b)).loss, { timeout: 20_000 }).toBe('20.0 %');
  for (const [peer, replies] of [
    [net.v4.b, N - N / 4],
    [net.v6.b, N - N / 5],
  ] as const) {
    const c = await peerCells(page, peer);
    expect(c.requests).toBe(String(N));
    expect(c.replies).toBe(String(replies));
    const [min, avg, max, p95] = [c.min, c.avg, c.max, c.p95].map(Number);
    expect(min).toBeGreaterThan(0);
    expect(min).toBeLessThanOrEqual(avg!);
    expect(avg).toBeLessThanOrEqual(max!);
    expect(p95).toBeLessThanOrEqual(max!);
    expect(max).toBeLessThan(100);
    expect(Number(c.jitter)).toBeGreaterThanOrEqual(0);
  }
  await expect(v4.locator('svg polyline')).toHaveCount(1);
  await page.screenshot({ path: 'artifacts/screenshots/peers-light.png' });

  // Tick both peers: the RTT chart shows a series for each.
  await v4.getByRole('checkbox').check();
  await v6.getByRole('checkbox').check();
  const chart = page.getByTestId('rtt-chart');
  await expect(chart.locator('canvas')).toHaveCount(1);
  await expect(chart.locator('.u-legend')).toContainText(net.v4.b);
  await expect(chart.locator('.u-legend')).toContainText(net.v6.b);
  await page.screenshot({ path: 'artifacts/screenshots/peers-chart-light.png' });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: 'artifacts/screenshots/peers-chart-dark.png' });
  await page.emulateMedia({ colorScheme: 'light' });

  // Clicking a peer filters the table by it.
  await v4.getByRole('button', { name: net.v4.b, exact: true }).click();
  await expect(page.getByTestId('filter-input')).toHaveValue(
    `ip.addr == ${net.v4.a} && ip.addr == ${net.v4.b}`,
  );
  await expect(page.getByTestId('tab-packets')).toHaveAttribute('aria-selected', 'true');
  await expect(page.getByTestId('status-view')).toHaveText(`${N + N - N / 4} shown`);
  await page.close();
});

test('the charts view draws packets per second by kind', async () => {
  for (const scheme of ['light', 'dark'] as const) {
    const page = await openApp(scheme);
    await page.getByTestId('tab-charts').click();
    const pps = page.getByTestId('pps-chart');
    await expect(pps.locator('canvas')).toHaveCount(1);
    await expect(pps.locator('.u-legend')).toContainText('Echo');
    // The chart has drawn something: some canvas pixels are not background.
    const inked = await pps.locator('canvas').evaluate((c: HTMLCanvasElement) => {
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i]! > 0) n++;
      return n;
    });
    expect(inked).toBeGreaterThan(100);
    await page.screenshot({ path: `artifacts/screenshots/charts-${scheme}.png` });
    await page.close();
  }
});

/** Exports through the dialog; the browser gets the file as a download, saved to `path`. */
async function exportAs(page: Page, scope: 'all' | 'selected', format: string, path: string): Promise<void> {
  await page.getByRole('button', { name: 'Export…' }).click();
  const dialog = page.getByRole('dialog', { name: 'Export packets' });
  await dialog.getByTestId(`export-scope-${scope}`).check();
  await dialog.getByTestId('export-format').selectOption(format);
  const download = page.waitForEvent('download', { timeout: 30_000 });
  await dialog.getByTestId('export-start').click();
  await expect(page.getByTestId('job')).toHaveAttribute('data-state', 'done', { timeout: 20_000 });
  const file = await download;
  expect(file.suggestedFilename()).toMatch(new RegExp(`^icmpcap-.*\\.${format}$`));
  await file.saveAs(path);
}

test('export through the UI downloads a pcapng that tshark reads, with every echo seq', async () => {
  const page = await openApp();
  const path = join(tmp, 'ui-export.pcapng');
  await exportAs(page, 'all', 'pcapng', path);
  expect(statSync(path).size).toBeGreaterThan(0);
  const seqs = execFileSync(
    'tshark',
    ['-r', path, '-Y', 'icmp.type == 8', '-T', 'fields', '-e', 'icmp.seq'],
    {
      encoding: 'utf8',
    },
  )
    .trim()
    .split('\n')
    .map(Number);
  expect(seqs).toEqual(Array.from({ length: N }, (_, i) => i + 1));
  const v6 = execFileSync(
    'tshark',
    ['-r', path, '-Y', 'icmpv6.type == 129', '-T', 'fields', '-e', 'icmpv6.echo.sequence_number'],
    {
      encoding: 'utf8',
    },
  )
    .trim()
    .split('\n');
  expect(v6).toHaveLength(N - N / 5);
  await page.close();
});

test('export of the selected rows (ctrl-click) as CSV writes exactly those rows', async () => {
  const page = await openApp();
  const input = page.getByTestId('filter-input');
  await input.fill('icmp.type == echo-reply || icmpv6.type == echo-reply');
  await input.press('Enter');
  await expect(page.getByTestId('status-view')).toHaveText(`${N - N / 4 + N - N / 5} shown`);
  await page.getByTestId('packet-row').first().click();
  await page.keyboard.press('Home');
  const rows = page.getByTestId('packet-row');
  await expect(rows.first()).toHaveAttribute('aria-rowindex', '1');
  await rows.nth(0).click({ modifiers: ['Control'] });
  await rows.nth(2).click({ modifiers: ['Control'] });
  await expect(page.locator('[data-testid="packet-row"][aria-selected="true"]')).toHaveCount(2);
  const path = join(tmp, 'selected.csv');
  await page.getByRole('button', { name: 'Export…' }).click();
  await expect(page.getByTestId('export-count-selected')).toHaveText('2');
  await page.getByRole('button', { name: 'Cancel' }).click();
  await exportAs(page, 'selected', 'csv', path);
  const lines = readFileSync(path, 'utf8').trim().split('\n');
  expect(lines).toHaveLength(3); // a header and the two rows
  await input.fill('');
  await input.press('Enter');
  await page.close();
});

test('opening a capture file through the UI (an upload) shows its packets, with progress', async () => {
  const page = await openApp();
  const path = join(tmp, 'for-open.pcapng');
  await exportAs(page, 'all', 'pcapng', path);
  const exported = Number(
    /([\d,]+) records/.exec((await page.getByTestId('job').textContent())!)![1]!.replace(/,/g, ''),
  );
  await page.getByRole('button', { name: /Dismiss/ }).click();

  const stop = page.getByRole('button', { name: /Stop/ });
  if (await stop.isVisible()) await stop.click();
  await expect(page.getByTestId('status-state')).toHaveText('stopped');
  await page.getByRole('button', { name: 'Open…' }).click();
  // Packets that came after the export (the link's own chatter) are not saved: confirm discarding them.
  const opened = page.locator('dialog[open]');
  await expect(opened).toBeVisible();
  if ((await opened.getAttribute('aria-label')) === 'Unsaved packets')
    await page.getByTestId('discard-confirm').click();
  await page.getByTestId('open-upload').setInputFiles(path);
  await page.getByTestId('open-upload-start').click();
  await expect(page.getByTestId('job')).toHaveAttribute('data-state', 'done', { timeout: 20_000 });
  await expect(page.getByTestId('job')).toContainText(`${exported} ICMP records read`);
  // The page shows the file's name; the service's paths stay on the service.
  await expect(page.getByTestId('status-source')).toHaveText('file for-open.pcapng');
  await expect(page.getByTestId('status-count')).toHaveText(`${exported} packets`);
  await expect(page.getByTestId('packet-row').first()).toBeVisible();
  await page.close();
});
