/**
 * Renderer benchmark: frame times while the service sorts a large live capture. `ping -f` floods (IPv4 and
 * IPv6) between two namespaces until the capture holds BENCH_SORT_ROWS records (20 M by default), and go on
 * while the table is sorted by a column, reversed, and sorted by another, with the wheel turning meanwhile.
 * The same is done at BENCH_SORT_PEER_ROWS (10 M) on the way, in the same run, as its peer. rAF deltas are
 * measured from the click to the sorted table; long tasks (PerformanceObserver) say what made slow frames.
 * Last, a sort is stopped from the status bar. Merged into bench/results.json as renderer.frame_p95_ms_sorting.
 *
 *   npx playwright test --config test/bench/playwright.config.ts renderer-sort
 *   (BENCH_SORT_ROWS / BENCH_SORT_PEER_ROWS: sizes; BENCH_SORT_TRACE=1 logs the sort requests and events)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { type Page, expect, test } from '@playwright/test';
import { mergeBenchResults } from '../support/bench-results.js';
import { type NetnsPair, createNetnsPair } from '../support/netns.js';
import { type ServedApp, serveInNetns } from '../support/serve.js';
import { p95, startFrames, stopFramesAndTasks, total } from './frames.js';

const COMMAND = 'npx playwright test --config test/bench/playwright.config.ts renderer-sort';
const ROWS = Number(process.env.BENCH_SORT_ROWS ?? 20_000_000);
const PEER_ROWS = Number(process.env.BENCH_SORT_PEER_ROWS ?? 10_000_000);

let net: NetnsPair;
let app: ServedApp | undefined;
const floods: ChildProcess[] = [];

test.beforeAll(async () => {
  net = createNetnsPair('bs');
  app = await serveInNetns(net.a, ['-i', net.ifA]);
});

test.afterAll(async () => {
  for (const f of floods) if (f.exitCode === null) f.kill('SIGINT');
  await app?.close();
  net?.destroy();
});

interface SortPhase {
  rows: number;
  frames: number[];
  longTasks: { start: number; ms: number; name: string }[];
  /** Click to sorted table, per sort. */
  sortMs: number[];
  /** Whether the status bar showed the sort's progress, per sort. */
  progressShown: boolean[];
}

function header(page: Page, col: string) {
  return page.locator(`[role="columnheader"][data-col="${col}"]`);
}

/** Clicks a header and waits for the table to say the view is sorted that way, turning the wheel meanwhile. */
async function sortBy(page: Page, col: string, expected: 'ascending' | 'descending', phase: SortPhase) {
  const scroller = page.getByTestId('scroller');
  const box = (await scroller.boundingBox())!;
  const started = Date.now();
  await header(page, col).getByRole('button').click();
  let shown = false;
  let i = 0;
  while ((await header(page, col).getAttribute('aria-sort')) !== expected) {
    shown ||= await page.getByTestId('sort-progress').isVisible();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.wheel(0, i++ % 10 < 5 ? -240 : 240);
    await page.waitForTimeout(16);
    expect(Date.now() - started, `sorting by ${col}`).toBeLessThan(10 * 60_000);
  }
  phase.sortMs.push(Date.now() - started);
  console.log(`sorted by ${col} (${expected}) in ${Date.now() - started} ms`);
  phase.progressShown.push(shown);
  await expect(page.getByTestId('sort-progress')).toBeHidden();
}

async function measureSorts(page: Page): Promise<SortPhase> {
  const phase: SortPhase = {
    rows: await total(page),
    frames: [],
    longTasks: [],
    sortMs: [],
    progressShown: [],
  };
  await startFrames(page);
  await sortBy(page, 'seq', 'ascending', phase);
  await sortBy(page, 'seq', 'descending', phase);
  await sortBy(page, 'src', 'ascending', phase);
  const { frames, longTasks } = await stopFramesAndTasks(page);
  phase.frames = frames;
  phase.longTasks = longTasks;
  return phase;
}

function describe(p: SortPhase): string {
  const long = p.longTasks.length
    ? `${p.longTasks.length} long tasks (max ${Math.max(...p.longTasks.map((t) => t.ms)).toFixed(0)} ms)`
    : 'no long task';
  return `${p.rows.toLocaleString('en')} rows: p95 ${p95(p.frames).toFixed(1)} ms over ${p.frames.length} frames (max ${Math.max(...p.frames).toFixed(0)} ms, ${long}); sorts took ${p.sortMs.map((ms) => (ms / 1000).toFixed(1)).join(', ')} s, progress shown ${p.progressShown.filter(Boolean).length} of ${p.progressShown.length}`;
}

