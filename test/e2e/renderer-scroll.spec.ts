/**
 * Scrolling reaches the top: with more rows than fit, a wheel move and a drag of the scrollbar thumb to
 * the top show row 1 (real pings, the real service in browser mode).
 */
import { type Page, expect, test } from '@playwright/test';
import { type NetnsPair, createNetnsPair } from '../support/netns.js';
import { type ServedApp, openCheckedPage, serveInNetns } from '../support/serve.js';

const N = 60;

let net: NetnsPair;
let app: ServedApp | undefined;

test.beforeAll(async () => {
  net = createNetnsPair('sc');
  app = await serveInNetns(net.a, ['-i', net.ifA]);
  net.exec(net.b, ['ping', '-c', String(N), '-i', '0.002', '-W', '2', net.v4.a]);
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

const firstRowIndex = (page: Page) =>
  page.evaluate(() => {
    const scroller = document.querySelector('[data-testid="scroller"]')!.getBoundingClientRect();
    const rows = [...document.querySelectorAll<HTMLElement>('[data-testid="packet-row"]')];
    const visible = rows.filter((r) => r.getBoundingClientRect().top >= scroller.top - 1);
    return Number(visible[0]?.getAttribute('aria-rowindex') ?? 0);
  });

test('a wheel move and a scrollbar drag to the top show row 1', async () => {
  const page = await openCheckedPage(app!, problems, { height: 600 });
  await expect(page.getByTestId('status-state')).toHaveText('running');
  await page.getByRole('button', { name: 'Hide details' }).click();
  await expect(page.getByTestId('status-count')).toHaveText(/^(1[2-9]\d|[2-9]\d\d) packets$/);
  // Following the newest rows: the first row is out of view.
  await expect.poll(() => firstRowIndex(page)).toBeGreaterThan(50);
  const atBottom = await firstRowIndex(page);
  const scroller = page.getByTestId('scroller');
  const box = (await scroller.boundingBox())!;

  // Two wheel moves: part of the way, then past the top.
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.wheel(0, -200);
  await expect.poll(() => firstRowIndex(page)).toBeLessThan(atBottom);
  await page.mouse.wheel(0, -100_000);
  await expect.poll(() => firstRowIndex(page)).toBe(1);

  // Back to the newest, then drag the thumb to the top.
  await scroller.focus();
  await page.keyboard.press('End');
  await expect.poll(() => firstRowIndex(page)).toBeGreaterThan(50);
  // A thumb drag, as the page sees it: scroll events at positions the page did not set, the last at 0.
  // (Synthetic mouse drags on a headless scrollbar hit its track or arrows, not the thumb.)
  for (const fraction of [0.6, 0.3, 0]) {
    await scroller.evaluate((el, f) => (el.scrollTop = Math.round(el.scrollHeight * f)), fraction);
    await page.evaluate(() => new Promise((done) => requestAnimationFrame(done)));
  }
  await expect.poll(() => firstRowIndex(page)).toBe(1);
  await page.close();
});
