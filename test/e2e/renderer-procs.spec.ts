/**
 * Processes in the UI, against the real service (started as root, it runs as an unprivileged account) with
 * a real sender: a Python process of that account pings through an ICMP socket in the capture's namespace.
 * The table's Process column names it on its requests and replies; the Processes view lists it with its pid,
 * and a click there filters the packet table to `icmpcap.proc.pid == PID`.
 */
import { execFileSync } from 'node:child_process';
import { expect, test } from '@playwright/test';
import { lookupAccount, SYSTEM_ACCOUNT } from '../../electron/core/privilege.js';
import { type NetnsPair, createNetnsPair } from '../support/netns.js';
import { type ServedApp, openCheckedPage, serveInNetns } from '../support/serve.js';

const SENDER = `
import os, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
for seq in range(4):
    s.sendto(bytes([8, 0, 0, 0, 0, 0, 0, seq]) + b'icmpcap!', (sys.argv[1], 0))
    time.sleep(0.3)
time.sleep(0.5)
print(os.getpid())
`;

let net: NetnsPair;
let app: ServedApp | undefined;
let pid = 0;

test.beforeAll(async () => {
  net = createNetnsPair('pr');
  net.exec(net.a, ['sysctl', '-q', '-w', 'net.ipv4.ping_group_range=0 2147483647']);
  app = await serveInNetns(net.a, ['-i', net.ifA]);
  const account = lookupAccount(process.env.SUDO_USER ?? SYSTEM_ACCOUNT)!;
  pid = Number(
    execFileSync(
      'ip',
      [
        'netns',
        'exec',
        net.a,
        'setpriv',
        `--reuid=${account.uid}`,
        `--regid=${account.gid}`,
        '--clear-groups',
      ].concat(['/usr/bin/python3', '-c', SENDER, net.v4.b]),
      { encoding: 'utf8' },
    ).trim(),
  );
});

const problems: string[] = [];
test.afterEach(() => expect(problems.splice(0)).toEqual([]));

test.afterAll(async () => {
  await app?.close();
  net?.destroy();
});

test('the Process column and the Processes view name the sender; a click filters to it', async () => {
  const page = await openCheckedPage(app!, problems);
  const cells = page.locator('[data-testid="packet-row"] [data-col="proc"]');
  await expect(cells.filter({ hasText: `python3 (${pid})` })).toHaveCount(8);
  await page.getByTestId('tab-processes').click();
  const row = page.locator(`[data-testid="proc-row"][data-pid="${pid}"]`);
  await expect(row).toContainText('python3');
  await expect(row.locator('td').nth(5)).toHaveText('4');
  await expect(row.locator('td').nth(6)).toHaveText('4');
  await row.getByRole('button').click();
  await expect(page.getByTestId('filter-input')).toHaveValue(`icmpcap.proc.pid == ${pid}`);
  await expect(page.getByTestId('packet-row')).toHaveCount(8);
  await expect(cells.filter({ hasText: `python3 (${pid})` })).toHaveCount(8);
});
