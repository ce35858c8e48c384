/**
 * Remote agents in one window. Two `icmpcap serve` agents in namespaces of their own, both HTTPS on
 * their non-loopback address (self-signed certificates, pinned on first use), on a bridge in a hub
 * namespace where the viewing service and chromium run. The hub pings both, so each agent sees the
 * same remote peer (the hub): the all-hosts view must show it as two rows, one per host. Stopping an
 * agent greys it ("unreachable since …") without harm; restarted, it comes back. An agent that comes
 * back with another certificate is refused with both fingerprints until the user accepts it. A slow
 * host's answers that come after a switch to another host are not shown for that one.
 */
import { type Locator, type Page, type WebSocketRoute, expect, test } from '@playwright/test';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { type Agent, type Star, accountDir, createStar, startAgent, tokenFile } from '../support/agents.js';
import { type ServedApp, openCheckedPage, serveInNetns } from '../support/serve.js';

const N = 5;
const PORT = 21000 + (process.pid % 20000);
const TOKENS = ['alpha-agent-token-0123456789', 'beta-agent-token-0123456789ab'];
const NAMES = ['alpha', 'beta'];

test.describe.configure({ mode: 'serial' });

let star: Star;
let hub: ServedApp | undefined;
const agents: (Agent | undefined)[] = [];
const dirs: string[] = [];
const saved = { config: process.env.XDG_CONFIG_HOME, cache: process.env.XDG_CACHE_HOME };

function dir(prefix: string): string {
  const d = accountDir(prefix);
  dirs.push(d);
  return d;
}

const agentDirs: { config: string; cache: string; token: string }[] = [];

function startNth(i: number, config = agentDirs[i]!.config): Promise<Agent> {
  const leaf = star.leaves[i]!;
  return startAgent(
    leaf.ns,
    ['-i', leaf.ifname, '--listen', leaf.v4, '--port', String(PORT), '--token-file', agentDirs[i]!.token],
    { XDG_CONFIG_HOME: config, XDG_CACHE_HOME: agentDirs[i]!.cache },
    TOKENS[i]!,
  );
}

function pingLeaf(i: number): void {
  star.exec(star.hub, ['ping', '-c', String(N), '-i', '0.05', '-W', '2', star.leaves[i]!.v4]);
}

test.beforeAll(async () => {
  star = createStar('rh', ['198.51.100.11', '198.51.100.22']);
  for (let i = 0; i < 2; i++) {
    const config = dir('icmpcap-e2e-rh-config-');
    agentDirs.push({ config, cache: dir('icmpcap-e2e-rh-cache-'), token: tokenFile(config, TOKENS[i]!) });
    agents[i] = await startNth(i);
    expect(agents[i]!.url).toBe(`https://${star.leaves[i]!.v4}:${PORT}/`);
    expect(agents[i]!.fingerprint).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  }
  // The viewing service keeps its pins in a config folder of this test's own.
  process.env.XDG_CONFIG_HOME = dir('icmpcap-e2e-rh-hub-config-');
  process.env.XDG_CACHE_HOME = dir('icmpcap-e2e-rh-hub-cache-');
  hub = await serveInNetns(star.hub, ['-i', 'br0']);
});

const problems: string[] = [];
test.afterEach(() => {
  const seen = problems.splice(0);
  expect(seen).toEqual([]);
});

