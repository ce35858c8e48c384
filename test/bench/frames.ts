/**
 * Frame timing in the page for the renderer benchmarks: requestAnimationFrame deltas, and the long tasks
 * (over 50 ms of main-thread work, PerformanceObserver 'longtask') that make the slow ones.
 */
import type { Page } from '@playwright/test';

interface FrameWindow {
  __frames: number[];
  __long: { start: number; ms: number; name: string }[];
  __stop: boolean;
  __observer?: PerformanceObserver;
}

/** Starts collecting rAF deltas and long tasks in the page. */
export async function startFrames(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as FrameWindow;
    w.__frames = [];
    w.__long = [];
    w.__stop = false;
    w.__observer?.disconnect();
    w.__observer = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) w.__long.push({ start: e.startTime, ms: e.duration, name: e.name });
    });
    w.__observer.observe({ type: 'longtask' });
    let last = performance.now();
    const tick = (t: number) => {
      w.__frames.push(t - last);
      last = t;
      if (!w.__stop) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
}

/** Stops collecting: the rAF deltas (the first two dropped: they include the start-up). */
export async function stopFrames(page: Page): Promise<number[]> {
  return (await stopFramesAndTasks(page)).frames;
}

export async function stopFramesAndTasks(
  page: Page,
): Promise<{ frames: number[]; longTasks: { start: number; ms: number; name: string }[] }> {
  return page.evaluate(() => {
    const w = window as unknown as FrameWindow;
    w.__stop = true;
    w.__observer?.disconnect();
    return { frames: w.__frames.slice(2), longTasks: w.__long };
  });
}

export function p95(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.95))] ?? NaN;
}

/** Records the status bar says the capture holds. */
export async function total(page: Page): Promise<number> {
  return Number((await page.getByTestId('status-count').textContent())!.replace(/\D/g, ''));
}
