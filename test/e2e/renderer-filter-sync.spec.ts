/**
 * The filter bar and the service's view when more than one window looks at it (real pings, the real service
 * in browser mode, two pages). The view's filter lives in the service and every window shows it; what a user
 * types is theirs: a view state that reaches the page after the first keystroke (a slow link: the page's
 * requests are held in the network until the typing is done, and meanwhile another window applies its
 * filter) must not replace the text. Wireshark-like: the bar shows the applied filter while the user is not
 * editing it, and says which filter is applied while they are.
 */
import { type Page, type WebSocketRoute, expect, test } from '@playwright/test';
import { type NetnsPair, createNetnsPair } from '../support/netns.js';
import { type ServedApp, openCheckedPage, serveInNetns } from '../support/serve.js';

const N = 4;

let net: NetnsPair;
let app: ServedApp | undefined;

test.beforeAll(async () => {
  net = createNetnsPair('fs');
  // IPv4 pings only: the counts below are the pings' (no router solicitation or MLD report joins them).
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
});

async function applyIn(page: Page, filter: string, shown: number): Promise<void> {
  const input = page.getByTestId('filter-input');
  await input.fill(filter);
  await input.press('Enter');
  await expect(page.getByTestId('status-view')).toHaveText(`${shown} shown`);
}

/**
 * A slow link for one page: while `holding`, what the page sends waits in the network (in order); the
 * service's messages reach the page as they come.
 */
function slowLink(): { route: (ws: WebSocketRoute) => void; held: string[]; release(): void } {
  const held: string[] = [];
  let holding = true;
  let server: WebSocketRoute | null = null;
  return {
    held,
    route(ws) {
      server = ws.connectToServer();
      ws.onMessage((m) => {
        if (holding) held.push(String(m));
        else server!.send(m);
      });
      server.onMessage((m) => ws.send(m));
    },
    release() {
      holding = false;
      for (const m of held.splice(0)) server!.send(m);
    },
  };
}

test('a late view state never replaces what the user typed; filters applied elsewhere show when not editing', async () => {
  net.exec(net.b, ['ping', '-c', String(N), '-i', '0.05', '-W', '2', net.v4.a]);
  const other = await openCheckedPage(app!, problems);
  await expect(other.getByTestId('status-count')).toHaveText(`${2 * N} packets`);
  await applyIn(other, 'icmp.type == echo-reply', N);

  const link = slowLink();
  const page = await openCheckedPage(app!, problems, {
    beforeGoto: (p) => p.routeWebSocket(/\/ws/, link.route),
  });
  const input = page.getByTestId('filter-input');
  // The page has asked for the service's state; the answer cannot come before the request goes.
  await expect.poll(() => link.held.some((m) => m.includes('"hello"'))).toBe(true);
  await input.click();
  await page.keyboard.type('i');
  // Right after the first keystroke another window applies its filter: the view state the page gets next
  // carries it.
  await applyIn(other, 'icmp.type == echo-request', N);
  await page.keyboard.type('cmp.seq <= 2');
  const typed = 'icmp.seq <= 2';
  await expect(input).toHaveValue(typed);
  link.release();
  // The page took the service's view (the other window's filter, applied)...
  await expect(page.getByTestId('status-view')).toHaveText(`${N} shown`);
  // ...and the text typed since it opened is still there; the bar says which filter is applied.
  await expect(input).toHaveValue(typed);
  await expect(page.getByTestId('filter-applied')).toContainText('icmp.type == echo-request');

  // Applied, it is the view of every window; the other window, not editing, shows it.
  await input.press('Enter');
  await expect(page.getByTestId('status-view')).toHaveText(`4 shown`);
  await expect(page.getByTestId('filter-applied')).toBeHidden();
  await expect(other.getByTestId('filter-input')).toHaveValue(typed);

  // Not editing: a filter applied elsewhere replaces the bar's text.
  await page.getByTestId('packet-row').first().click();
  await applyIn(other, 'icmp.seq == 1', 2);
  await expect(page.getByTestId('status-view')).toHaveText('2 shown');
  await expect(input).toHaveValue('icmp.seq == 1');

  // Editing: the text stays, and the bar says what is applied.
  await input.click();
  await page.keyboard.press('End');
  await page.keyboard.type(' && icmp.type == echo-reply');
  await applyIn(other, 'icmp.seq >= 2', 6);
  await expect(page.getByTestId('status-view')).toHaveText('6 shown');
  await expect(input).toHaveValue('icmp.seq == 1 && icmp.type == echo-reply');
  await expect(page.getByTestId('filter-applied')).toContainText('icmp.seq >= 2');
  await page.screenshot({ path: 'artifacts/screenshots/filter-applied-elsewhere.png' });

  await page.close();
  await other.close();
});
