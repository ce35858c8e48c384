/**
 * test/support/serve.ts, which the e2e specs start `icmpcap serve` and chromium with: whatever fails after the
 * service started (the browser does not launch, the service does not capture), it leaves no process running in
 * the namespace and no folder behind. chromium.launch is replaced here, so no browser runs.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import type * as Playwright from '@playwright/test';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

const launch = vi.hoisted(() => vi.fn());
vi.mock('@playwright/test', async (importOriginal) => ({
  ...(await importOriginal<typeof Playwright>()),
  chromium: { launch },
}));
const { serveInNetns } = await import('../support/serve.js');

const canRun =
  process.getuid?.() === 0 && spawnSync('ip', ['netns', 'list'], { stdio: 'ignore' }).status === 0;
const ns = `icmpcap-s-${process.pid % 100000}`;

/** The processes in the namespace (`ip netns pids`). */
function pidsIn(name: string): number[] {
  const r = spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8' });
  return r.stdout.split(/\s+/).filter(Boolean).map(Number);
}

/** Waits for the namespace to hold no process, up to `ms`; returns what is still there. */
async function emptied(name: string, ms = 10_000): Promise<number[]> {
  const end = Date.now() + ms;
  while (pidsIn(name).length && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  return pidsIn(name);
}

describe.skipIf(!canRun)('serveInNetns (test/support/serve.ts)', () => {
  beforeAll(() => {
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); // an earlier run's, same pid
    spawnSync('ip', ['netns', 'add', ns], { stdio: 'ignore' });
    spawnSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up'], { stdio: 'ignore' });
  });
  beforeEach(() => launch.mockReset());
  afterEach(() => {
    // Whatever a failed case left: the processes this test started, in its own namespace.
    for (const pid of pidsIn(ns)) spawnSync('kill', ['-KILL', String(pid)], { stdio: 'ignore' });
  });
  afterAll(() => {
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  });

  it('stops icmpcap serve and removes its folder when the browser does not launch', async () => {
    let wrapper = '';
    launch.mockImplementationOnce((opts: { executablePath: string }) => {
      wrapper = opts.executablePath;
      expect(pidsIn(ns)).not.toEqual([]); // serve is running when the browser is launched
      return Promise.reject(new Error('chromium: no display (launch failed on purpose)'));
    });
    await expect(serveInNetns(ns, ['--port', '0', '--no-start'])).rejects.toThrow(/launch failed on purpose/);
    expect(launch).toHaveBeenCalledTimes(1);
    expect(await emptied(ns)).toEqual([]);
    expect(existsSync(dirname(wrapper))).toBe(false);
  });

  it.skipIf(existsSync('/dev/icmpcap'))(
    'stops icmpcap serve when it serves but does not capture',
    async () => {
      // The module is not loaded: serve says it is not capturing and goes on serving.
      await expect(serveInNetns(ns, ['--port', '0', '--source', 'module'])).rejects.toThrow(
        /icmpcap serve is not capturing/,
      );
      expect(launch).not.toHaveBeenCalled();
      expect(await emptied(ns)).toEqual([]);
    },
  );

  it('still serves, and close() stops it, when all goes well', async () => {
    const close = vi.fn(() => Promise.resolve());
    launch.mockResolvedValueOnce({ close });
    const app = await serveInNetns(ns, ['--port', '0', '--no-start']);
    expect(app.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\//);
    expect(pidsIn(ns)).toContain(app.proc.pid);
    await app.close();
    expect(close).toHaveBeenCalledTimes(1);
    expect(await emptied(ns)).toEqual([]);
  });
});
