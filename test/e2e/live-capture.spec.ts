/**
 * End to end with real packets: the service in browser mode inside one namespace, chromium (also inside
 * it, so 127.0.0.1 is the service's), and exactly N echo requests from the other namespace. The table
 * must show exactly N requests in and N replies out, with the right addresses, types, ids and seqs.
 */
import { expect, test } from '@playwright/test';
import { type NetnsPair, createNetnsPair } from '../support/netns.js';
import { type ServedApp, serveInNetns } from '../support/serve.js';

const N = 5;
const ID4 = 4660;
const ID6 = 4661;

let net: NetnsPair;
let app: ServedApp | undefined;

test.beforeAll(async () => {
  net = createNetnsPair('e2e');
  app = await serveInNetns(net.a, ['-i', net.ifA]);
});

test.afterAll(async () => {
  await app?.close();
  net?.destroy();
});

interface TableRow {
  dir: string;
  iface: string;
  src: string;
  dst: string;
  type: string;
  id: string;
  seq: string;
}

test('the live table shows exactly N echo requests and N replies, IPv4 and IPv6', async () => {
  const page = await app!.browser.newPage({ viewport: { width: 1400, height: 1400 } });
  await page.goto(app!.url);
  await expect(page.getByTestId('status-state')).toHaveText('running');
  await expect(page.getByTestId('status-source')).toHaveText(/AF_PACKET|kernel module/);

  net.exec(net.b, ['ping', '-c', String(N), '-i', '0.05', '-W', '2', '-e', String(ID4), net.v4.a]);
  net.exec(net.b, ['ping', '-6', '-c', String(N), '-i', '0.05', '-W', '2', '-e', String(ID6), net.v6.a]);

  const echoRows = async (): Promise<TableRow[]> =>
    page.getByTestId('packet-row').evaluateAll((els) =>
      els
        .map((el) => {
          const cell = (c: string) => el.querySelector(`[data-col="${c}"]`)?.textContent?.trim() ?? '';
          return {
            dir: cell('dir'),
            iface: cell('iface'),
            src: cell('src'),
            dst: cell('dst'),
            type: cell('type'),
            id: cell('id'),
            seq: cell('seq'),
          };
        })
        .filter((r) => r.type.startsWith('Echo')),
    );

  await expect.poll(async () => (await echoRows()).length, { timeout: 15_000 }).toBe(4 * N);
  const rows = await echoRows();
  const expected: TableRow[] = [];
  for (const [family, id, a, b] of [
    [4, ID4, net.v4.a, net.v4.b],
    [6, ID6, net.v6.a, net.v6.b],
  ] as const) {
    for (let seq = 1; seq <= N; seq++) {
      const common = { iface: net.ifA, id: String(id), seq: String(seq) };
      expected.push({ ...common, dir: 'in', src: b, dst: a, type: 'Echo Request' });
      expected.push({ ...common, dir: 'out', src: a, dst: b, type: 'Echo Reply' });
    }
    void family;
  }
  expect(rows).toEqual(expected);
  await page.screenshot({ path: 'artifacts/screenshots/live-table.png' });
  await page.close();
});