test.afterAll(async () => {
  await hub?.close();
  for (const a of agents) await a?.stop();
  star?.destroy();
  for (const [name, value] of [
    ['XDG_CONFIG_HOME', saved.config],
    ['XDG_CACHE_HOME', saved.cache],
  ] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function addHost(page: Page, i: number): Promise<void> {
  await page.getByTestId('host-add').click();
  // The address as the agent printed it, token included: the form splits it off.
  await page.getByTestId('host-url').fill(`${agents[i]!.url}#token=${TOKENS[i]}`);
  await page.getByTestId('host-name').fill(NAMES[i]!);
  await page.getByTestId('host-submit').click();
  await expect(page.getByTestId('host-form')).toHaveCount(0);
}

const chip = (page: Page, i: number) => page.getByTestId('host-chip').filter({ hasText: NAMES[i]! });

/** The all-hosts rows as [host, peer, requests, replies]. */
function mergedRows(page: Page): Promise<string[][]> {
  return page
    .getByTestId('all-peers-row')
    .evaluateAll((rows) =>
      rows.map((r) =>
        ['all-peers-host', 'all-peers-peer', 'all-peers-requests', 'all-peers-replies'].map(
          (id) => r.querySelector(`[data-testid="${id}"]`)?.textContent?.trim() ?? '',
        ),
      ),
    );
}

function sorted(rows: string[][]): string[][] {
  return [...rows].sort((a, b) => a.join('|').localeCompare(b.join('|')));
}

test('two agents in one window: each host shown, peers merged per host, a stopped one greyed and back', async () => {
  test.setTimeout(180_000);
  const page = await openCheckedPage(hub!, problems);
  await expect(page.getByTestId('status-state')).toHaveText('running');
  for (const i of [0, 1]) await addHost(page, i);
  for (const i of [0, 1]) await expect(chip(page, i)).toHaveAttribute('data-state', 'connected');
  // Tokens went in once and are not shown back.
  expect(await page.content()).not.toContain(TOKENS[0]!);
  expect(await page.content()).not.toContain(TOKENS[1]!);

  pingLeaf(0);
  pingLeaf(1);

  // Each host's own capture: its table, its peers.
  await chip(page, 0).getByTestId('host-select').click();
  await expect(page.getByTestId('status-count')).toHaveText(`${2 * N} packets`);
  await expect(page.getByTestId('packet-row')).toHaveCount(2 * N);
  for (const text of await page.getByTestId('packet-row').allTextContents()) {
    expect(text).toContain('198.51.100.11');
    expect(text).toContain(star.hubV4);
  }
  await page.getByTestId('tab-peers').click();
  await expect(page.locator('#panel-peers tbody tr')).toHaveCount(1);
  await expect(page.locator('#panel-peers tbody tr')).toContainText(star.hubV4);

  await chip(page, 1).getByTestId('host-select').click();
  await expect(page.locator('#panel-peers tbody tr')).toHaveCount(1);
  await expect(page.locator('#panel-peers tbody tr')).toContainText(star.hubV4);
  await page.getByTestId('tab-packets').click();
  await expect(page.getByTestId('status-count')).toHaveText(`${2 * N} packets`);
  await expect(page.getByTestId('packet-row').first()).toContainText('198.51.100.22');

  // All hosts: the hub seen from alpha and from beta is two rows; this machine's two flows are its own.
  await page.getByTestId('tab-hosts').click();
  const expected = sorted([
    ['alpha', star.hubV4, String(N), String(N)],
    ['beta', star.hubV4, String(N), String(N)],
    ['this machine', '198.51.100.11', String(N), String(N)],
    ['this machine', '198.51.100.22', String(N), String(N)],
  ]);
  await expect.poll(async () => sorted(await mergedRows(page)), { timeout: 15_000 }).toEqual(expected);

  // Beta stops while shown: greyed, "unreachable since", the rest still works; it is retried.
  await chip(page, 1).getByTestId('host-select').click();
  await agents[1]!.stop();
  await expect(chip(page, 1)).toHaveAttribute('data-state', 'unreachable');
  await expect(chip(page, 1).getByTestId('host-note')).toContainText('unreachable since');
  await expect(page.getByTestId('connection-banner')).toContainText('Disconnected — reconnecting…');
  await expect(page.getByTestId('connection-hint')).toContainText('beta is unreachable since');
  await expect(page.locator('[data-testid="all-peers-row"][data-host="beta"]')).toHaveClass(/stale/);
  await expect(page.locator('[data-testid="all-peers-row"][data-host="alpha"]')).not.toHaveClass(/stale/);
  await expect(chip(page, 0)).toHaveAttribute('data-state', 'connected');

  // Back on the same port with the same token: connected again, its new capture shown.
  agents[1] = await startNth(1);
  await expect(chip(page, 1)).toHaveAttribute('data-state', 'connected', { timeout: 30_000 });
  await expect(page.getByTestId('connection-banner')).toHaveCount(0);
  pingLeaf(1);
  await expect
    .poll(async () => (await mergedRows(page)).filter((r) => r[0] === 'beta'), { timeout: 15_000 })
    .toEqual([['beta', star.hubV4, String(N), String(N)]]);
  await page.getByTestId('tab-packets').click();
  await expect(page.getByTestId('status-count')).toHaveText(`${2 * N} packets`);
});

test('an agent back with another certificate is refused, showing both fingerprints, until accepted', async () => {
  test.setTimeout(120_000);
  const page = await openCheckedPage(hub!, problems);
  // The hosts live in the service: the test before added them (the tests run in order).
  await expect(chip(page, 0)).toHaveAttribute('data-state', 'connected');
  const pinned = agents[0]!.fingerprint!;
  await agents[0]!.stop();
  // A new config folder: the agent makes a new self-signed certificate.
  agentDirs[0]!.config = dir('icmpcap-e2e-rh-config2-');
  agents[0] = await startNth(0);
  const presented = agents[0].fingerprint!;
  expect(presented).not.toBe(pinned);
  const refused = page.getByTestId('host-refused');
  await expect(refused).toContainText(`pinned SHA-256 ${pinned}`, { timeout: 30_000 });
  await expect(refused).toContainText(`now ${presented}`);
  await expect(refused).toContainText('Trust new certificate');
  await expect(chip(page, 0)).toHaveAttribute('data-state', 'refused');
  await expect(chip(page, 1)).toHaveAttribute('data-state', 'connected');
  await page.getByTestId('host-trust').click();
  await expect(chip(page, 0)).toHaveAttribute('data-state', 'connected');
  await expect(refused).toHaveCount(0);
  // The accepted fingerprint is the pin from now on.
  const pins = JSON.parse(
    readFileSync(join(process.env.XDG_CONFIG_HOME!, 'icmpcap', 'known-hosts.json'), 'utf8'),
  ) as Record<string, string>;
  expect(pins).toMatchObject({ [`198.51.100.11:${PORT}`]: presented });
});

test('a rule being written belongs to its host: not shown for another, nor saved to its alerts.conf', async () => {
  test.setTimeout(120_000);
  const page = await openCheckedPage(hub!, problems);
  // The hosts live in the service: the tests before added them (the tests run in order).
  for (const i of [0, 1]) await expect(chip(page, i)).toHaveAttribute('data-state', 'connected');
  const alertsConf = (i: number) => join(agentDirs[i]!.config, 'icmpcap', 'alerts.conf');
  const inputs = page.getByTestId('rule-input');
  /** Shows host i; its rules have been read once its own file's path shows. */
  async function show(i: number): Promise<void> {
    await chip(page, i).getByTestId('host-select').click();
    await expect(page.getByRole('region', { name: 'Alert rules' }).locator('h2')).toContainText(
      alertsConf(i),
    );
  }
  const draft = 'icmp.type == 13 count > 1000 for 5s; name alpha only';

  await page.getByTestId('tab-alerts').click();
  await show(0);
  await expect(inputs).toHaveCount(0);
  await page.getByTestId('rule-add').click();
  await inputs.last().fill(draft);

  // Beta shows its own (empty) rules, and its Save writes those, not alpha's draft.
  await show(1);
  await expect(inputs).toHaveCount(0);
  await page.getByTestId('rules-save').click();
  await expect(page.getByTestId('rules-status')).toContainText(`Saved to ${alertsConf(1)}`);
  expect(readFileSync(alertsConf(1), 'utf8')).not.toContain('alpha only');

  // Alpha again, by way of another view: its draft is there, and Save writes it to alpha's file only.
  await page.getByTestId('tab-packets').click();
  await chip(page, 0).getByTestId('host-select').click();
  await page.getByTestId('tab-alerts').click();
  await expect(page.getByRole('region', { name: 'Alert rules' }).locator('h2')).toContainText(alertsConf(0));
  await expect(inputs).toHaveCount(1);
  await expect(inputs.last()).toHaveValue(draft);
  await page.getByTestId('rules-save').click();
  await expect(page.getByTestId('rules-status')).toContainText(`Saved to ${alertsConf(0)}`);
  expect(readFileSync(alertsConf(0), 'utf8')).toContain(draft);
  expect(readFileSync(alertsConf(1), 'utf8')).not.toContain('alpha only');
});

/**
 * A slow host for one page: while `holding` names a host, the service's answers to what the page asked of
 * it wait until released, and so do this service's own events named `holdingEvent` and its own answers to
 * requests named `holdingReply`; everything else passes as it comes. It also records who was asked what,
 * and who answered what, and can drop the connection.
 */
function slowHost() {
  /** Host ids by name, from the host lists the service sends the page. */
  const ids = new Map<string, string>();
  /** Requests made of a host, by request id. */
  const asked = new Map<number, { host: string; method: string }>();
  /** Requests made of this service itself (not relayed to a host), by request id. */
  const own = new Map<number, string>();
  const held: { method: string; message: string }[] = [];
  const answered: { host: string; method: string }[] = [];
  const requested: { host: string; method: string }[] = [];
  let page: WebSocketRoute | null = null;
  let server: WebSocketRoute | null = null;
  const link = {
    /** The host (by name) whose answers are held; null: none. */
    holding: null as string | null,
    /** This service's own event (not a host's) held; null: none. */
    holdingEvent: null as string | null,
    /** This service's own answers (not a host's) to requests of this method held; null: none. */
    holdingReply: null as string | null,
    /** WebSocket connections the page made so far. */
    connections: 0,
    held,
    answered,
    requested,
    ids,
    route(ws: WebSocketRoute): void {
      page = ws;
      link.connections++;
      const toServer = ws.connectToServer();
      server = toServer;
      ws.onMessage((m) => {
        const text = String(m);
        // One-frame requests only: these are small.
        if (!text.startsWith('#')) {
          const r = JSON.parse(text) as {
            id: number;
            method: string;
            params?: { host?: string; method?: string };
          };
          if (r.method === 'hosts.request' && r.params?.host && r.params.method) {
            asked.set(r.id, { host: r.params.host, method: r.params.method });
            requested.push({ host: r.params.host, method: r.params.method });
          } else own.set(r.id, r.method);
        }
        toServer.send(m);
      });
      toServer.onMessage((m) => {
        const msg = JSON.parse(String(m)) as {
          id?: number;
          event?: string;
          data?: unknown;
          result?: unknown;
        };
        const list = msg.event === 'hosts' ? msg.data : msg.result;
        if (Array.isArray(list))
          for (const h of list as { id?: unknown; name?: unknown; url?: unknown }[])
            if (typeof h?.id === 'string' && typeof h.name === 'string' && typeof h.url === 'string')
              ids.set(h.name, h.id);
        if (msg.event !== undefined && msg.event === link.holdingEvent) {
          held.push({ method: `${msg.event} event`, message: String(m) });
          return;
        }
        const ownMethod = typeof msg.id === 'number' ? own.get(msg.id) : undefined;
        if (ownMethod !== undefined && ownMethod === link.holdingReply) {
          held.push({ method: ownMethod, message: String(m) });
          return;
        }
        const request = typeof msg.id === 'number' ? asked.get(msg.id) : undefined;
        if (request && link.holding !== null && request.host === ids.get(link.holding)) {
          held.push({ method: request.method, message: String(m) });
          return;
        }
        if (request) answered.push(request);
        ws.send(m);
      });
    },
    /** Passes what is held on to the page, in order; `next` (a host's name) is held from then on. */
    release(next: string | null = null): void {
      link.holding = next;
      link.holdingEvent = null;
      link.holdingReply = null;
      for (const h of held.splice(0)) page!.send(h.message);
    },
    /** The connection is lost (both ends closed): the page reconnects as after a network failure. */
    drop(): void {
      void page!.close();
      void server!.close();
    },
  };
  return link;
}

/** A page whose WebSocket goes through `slowHost()`, both hosts connected. */
async function openSlowPage(): Promise<{ link: ReturnType<typeof slowHost>; page: Page }> {
  const link = slowHost();
  const page = await openCheckedPage(hub!, problems, {
    beforeGoto: (p) => p.routeWebSocket(/\/ws$/, (ws) => link.route(ws)),
  });
  for (const i of [0, 1]) await expect(chip(page, i)).toHaveAttribute('data-state', 'connected');
  return { link, page };
}

/** Shows host `i` (named `name`) and waits until its hello has been answered since. */
/** This machine's packets shown (it has some). */
async function showLocalPackets(page: Page): Promise<void> {
  await page.getByTestId('host-local').click();
  await page.getByTestId('tab-packets').click();
  await expect(page.getByTestId('status-count')).not.toHaveText('0 packets');
}

/** A slow page showing this machine's packets, its export of them started with the job's events held. */
async function exportWithJobEventsHeld(): Promise<{
  link: ReturnType<typeof slowHost>;
  page: Page;
  job: Locator;
}> {
  const { link, page } = await openSlowPage();
  const job = page.getByTestId('job');
  await showLocalPackets(page);
  link.holdingEvent = 'job';
  await exportAllAsPcapng(page);
  await expect(job).toHaveAttribute('data-state', 'running');
  return { link, page, job };
}

/** Starts an export of every packet shown, as pcapng, through the Export dialog. */
async function exportAllAsPcapng(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Export…' }).click();
  const dialog = page.getByRole('dialog', { name: 'Export packets' });
  await dialog.getByTestId('export-scope-all').check();
  await dialog.getByTestId('export-format').selectOption('pcapng');
  await dialog.getByTestId('export-start').click();
}

async function switchTo(
  page: Page,
  link: ReturnType<typeof slowHost>,
  i: number,
  name: string,
): Promise<void> {
  const before = link.answered.length;
  await chip(page, i).getByTestId('host-select').click();
  const id = link.ids.get(name);
  await expect
    .poll(() => link.answered.slice(before).some((a) => a.host === id && a.method === 'hello'))
    .toBe(true);
}

test("a slow host's answers that come after a switch are not shown for the host shown then", async () => {
  test.setTimeout(120_000);
  const { link, page } = await openSlowPage();
  const rows = page.getByTestId('problem-row');
  const count = page.getByTestId('status-count');
  // A datagram to a closed port of alpha's: alpha answers port unreachable, a problem beta does not have.
  star.exec(star.hub, [
    'python3',
    '-c',
    `import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('${star.leaves[0]!.v4}', 9))`,
  ]);

  await page.getByTestId('tab-problems').click();
  await chip(page, 0).getByTestId('host-select').click();
  await expect(rows).toHaveCount(1);
  await expect(rows).toHaveAttribute('data-flow', new RegExp(star.leaves[0]!.v4.replaceAll('.', '\\.')));
  const alphaCount = await count.textContent();
  await chip(page, 1).getByTestId('host-select').click();
  await expect(rows).toHaveCount(0);
  const betaCount = await count.textContent();
  expect(betaCount).not.toBe(alphaCount);

  // Alpha again, slow now: what the window asks of it on the switch is answered only after the next one.
  link.holding = 'alpha';
  await chip(page, 0).getByTestId('host-select').click();
  const loaded = ['hello', 'problems.list', 'paths.list', 'neighbours.get', 'alerts.firings', 'alerts.rules'];
  await expect.poll(() => loaded.filter((m) => !link.held.some((h) => h.method === m))).toEqual([]);
  // A filter applied meanwhile goes to alpha too (alpha's problem matches it).
  const filter = page.getByTestId('filter-input');
  await filter.fill('icmp.type == 3');
  await filter.press('Enter');
  await expect.poll(() => link.held.some((h) => h.method === 'view.setFilter')).toBe(true);
  const before = link.answered.length;
  await chip(page, 1).getByTestId('host-select').click();
  const beta = link.ids.get('beta');
  const betaAnswered = () => link.answered.slice(before).filter((a) => a.host === beta);
  await expect.poll(() => loaded.filter((m) => !betaAnswered().some((a) => a.method === m))).toEqual([]);
  await expect(count).toHaveText(betaCount!);
  link.release();
  // Nothing comes from beta meanwhile (no traffic: no push): what shows now stays.
  await page.waitForTimeout(1500);
  await expect(chip(page, 1).getByTestId('host-select')).toHaveAttribute('aria-pressed', 'true');
  await expect(rows).toHaveCount(0);
  await expect(page.getByTestId('tab-problems').locator('.badge')).toHaveCount(0);
  await expect(count).toHaveText(betaCount!);
  // Beta's view is unfiltered: alpha's filter is not shown as applied there.
  await expect(page.getByTestId('status-view')).toHaveCount(0);
  await page.close();
});

test("the packet table's rows asked of a slow host before a switch are not shown for the host shown then", async () => {
  test.setTimeout(120_000);
  const { link, page } = await openSlowPage();
  const rows = page.getByTestId('packet-row');
  const count = page.getByTestId('status-count');
  const sources = () => rows.evaluateAll((list) => list.map((r) => r.textContent ?? ''));
  await page.getByTestId('tab-packets').click();
  await chip(page, 1).getByTestId('host-select').click();
  await expect(count).toHaveText(`${2 * N} packets`);
  // Alpha gets as many packets as beta (its port unreachable from the test before, one more, 4 pings) and
  // its view no filter: the switch to beta changes neither the table's count nor its view.
  await switchTo(page, link, 0, 'alpha');
  const applied = page.getByTestId('status-view');
  await expect(async () => {
    if (await applied.count()) await page.getByLabel('Clear filter').click();
    await expect(applied).toHaveCount(0, { timeout: 1000 });
  }).toPass();
  star.exec(star.hub, [
    'python3',
    '-c',
    `import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('${star.leaves[0]!.v4}', 9))`,
  ]);
  star.exec(star.hub, ['ping', '-c', String(N - 1), '-i', '0.05', '-W', '2', star.leaves[0]!.v4]);
  await expect(count).toHaveText(`${2 * N} packets`);
  await expect(rows).toHaveCount(2 * N);
  for (const text of await sources()) expect(text).toContain(star.leaves[0]!.v4);

  // Alpha slow now: the rows a smaller window asks of it are answered only after the switch to beta.
  link.holding = 'alpha';
  const size = page.viewportSize()!;
  await page.setViewportSize({ width: size.width, height: Math.round(size.height / 2) });
  await expect.poll(() => link.held.some((h) => h.method === 'view.rows')).toBe(true);
  await switchTo(page, link, 1, 'beta');
  // Alpha's rows come now, while beta's (asked only then: one request at a time) are held in turn.
  link.release('beta');
  await page.waitForTimeout(1000);
  const alpha = star.leaves[0]!.v4;
  expect((await sources()).filter((t) => t.includes(alpha))).toEqual([]);
  await expect.poll(() => link.held.some((h) => h.method === 'view.rows')).toBe(true);
  link.release();
  await page.waitForTimeout(1500);
  await expect(chip(page, 1).getByTestId('host-select')).toHaveAttribute('aria-pressed', 'true');
  await expect(count).toHaveText(`${2 * N} packets`);
  // Beta's packets only: none of alpha's rows.
  const shown = await sources();
  expect(shown.length).toBeGreaterThan(0);
  expect(shown.filter((t) => !t.includes(star.leaves[1]!.v4))).toEqual([]);
  await page.close();
});

test("a switch of host clears the old host's rows at once: none shown while the new host's answers are held", async () => {
  test.setTimeout(120_000);
  const { link, page } = await openSlowPage();
  const rows = page.getByTestId('packet-row');
  const sources = () => rows.evaluateAll((list) => list.map((r) => r.textContent ?? ''));
  const [alpha, beta] = [star.leaves[0]!.v4, star.leaves[1]!.v4];
  await page.getByTestId('tab-packets').click();
  await switchTo(page, link, 0, 'alpha');
  await expect.poll(async () => (await sources()).filter((t) => t.includes(alpha)).length).toBeGreaterThan(0);

  // Beta slow now: until it answers, the table is empty, not alpha's.
  link.holding = 'beta';
  await chip(page, 1).getByTestId('host-select').click();
  await expect.poll(() => link.held.some((h) => h.method === 'hello')).toBe(true);
  await expect(rows).toHaveCount(0);
  await page.waitForTimeout(1000);
  expect((await sources()).filter((t) => t.includes(alpha))).toEqual([]);
  link.release();
  await expect.poll(async () => (await sources()).length).toBeGreaterThan(0);
  expect((await sources()).filter((t) => !t.includes(beta))).toEqual([]);
  await page.close();
});

test("after a lost connection, a switch of host is a first connection: the host before's filter does not go to the next", async () => {
  test.setTimeout(120_000);
  const { link, page } = await openSlowPage();
  const applied = page.getByTestId('status-view');
  const filter = page.getByTestId('filter-input');
  await page.getByTestId('tab-packets').click();
  await switchTo(page, link, 0, 'alpha');
  await expect(applied).toHaveCount(0);
  await filter.fill('icmp.type == 8');
  await filter.press('Enter');
  await expect(applied).toHaveCount(1);

  // The connection is lost and comes back: alpha's capture as before, its filter still applied.
  const before = link.answered.length;
  link.drop();
  await expect.poll(() => link.connections).toBe(2);
  const alphaId = link.ids.get('alpha');
  await expect
    .poll(() => link.answered.slice(before).some((a) => a.host === alphaId && a.method === 'hello'))
    .toBe(true);
  await expect(applied).toHaveCount(1);

  // Beta, whose view has no filter: it stays so.
  const asked = link.requested.length;
  await switchTo(page, link, 1, 'beta');
  await page.waitForTimeout(1500);
  const betaId = link.ids.get('beta');
  expect(
    link.requested.slice(asked).filter((r) => r.host === betaId && r.method === 'view.setFilter'),
  ).toEqual([]);
  await expect(applied).toHaveCount(0);

  // Alpha keeps its own; cleared for the tests after.
  await switchTo(page, link, 0, 'alpha');
  await expect(applied).toHaveCount(1);
  await page.getByLabel('Clear filter').click();
  await expect(applied).toHaveCount(0);
  await page.close();
});

test('a job belongs to the host it was started on: not shown for another, followed to its end meanwhile', async () => {
  test.setTimeout(120_000);
  // This machine's export, its progress held: it shows as running.
  const { link, page, job } = await exportWithJobEventsHeld();
  await expect.poll(() => link.held.some((h) => h.method === 'job event')).toBe(true);

  // Alpha: this machine's job is not shown for it (nor its Cancel, which would go to alpha).
  await switchTo(page, link, 0, 'alpha');
  await expect(job).toHaveCount(0);
  // The job ends while alpha is shown: its file is downloaded all the same.
  const download = page.waitForEvent('download', { timeout: 30_000 });
  link.release();
  const file = await download;
  expect(file.suggestedFilename()).toMatch(/^icmpcap-.*\.pcapng$/);
  await expect(job).toHaveCount(0);

  // This machine again: its job, done.
  await page.getByTestId('host-local').click();
  await expect(job).toHaveCount(1);
  await expect(job).toHaveAttribute('data-state', 'done');
  await page.close();
});

test('an export whose end comes before the reply that starts it is downloaded all the same, once', async () => {
  test.setTimeout(120_000);
  const { link, page } = await openSlowPage();
  const job = page.getByTestId('job');
  const downloads: string[] = [];
  page.on('download', (d) => downloads.push(d.suggestedFilename()));
  await showLocalPackets(page);

  // The service's answer to export.start held: the job's events, its end among them, come before it.
  link.holdingReply = 'export.start';
  await exportAllAsPcapng(page);
  await expect.poll(() => link.held.some((h) => h.method === 'export.start')).toBe(true);
  await expect(job).toHaveAttribute('data-state', 'done', { timeout: 20_000 });
  expect(downloads).toEqual([]);

  // The answer comes now: the file is downloaded, and only once.
  const download = page.waitForEvent('download', { timeout: 15_000 });
  link.release();
  expect((await download).suggestedFilename()).toMatch(/^icmpcap-.*\.pcapng$/);
  await page.waitForTimeout(1500);
  expect(downloads).toHaveLength(1);
  await expect(job).toHaveCount(1);
  await page.close();
});

test('an export that ends while the page is disconnected shows its end once back, and is downloaded', async () => {
  test.setTimeout(120_000);
  // The job's events held, its end among them: then the connection is lost, and they with it.
  const { link, page, job } = await exportWithJobEventsHeld();
  await expect.poll(() => link.held.some((h) => h.message.includes('"state":"done"'))).toBe(true);
  const download = page.waitForEvent('download', { timeout: 30_000 });
  const connections = link.connections;
  link.holdingEvent = null;
  link.held.splice(0);
  link.drop();
  await expect.poll(() => link.connections).toBeGreaterThan(connections);

  // Back: the service's hello tells how the job ended (no event will): done, and its file downloaded.
  await expect(job).toHaveAttribute('data-state', 'done', { timeout: 20_000 });
  expect((await download).suggestedFilename()).toMatch(/^icmpcap-.*\.pcapng$/);
  await page.close();
});

test("a switch of host shows none of the host before's counts while the new host's answers are held", async () => {
  test.setTimeout(120_000);
  const { link, page } = await openSlowPage();
  const count = page.getByTestId('status-count');
  const rows = page.getByTestId('packet-row');
  const scroller = page.getByTestId('scroller');
  const packets = async () => Number((await count.textContent())!.replace(/\D/g, ''));
  await page.getByTestId('tab-packets').click();
  await switchTo(page, link, 1, 'beta');
  await expect(count).toHaveText(/^[\d,]+ packets$/);
  const betaCount = (await count.textContent())!;

  // Alpha, with more packets than beta.
  await switchTo(page, link, 0, 'alpha');
  await expect(count).toHaveText(/^[\d,]+ packets$/);
  const before = await packets();
  pingLeaf(0);
  await expect(count).toHaveText(`${(before + 2 * N).toLocaleString()} packets`);
  const alphaCount = (await count.textContent())!;
  expect(alphaCount).not.toBe(betaCount);
  await expect(rows.first()).toBeVisible();
  const alphaRows = (await scroller.getAttribute('aria-rowcount'))!;
  expect(Number(alphaRows)).toBeGreaterThan(0);
  // Alpha's peers counted on the Peers tab.
  const peersBadge = page.getByTestId('tab-peers').locator('.badge');
  await expect(peersBadge).toHaveText(/^\d+$/);

  // Beta slow now: until it answers, the window waits for it, and shows none of alpha's counts.
  link.holding = 'beta';
  await chip(page, 1).getByTestId('host-select').click();
  await expect.poll(() => link.held.some((h) => h.method === 'hello')).toBe(true);
  await expect(peersBadge).toHaveCount(0);
  await expect(page.locator('body')).not.toContainText(alphaCount);
  await expect(scroller).toHaveAttribute('aria-rowcount', '0');
  await expect(page.getByTestId('status-waiting')).toHaveText('waiting for beta…');
  await expect(page.getByTestId('table-empty')).toContainText('Waiting for beta');
  await page.waitForTimeout(1000);
  await expect(page.locator('body')).not.toContainText(alphaCount, { timeout: 100 });
  await expect(scroller).toHaveAttribute('aria-rowcount', '0', { timeout: 100 });
  await expect(peersBadge).toHaveCount(0, { timeout: 100 });

  // Beta answers: its own count and rows.
  link.release();
  await expect(count).toHaveText(betaCount);
  await expect(page.getByTestId('status-waiting')).toHaveCount(0);
  await expect(page.getByTestId('table-empty')).toHaveCount(0);
  await expect(rows.first()).toContainText(star.leaves[1]!.v4);
  await page.close();
});
