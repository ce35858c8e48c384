/**
 * Problems, Paths, Neighbours and Alerts through the UI, against the real service capturing in h1 of a
 * chain h1 -- r1 -- r2 -- r3 -- h2 (three forwarding routers; the r2 -- r3 link has an MTU of 1400):
 * a real `traceroute -I`, real path-MTU errors (taken by the kernel, then dropped by nftables before the
 * kernel sees them: the black hole), a rogue RA after learning, and a burst of real port unreachables
 * that fires a rule once per cool-down and shows a browser notification.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Page, expect, test } from '@playwright/test';
import { H1, H2, ROUTERS, RouterChain, hasChainTools } from '../../electron/core/answers/testing/chain.js';
import { type ServedApp, openCheckedPage, serveInNetns } from '../support/serve.js';

const ND_SENDER = join(import.meta.dirname, '../../electron/core/neighbours/testing/nd_send.py');
/** r3's address on the small-MTU link: reached through it, like h2. */
const R3_LEFT = '10.211.3.2';

let chain: RouterChain;
let app: ServedApp | undefined;
let tmp: string;
const saved: Record<string, string | undefined> = {};

test.skip(!hasChainTools(), 'needs root, iproute2, traceroute, mtr and tracepath (scripts/deps.sh paths)');

test.beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-insights-'));
  // The service's alerts.conf goes to this test's folder, not the user's: writable by the account serve
  // drops root to (it keeps a given XDG_CONFIG_HOME it may write).
  chmodSync(tmp, 0o755);
  for (const k of ['XDG_CONFIG_HOME', 'XDG_DATA_HOME']) {
    saved[k] = process.env[k];
    const dir = join(tmp, k.toLowerCase());
    mkdirSync(dir, { mode: 0o777 });
    chmodSync(dir, 0o777);
    process.env[k] = dir;
  }
  chain = new RouterChain();
  chain.setUp();
  const n = chain.names;
  chain.ns(n.r2, 'ip', 'link', 'set', 'right', 'mtu', '1400');
  chain.ns(n.r3, 'ip', 'link', 'set', 'left', 'mtu', '1400');
  for (const a of ['fe80::1', 'fe80::bad'])
    chain.ns(n.r1, 'ip', '-6', 'addr', 'add', `${a}/64`, 'dev', 'left', 'nodad');
  app = await serveInNetns(n.h1, ['-i', 'eth0']);
});

test.afterAll(async () => {
  await app?.close();
  chain?.tearDown();
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Uncaught page errors and CSP violations fail the test. */
const problems: string[] = [];
test.afterEach(() => {
  expect(problems.splice(0)).toEqual([]);
});

async function openApp(opts: Parameters<typeof openCheckedPage>[2] = {}): Promise<Page> {
  const page = await openCheckedPage(app!, problems, opts);
  await expect(page.getByTestId('status-state')).toHaveText('running');
  return page;
}

function h1(cmd: string, ...args: string[]): string {
  return chain.ns(chain.names.h1, cmd, ...args);
}

/** A ping that is meant to fail (too big, or its answers dropped). */
function pingTooBig(destination: string): void {
  try {
    h1('ping', '-M', 'do', '-s', '1450', '-c', '3', '-i', '0.3', '-W', '1', destination);
  } catch {
    // "message too long" once the kernel knows the path MTU, or no answer: that is the point
  }
}

/** The rules have been read (the file's path shows): what the list holds now is alerts.conf's. */
async function rulesRead(page: Page): Promise<void> {
  await expect(page.getByRole('region', { name: 'Alert rules' }).locator('h2')).toContainText('alerts.conf');
}

async function rowCells(page: Page, selector: string): Promise<Record<string, string>> {
  return page.locator(selector).evaluate((tr) => {
    const out: Record<string, string> = {};
    for (const td of tr.querySelectorAll<HTMLElement>('td[data-col]'))
      out[td.dataset.col!] = td.textContent.trim();
    return out;
  });
}

test('Paths shows a real traceroute -I hop by hop, with a live diagram', async () => {
  const page = await openApp();
  h1('traceroute', '-I', '-n', '-q', '2', '-w', '1', H2);
  await page.getByTestId('tab-paths').click();
  // Other paths may show up too (the namespace's resolver traffic loops between routers); pick ours.
  const label = `${H1} → ${H2} (icmp)`;
  await expect(page.getByTestId('path-pick').locator('option', { hasText: label })).toHaveCount(1, {
    timeout: 15_000,
  });
  await page.getByTestId('path-pick').selectOption({ label });
  const hops = page.getByTestId('hop-row');
  await expect
    .poll(() => hops.evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.address)), {
      timeout: 15_000,
    })
    .toEqual([...ROUTERS, H2]);
  await expect(page.getByTestId('path-summary')).toContainText(`4 hops to ${H2}`);
  await expect(page.getByTestId('path-diagram')).toContainText(ROUTERS[1]!);
  // Exact ICMP probes: every hop answered both probes, with a measured RTT.
  for (const address of [...ROUTERS, H2]) {
    const cells = await rowCells(page, `[data-testid="hop-row"][data-address="${address}"]`);
    expect(cells.loss).toBe('0 %');
    expect(Number(cells.rtt)).toBeGreaterThan(0);
  }
  await page.screenshot({ path: 'artifacts/screenshots/paths-light.png' });
});