async function waitForRows(page: Page, rows: number): Promise<void> {
  await expect
    .poll(() => total(page), { timeout: 20 * 60_000, intervals: [1000] })
    .toBeGreaterThanOrEqual(rows);
}

test('frame times while sorting a live capture of 10 M and 20 M rows', async () => {
  const page = await app!.browser.newPage({ viewport: { width: 1400, height: 900 } });
  if (process.env.BENCH_SORT_TRACE)
    page.on('websocket', (ws) => {
      console.log(Date.now() % 1e6, 'websocket opened');
      ws.on('close', () => console.log(Date.now() % 1e6, 'websocket closed'));
      ws.on(
        'framesent',
        (f) => String(f.payload).includes('setSort') && console.log(Date.now() % 1e6, 'sent', f.payload),
      );
      ws.on('framereceived', (f) => {
        const t = String(f.payload);
        if (t.includes('"event":"sort"') || t.includes('"result":{"view"'))
          console.log(Date.now() % 1e6, t.slice(0, 150));
      });
    });
  await page.goto(app!.url);
  await expect(page.getByTestId('status-state')).toHaveText('running');
  await page.getByRole('button', { name: 'Hide details' }).click();
  for (const args of [
    ['-f', net.v4.a],
    ['-6', '-f', net.v6.a],
  ])
    floods.push(spawn('ip', ['netns', 'exec', net.b, 'ping', '-q', ...args], { stdio: 'ignore' }));

  await waitForRows(page, PEER_ROWS);
  const peer = await measureSorts(page);
  console.log(`sorting while capturing, ${describe(peer)}`);
  // Back to the capture order (by record number: nothing to sort), then on to the full size.
  await header(page, 'no').getByRole('button').click();
  await expect(header(page, 'no')).toHaveAttribute('aria-sort', 'ascending', { timeout: 60_000 });
  await waitForRows(page, ROWS);
  const full = await measureSorts(page);
  const rate = (await page.getByTestId('status-rate').textContent())!.trim();
  const drops =
    (
      await page
        .getByTestId('status-drops')
        .textContent()
        .catch(() => null)
    )?.trim() ?? 'none';
  console.log(`sorting while capturing, ${describe(full)}; rate ${rate}; drops: ${drops}`);

  // A long sort can be stopped from the status bar: the table keeps the order it had.
  await header(page, 'len').getByRole('button').click();
  let stopped = true;
  try {
    await page.getByTestId('sort-cancel').click({ timeout: 60_000 });
  } catch (err) {
    // Only a sort that ended before its progress showed may skip this.
    if ((await header(page, 'len').getAttribute('aria-sort')) !== 'ascending') throw err;
    stopped = false;
  }
  await expect(page.getByTestId('sort-progress')).toBeHidden();
  if (stopped) {
    await expect(header(page, 'src')).toHaveAttribute('aria-sort', 'ascending');
    await expect(header(page, 'len')).toHaveAttribute('aria-sort', 'none');
  }
  await expect(page.getByTestId('filter-error')).toBeHidden();
  console.log(
    stopped ? 'the sort by length was stopped' : 'the sort by length ended before it could be stopped',
  );
  for (const f of floods) f.kill('SIGINT');

  const note =
    `rAF deltas in headless Debian chromium 1400x900 from a header click to the sorted table (sort by icmp.seq, ` +
    `reverse it, sort by source; the wheel turning meanwhile) while a ping -f flood (v4+v6) is captured; ` +
    `at ${describe(full)}. Peer in the same run, ${describe(peer)}. ${stopped ? 'A sort by length was stopped from the status bar.' : ''}` +
    ` 2 vCPUs shared by service, chromium and ping`;
  mergeBenchResults({
    'renderer.frame_p95_ms_sorting': {
      value: Number(p95(full.frames).toFixed(1)),
      unit: 'ms',
      command: COMMAND,
      note,
    },
    'renderer.frame_p95_ms_sorting_10m': {
      value: Number(p95(peer.frames).toFixed(1)),
      unit: 'ms',
      command: COMMAND,
      note: `the same sorts at ${peer.rows.toLocaleString('en')} rows, earlier in the same capture and run`,
    },
    'renderer.rows_held_sorting': {
      value: full.rows,
      unit: 'rows',
      command: COMMAND,
      note: `records captured when the sorts at full size started (the flood went on; rate at the end ${rate})`,
    },
  });
  expect(full.rows).toBeGreaterThanOrEqual(ROWS);
  await page.close();
});
