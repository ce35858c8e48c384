/**
 * The Info column and the request/reply links, against the real service with real packets: echo
 * requests and replies that name each other, a request nobody answers (B drops it with nftables), a UDP
 * datagram to a closed port (the Port unreachable quotes it), and a ping too big for the MTU (fragments).
 */
import { type Page, expect, test } from '@playwright/test';
import { type NetnsPair, createNetnsPair } from '../support/netns.js';
import { type ServedApp, openCheckedPage, serveInNetns } from '../support/serve.js';

const DROPPED_ID = 0x4242;
const ID = 0x1281;

let net: NetnsPair;
let app: ServedApp | undefined;

test.beforeAll(async () => {
  net = createNetnsPair('in');
  net.exec(net.b, ['nft', 'add', 'table', 'inet', 't']);
  net.exec(net.b, ['nft', 'add', 'chain', 'inet', 't', 'in', '{ type filter hook input priority 0; }']);
  net.exec(net.b, ['nft', 'add', 'rule', 'inet', 't', 'in', 'icmp', 'id', String(DROPPED_ID), 'drop']);
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

async function infos(page: Page): Promise<{ no: number; info: string }[]> {
  return page.getByTestId('packet-row').evaluateAll((els) =>
    els.map((el) => ({
      no: Number(el.getAttribute('data-no')),
      info: el.querySelector('[data-col="info"]')?.textContent?.trim() ?? '',
    })),
  );
}

test('Info reads as Wireshark’s; request and reply link to each other; unanswered requests are marked', async () => {
  const page = await openCheckedPage(app!, problems, { height: 1100 });
  await expect(page.getByTestId('status-state')).toHaveText('running');
  try {
    net.exec(net.a, ['ping', '-c', '1', '-W', '1', '-e', String(DROPPED_ID), net.v4.b]);
  } catch {
    /* dropped on purpose */
  }
  net.exec(net.a, ['ping', '-c', '2', '-i', '0.05', '-W', '2', '-e', String(ID), net.v4.b]);
  net.exec(net.b, ['bash', '-c', `echo probe > /dev/udp/${net.v4.a}/33434`]);
  net.exec(net.b, ['ping', '-c', '1', '-s', '3000', '-W', '2', net.v4.a]);

  const input = page.getByTestId('filter-input');
  await input.fill('ip');
  await input.press('Enter');
  await page.getByRole('button', { name: 'Hide details' }).click();

  // Echo: "Echo (ping) request id=0x1281, seq=1/256, ttl=64 (reply in N)" and the reply names it back.
  await expect
    .poll(async () => (await infos(page)).map((r) => r.info).join('\n'))
    .toMatch(/Echo \(ping\) request id=0x1281, seq=1\/256, ttl=64 \(reply in \d+\)/);
  const rows = await infos(page);
  const request = rows.find((r) => r.info.startsWith('Echo (ping) request id=0x1281, seq=1/256'))!;
  const replyNo = Number(/reply in (\d+)/.exec(request.info)![1]);
  // Rows reach the page in batches: each check below polls for the row it is about.
  await expect
    .poll(async () => (await infos(page)).find((r) => r.no === replyNo)?.info ?? '')
    .toMatch(
      new RegExp(`^Echo \\(ping\\) reply id=0x1281, seq=1/256, ttl=64 \\(request in ${request.no}\\)$`),
    );

  // The UDP probe to a closed port, quoted by the Port unreachable A sent back.
  await expect
    .poll(async () => (await infos(page)).map((r) => r.info))
    .toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^Port unreachable for UDP ${net.v4.b.replace(/\./g, '\\.')}:\\d+ → ${net.v4.a.replace(/\./g, '\\.')}:33434$`,
        ),
      ),
    );
  // The dropped request: "no response found!" once its timeout has passed in capture time (a ping each
  // try moves capture time on), and the filter finds it.
  await expect
    .poll(
      async () => {
        net.exec(net.a, ['ping', '-c', '1', '-W', '1', net.v4.b]);
        return (await infos(page)).map((r) => r.info).join('\n');
      },
      { timeout: 20_000 },
    )
    .toContain('Echo (ping) request id=0x4242, seq=1/256, ttl=64 (no response found!)');
  await input.fill('icmp.resp_not_found');
  await input.press('Enter');
  await expect(page.getByTestId('status-view')).toHaveText('1 shown');
  await page.screenshot({ path: 'artifacts/screenshots/info-unanswered-light.png' });

  // Details: the request links to its reply, and the link goes there.
  await input.fill(`icmp.id == ${ID}`);
  await input.press('Enter');
  await page.getByRole('button', { name: 'Show details' }).click();
  await page.locator(`[data-testid="packet-row"][data-no="${request.no}"]`).click();
  const links = page.getByTestId('details-links');
  await expect(links).toHaveText(`[Response frame: ${replyNo}]`);
  await links.getByRole('button', { name: String(replyNo) }).click();
  await expect(page.getByTestId('details')).toContainText(`Record ${replyNo}`);
  await expect(links).toContainText(`[Request frame: ${request.no}] [Response time: `);
  await page.screenshot({ path: 'artifacts/screenshots/info-details-light.png' });
  await page.close();
});

// Later fragments carry no ICMP header: their rows are read back from the spool all the same, and Info says
// which datagram and offset they are, as Wireshark does.
test('Info names later fragments by offset and id', async () => {
  const page = await openCheckedPage(app!, problems, { height: 1100 });
  // The page first takes the service's view as the last test left it (its filter, its rows); typing before
  // that arrives would be overwritten by it.
  await expect(page.getByTestId('status-state')).toHaveText('running');
  await expect(page.getByTestId('packet-row').first()).toBeVisible();
  net.exec(net.b, ['ping', '-c', '1', '-s', '3000', '-W', '2', net.v4.a]);
  const input = page.getByTestId('filter-input');
  // Only later fragments: the table keeps few rows, all in view whatever the details pane takes. Should
  // the service's view state still arrive after the typing, the filter is typed again.
  const FRAGMENTS = 'ip.frag_offset > 0';
  // The 3000-byte ping arrives in three fragments; the later ones carry no ICMP header. Rows reach the
  // page in batches, so wait for the fragments themselves rather than for a row count.
  const infoTexts = async (): Promise<string[]> => (await infos(page)).map((r) => r.info);
  await expect(async () => {
    if ((await input.inputValue()) !== FRAGMENTS) {
      await input.fill(FRAGMENTS);
      await input.press('Enter');
    }
    const texts = await infoTexts();
    expect(texts).toContainEqual(expect.stringMatching(/^Fragment off=1480 id=0x[0-9a-f]{4}, more follow$/));
    expect(texts).toContainEqual(expect.stringMatching(/^Fragment off=2960 id=0x[0-9a-f]{4}$/));
  }).toPass({ timeout: 15_000 });

  await page.close();
});