test('Problems shows a path-MTU error the kernel took, and the black hole when nftables drops them', async () => {
  const page = await openApp();
  await page.getByTestId('tab-problems').click();
  pingTooBig(H2);
  // The traceroute's echo flow to h2 has a row too (its TTL exceeded): this one is the ping's.
  const taken = page
    .locator(`[data-testid="problem-row"][data-flow^="icmp ${H1} > ${H2} "]`)
    .filter({ hasText: 'fragmentation needed' });
  await expect(taken.locator('[data-col="route-mtu"]')).toHaveText('1500 (eth0) → 1400', { timeout: 15_000 });
  await expect(taken.locator('[data-col="mtu"]')).toHaveText('1400');
  await expect(taken).toContainText(`fragmentation needed at ${ROUTERS[1]}: MTU 1400`);
  await expect(taken.getByTestId('black-hole')).toHaveCount(0);

  // Now the errors reach the capture (AF_PACKET sees them first) but never the kernel.
  h1('nft', 'add', 'table', 'inet', 'bh');
  h1('nft', 'add', 'chain', 'inet', 'bh', 'in', '{ type filter hook input priority 0; }');
  h1(
    'nft',
    'add',
    'rule',
    'inet',
    'bh',
    'in',
    'icmp',
    'type',
    'destination-unreachable',
    'icmp',
    'code',
    'frag-needed',
    'drop',
  );
  try {
    pingTooBig(R3_LEFT);
    const hole = page.locator(`[data-testid="problem-row"][data-flow^="icmp ${H1} > ${R3_LEFT} "]`);
    await expect(hole.getByTestId('black-hole')).toContainText('Path-MTU black hole', { timeout: 15_000 });
    await expect(hole.locator('[data-col="route-mtu"]')).toHaveText('1500 (eth0) → no route MTU');
    await page.screenshot({ path: 'artifacts/screenshots/problems-light.png' });
  } finally {
    h1('nft', 'delete', 'table', 'inet', 'bh');
  }
});

