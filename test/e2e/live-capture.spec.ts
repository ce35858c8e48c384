/**
 * End to end with real packets: the service in browser mode inside one namespace, chromium (also inside
 * it, so 127.0.0.1 is the service's), and exactly N echo requests from the other namespace. The table
 * must show exactly N requests in and N replies out, with the right addresses, types, ids and seqs.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium, expect, test } from '@playwright/test';
import { CHROMIUM_ARGS } from '../../playwright.config.js';
import { type NetnsPair, createNetnsPair } from '../support/netns.js';

const N = 5;
const ID4 = 4660;
const ID6 = 4661;

let net: NetnsPair;
let server: ChildProcess | undefined;
let browser: Browser | undefined;
let tmp: string;
let url: string;

function startServer(ns: string, iface: string): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, 'bin/icmpcap.mjs', 'serve', '-i', iface], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`icmpcap serve did not start:\n${out}`)), 20_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /serving on (http:\/\/\S+)/.exec(out);
      if (m && /capturing with|not capturing/.test(out)) {
        clearTimeout(timer);
        if (/not capturing/.test(out)) reject(new Error(`icmpcap serve is not capturing:\n${out}`));
        else resolve({ proc, url: m[1]! });
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code) => reject(new Error(`icmpcap serve exited with ${code}:\n${out}`)));
  });
}

test.beforeAll(async () => {
  net = createNetnsPair('e2e');
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-e2e-'));
  const wrapper = join(tmp, 'chromium-in-netns');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${net.a} /usr/bin/chromium "$@"\n`);
  chmodSync(wrapper, 0o755);
  const started = await startServer(net.a, net.ifA);
  server = started.proc;
  url = started.url;
  browser = await chromium.launch({ executablePath: wrapper, args: CHROMIUM_ARGS });
});

test.afterAll(async () => {
  await browser?.close().catch(() => undefined);
  if (server && server.exitCode === null) {
    server.kill('SIGINT');
    await new Promise((r) => server!.once('exit', r));
  }
  net?.destroy();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
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
  const page = await browser!.newPage({ viewport: { width: 1400, height: 1400 } });
  await page.goto(url);
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
