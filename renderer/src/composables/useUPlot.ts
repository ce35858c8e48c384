/**
 * One uPlot instance per chart, reused: data goes in with setData (at most once a frame), the size
 * follows the container, and the instance is rebuilt only when the series change or the theme flips (uPlot draws on a canvas, so colours come from the CSS variables at build time).
 */
import { type Ref, onBeforeUnmount, onMounted, watch } from 'vue';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

export function useUPlot(
  el: Ref<HTMLElement | null>,
  makeOpts: (width: number, height: number) => uPlot.Options,
  data: () => uPlot.AlignedData,
  /** Changes of this key rebuild the chart (a different set of series). */
  shapeKey: () => string,
) {
  let chart: uPlot | null = null;
  let frame = 0;
  let observer: ResizeObserver | null = null;
  // Colours come from CSS variables at build time: rebuild when the theme (theme.ts) flips.
  const themeWatch = new MutationObserver(() => build());

  function size(): { width: number; height: number } {
    const box = el.value?.getBoundingClientRect();
    return {
      width: Math.max(200, Math.floor(box?.width ?? 400)),
      height: Math.max(120, Math.floor(box?.height ?? 200)),
    };
  }

  /** Room the title and the legend take below and above the plot, measured once built. */
  let chrome = 60;

  function fit(): void {
    if (!chart) return;
    const { width, height } = size();
    chart.setSize({ width, height: Math.max(80, height - chrome) });
  }

  function build(): void {
    chart?.destroy();
    chart = null;
    if (!el.value) return;
    const { width, height } = size();
    const built = new uPlot(makeOpts(width, Math.max(80, height - chrome)), data(), el.value);
    chart = built;
    // Measure the title and legend once laid out, then give the plot what is left.
    requestAnimationFrame(() => {
      const wrap = built.root.querySelector<HTMLElement>('.u-wrap');
      if (chart !== built || !wrap) return;
      chrome = Math.max(0, built.root.offsetHeight - wrap.offsetHeight) + 4;
      fit();
    });
  }

  function schedule(): void {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      chart?.setData(data());
    });
  }

  const rebuild = () => build();
  onMounted(() => {
    build();
    observer = new ResizeObserver(fit);
    if (el.value) observer.observe(el.value);
    themeWatch.observe(document.documentElement, { attributes: true, attributeFilter: ['data-theme'] });
  });
  onBeforeUnmount(() => {
    cancelAnimationFrame(frame);
    observer?.disconnect();
    themeWatch.disconnect();
    chart?.destroy();
  });
  watch(shapeKey, rebuild);
  watch(data, schedule);
}

export { uPlot };
