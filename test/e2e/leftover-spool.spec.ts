/**
 * A capture left behind by a crashed icmpcap: when the app opens it offers it; Open makes it the current
 * capture (every packet in the table, to export as any capture), and the prompt goes away.
 */
import { expect, test } from '@playwright/test';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeRecord } from '../../electron/core/files/packet.js';
import { PcapngSpoolWriter } from '../../electron/core/files/spool.js';
import { ipv4Icmp } from '../../electron/core/files/testing/packets.js';
import { type NetnsPair, createNetnsPair } from '../support/netns.js';
import { type ServedApp, serveInNetns } from '../support/serve.js';

let net: NetnsPair;
let app: ServedApp | undefined;
let cache: string;
let leftover = '';
const savedCache = process.env.XDG_CACHE_HOME;

test.beforeAll(async () => {
  cache = mkdtempSync(join(tmpdir(), 'icmpcap-e2e-spool-'));
  // Started as root, icmpcap serves as the account icmpcap; a cache folder that account may write
  // (XDG_CACHE_HOME) stays its cache. A private one: the account's own folder (/var/lib/icmpcap/home/icmpcap)
  // holds the spools every other icmpcap on this machine left behind (any killed serve), and the prompt offers
  // the newest.
  const spoolDir = join(cache, 'icmpcap', 'spool');
  mkdirSync(spoolDir, { recursive: true });
  // The spool of a process that is gone: three echo requests.
  const deadPid = spawnSync('true').pid;
  leftover = join(spoolDir, `capture-20260101-000000-${deadPid}-0000.pcapng`);
  const writer = PcapngSpoolWriter.create(leftover, {
    application: 'icmpcap test',
  });
  writer.interfaceId(1, 'eth0');
  const out = new Uint8Array(4096);
  let at = 0;
  for (let seq = 1; seq <= 3; seq++) {
    const packet = ipv4Icmp({ seq });
    at += encodeRecord(
      packet,
      { tsNs: 1_767_225_600_000_000_000n + BigInt(seq), ifindex: 1, dir: 0, origLen: packet.length },
      out,
      at,
    )!;
  }
  writer.append(out.buffer, 0, at);
  writer.close();
  execFileSync('chown', ['-R', 'icmpcap:icmpcap', cache]);
  process.env.XDG_CACHE_HOME = cache;
  net = createNetnsPair('spool');
  app = await serveInNetns(net.a, ['--no-start']);
});

test.afterAll(async () => {
  await app?.close();
  net?.destroy();
  if (savedCache === undefined) delete process.env.XDG_CACHE_HOME;
  else process.env.XDG_CACHE_HOME = savedCache;
  rmSync(cache, { recursive: true, force: true });
  rmSync(leftover, { force: true });
});

test('offers a capture left behind by a crash and opens it', async () => {
  const page = await app!.browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(app!.url);
  const prompt = page.getByTestId('leftover-spools');
  await expect(prompt).toContainText('holds 3 packets');
  await page.getByTestId('spool-open').click();
  await expect(prompt).toBeHidden();
  await expect(page.getByTestId('packet-row')).toHaveCount(3);
  await expect(page.getByTestId('status-state')).toHaveText('stopped');
});