test('Neighbours flags a rogue RA after learning; its evidence selects the packet', async () => {
  const page = await openApp();
  await page.getByTestId('tab-neighbours').click();
  await page.getByTestId('learn-seconds').fill('2');
  await page.getByTestId('learn-again').click();
  const ra = (src: string, prefix: string) =>
    chain.ns(
      chain.names.r1,
      'python3',
      ND_SENDER,
      'left',
      JSON.stringify([{ kind: 'ra', src, prefixes: [prefix] }]),
    );
  ra('fe80::1', '2001:db8:1::/64');
  const legit = page.locator('[data-testid="router-row"][data-address="fe80::1"]');
  await expect(legit).toBeVisible({ timeout: 15_000 });
  await expect(legit).not.toContainText('new');
  // Past the learning period: a router nobody has seen before.
  await page.waitForTimeout(2500);
  ra('fe80::bad', '2001:db8:bad::/64');
  const finding = page.locator(
    '[data-testid="finding-row"][data-kind="new-router"][data-subject="fe80::bad"]',
  );
  await expect(finding).toContainText('2001:db8:bad::/64', { timeout: 15_000 });
  await page.screenshot({ path: 'artifacts/screenshots/neighbours-light.png' });
  await finding.getByTestId('finding-evidence').click();
  await expect(page.getByTestId('tab-packets')).toHaveAttribute('aria-selected', 'true');
  const selected = page.locator('[data-testid="packet-row"][aria-selected="true"]');
  await expect(selected).toHaveCount(1);
  await expect(selected).toContainText('fe80::bad');
  await expect(selected).toContainText(/Router Advertisement/i);
});

test('a burst of unreachables fires a rule once per cool-down, listed in Alerts, with a notification', async () => {
  const page = await openApp({
    permissions: ['notifications'],
    colorScheme: 'dark',
    beforeGoto: async (p) => {
      await p.addInitScript(() => {
        // The real Notification, observed: every construction is recorded.
        const Real = window.Notification;
        const seen: { title: string; body: string }[] = [];
        (window as unknown as { shownNotifications: typeof seen }).shownNotifications = seen;
        class Observed extends Real {
          constructor(title: string, options?: NotificationOptions) {
            super(title, options);
            seen.push({ title, body: options?.body ?? '' });
          }
        }
        window.Notification = Observed;
      });
    },
  });
  await page.getByTestId('tab-alerts').click();
  await page.getByTestId('rule-add').click();
  const input = page.getByTestId('rule-input').last();
  // A half-written rule: the error points at the bad part, and nothing is saved.
  await input.fill('icmp.type == 3 && count > 5');
  await expect(page.getByTestId('rule-error')).toContainText('expected a field');
  await expect(page.getByTestId('rule-error').locator('pre')).toHaveText(
    `icmp.type == 3 && count > 5\n${' '.repeat(17)}^`,
  );
  await page.getByTestId('rules-save').click();
  await expect(page.getByTestId('rules-status')).toContainText('Not saved');
  await input.fill('icmp.type == 3 && icmp.code == 3 count > 5 for 10s; cooldown 60s; name unreachables');
  await expect(page.getByTestId('rule-error')).toHaveCount(0);
  await page.getByTestId('rules-save').click();
  await expect(page.getByTestId('rules-status')).toContainText(`Saved to ${tmp}`);

  const burst = () =>
    h1(
      'python3',
      '-c',
      `import socket,time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('${H1}', 40555))
for _ in range(20): s.sendto(b'x', ('${H2}', 9)); time.sleep(0.01)`,
    );
  burst();
  burst();
  // Both bursts are in (the flow's 40 errors), within one cool-down: one firing, one notification.
  await page.getByTestId('tab-problems').click();
  const flow = page.locator(`[data-testid="problem-row"][data-flow="udp ${H1}:40555 > ${H2}:9"]`);
  await expect(flow.locator('[data-col="count"]')).toHaveText('40', { timeout: 15_000 });
  await page.getByTestId('tab-alerts').click();
  await expect(page.locator('[data-testid="firing-row"][data-rule="unreachables"]')).toHaveCount(1);
  await expect(page.locator('[data-testid="firing-row"] [data-col="figures"]')).toContainText('count 6 > 5');
  const shown = await page.evaluate(
    () => (window as unknown as { shownNotifications: { title: string; body: string }[] }).shownNotifications,
  );
  expect(shown).toEqual([
    { title: 'icmpcap alert: unreachables', body: expect.stringContaining('count 6 > 5') },
  ]);
  await page.screenshot({ path: 'artifacts/screenshots/alerts-dark.png' });
});

