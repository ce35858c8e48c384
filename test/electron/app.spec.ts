/**
 * The real desktop app through Playwright's `_electron`. Runs where an Electron binary exists (set
 * ELECTRON_OVERRIDE_DIST_PATH to an unpacked Electron, or let `electron` download its binary) and
 * skips, saying why, where none does.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { _electron as electron, expect, test } from '@playwright/test';

function electronBinary(): { path?: string; why?: string } {
  const dir = join(process.cwd(), 'node_modules', 'electron');
  const name = existsSync(join(dir, 'path.txt')) ? readFileSync(join(dir, 'path.txt'), 'utf8') : 'electron';
  const override = process.env.ELECTRON_OVERRIDE_DIST_PATH;
  const candidate = override ? join(override, name) : join(dir, 'dist', name);
  if (existsSync(candidate)) return { path: candidate };
  return {
    why: override
      ? `ELECTRON_OVERRIDE_DIST_PATH=${override} has no ${name}`
      : 'no Electron binary on this machine (it cannot be downloaded here); set ELECTRON_OVERRIDE_DIST_PATH to an unpacked Electron to run these specs',
  };
}

const binary = electronBinary();
if (!binary.path) console.log(`electron specs skipped: ${binary.why}`);

test('the desktop window shows the app, sandboxed, with the service behind IPC', async () => {
  test.skip(!binary.path, binary.why ?? '');
  const args = ['.'];
  if (process.getuid?.() === 0) args.unshift('--no-sandbox'); // CI runs as root; users never do
  const app = await electron.launch({ executablePath: binary.path, args });
  const page = await app.firstWindow();
  await expect(page.getByRole('table', { name: 'Captured ICMP packets' })).toBeVisible();
  expect(await page.evaluate(() => typeof (globalThis as { require?: unknown }).require)).toBe('undefined');
  expect(
    await page.evaluate(() => Object.keys((window as unknown as { icmpcap: object }).icmpcap).sort()),
  ).toEqual(['onEvent', 'request']);
  await expect(page.getByTestId('status-state')).toHaveText(/idle|running|stopped/);
  await app.close();
});