test('a rule being written survives the rules arriving from elsewhere (another window saves)', async () => {
  const mine = await openApp();
  await mine.getByTestId('tab-alerts').click();
  await rulesRead(mine);
  const before = await mine.getByTestId('rule-input').count();
  await mine.getByTestId('rule-add').click();
  const draft = mine.getByTestId('rule-input').last();
  await draft.fill('icmp.type == 11 count > 3 for 5s; name my draft');
  await expect(mine.getByTestId('rule-error')).toHaveCount(0);

  // Another window saves the file meanwhile: its push reaches this window.
  const other = await openApp();
  await other.getByTestId('tab-alerts').click();
  await rulesRead(other);
  await expect(other.getByTestId('rule-input')).toHaveCount(before);
  await other.getByTestId('rule-add').click();
  await other.getByTestId('rule-input').last().fill('icmp.type == 5 count > 1 for 1s; name theirs');
  await other.getByTestId('rules-save').click();
  await expect(other.getByTestId('rules-status')).toContainText('Saved to');

  // The draft is still there, and the window says the file changed under it.
  await expect(mine.getByTestId('rule-input')).toHaveCount(before + 1);
  await expect(mine.getByTestId('rule-input').last()).toHaveValue(
    'icmp.type == 11 count > 3 for 5s; name my draft',
  );
  await expect(mine.getByTestId('rules-status')).toContainText('changed elsewhere');
  // Saving here replaces the file with what this window shows; the other window follows.
  await mine.getByTestId('rules-save').click();
  await expect(mine.getByTestId('rules-status')).toContainText('Saved to');
  await expect(other.getByTestId('rule-input')).toHaveCount(before + 1);
  await expect(other.getByTestId('rule-input').last()).toHaveValue(
    'icmp.type == 11 count > 3 for 5s; name my draft',
  );
  await other.close();
  await mine.close();
});

test('a rule being written survives a visit to other views; Save then writes it, Discard drops it', async () => {
  const page = await openApp();
  await page.getByTestId('tab-alerts').click();
  await rulesRead(page);
  const before = await page.getByTestId('rule-input').count();
  const draft = 'icmp.type == 13 count > 1000 for 5s; name kept draft';
  await page.getByTestId('rule-add').click();
  await page.getByTestId('rule-input').last().fill(draft);
  await expect(page.getByTestId('rule-error')).toHaveCount(0);

  // Away (the Alerts view is gone from the page, not hidden) and back: the draft is as it was left.
  await page.getByTestId('tab-packets').click();
  await expect(page.getByRole('region', { name: 'Alert rules' })).toHaveCount(0);
  await page.getByTestId('tab-peers').click();
  await page.getByTestId('tab-alerts').click();
  await rulesRead(page);
  await expect(page.getByTestId('rule-input')).toHaveCount(before + 1);
  await expect(page.getByTestId('rule-input').last()).toHaveValue(draft);

  await page.getByTestId('rules-save').click();
  await expect(page.getByTestId('rules-status')).toContainText(`Saved to ${tmp}`);
  const file = join(tmp, 'xdg_config_home', 'icmpcap', 'alerts.conf');
  expect(readFileSync(file, 'utf8')).toContain(draft);

  // Another one, thrown away after a visit elsewhere: the list is the file's again, and the file unchanged.
  await page.getByTestId('rule-add').click();
  await page.getByTestId('rule-input').last().fill('icmp.type == 14 count > 1000 for 5s; name thrown away');
  await page.getByTestId('tab-packets').click();
  await page.getByTestId('tab-alerts').click();
  await expect(page.getByTestId('rule-input')).toHaveCount(before + 2);
  await page.getByTestId('rules-discard').click();
  await expect(page.getByTestId('rule-input')).toHaveCount(before + 1);
  await expect(page.getByTestId('rule-input').last()).toHaveValue(draft);
  await expect(page.getByTestId('rules-discard')).toHaveCount(0);
  expect(readFileSync(file, 'utf8')).not.toContain('thrown away');

  // A new window reads the saved rule from the file.
  const other = await openApp();
  await other.getByTestId('tab-alerts').click();
  await rulesRead(other);
  await expect(other.getByTestId('rule-input')).toHaveCount(before + 1);
  await expect(other.getByTestId('rule-input').last()).toHaveValue(draft);
  await other.close();
  await page.close();
});
