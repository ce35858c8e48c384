/**
 * Scroll state of the virtualized table. The truth is `virt`, the offset in "natural" pixels
 * (row index × row height). Browsers cap element heights (about 33 M px in Chromium), so beyond
 * MAX_SCROLL_PX the scrollbar is scaled: dragging it maps its position onto `virt`, while the wheel and
 * the keyboard move `virt` by natural amounts, so one wheel notch is a few rows even at 10 M rows.
 * While at the bottom the view follows new rows; scrolled up, it holds still and counts what arrived.
 */
import { type Ref, computed, ref, watch } from 'vue';

export const ROW_HEIGHT = 22;
export const MAX_SCROLL_PX = 8_000_000;

export function useScaledScroll(el: Ref<HTMLElement | null>, viewCount: Ref<number>) {
  const virt = ref(0);
  const scrollTop = ref(0);
  const scrollLeft = ref(0);
  const clientHeight = ref(400);
  const follow = ref(true);
  const newSinceHold = ref(0);
  let heldAt = 0;
  /**
   * The scrollTop we last set ourselves, so its scroll event is not taken for the user's; null when we
   * expect none (a number placeholder here once made a user's scroll to 0 look like our own).
   */
  let expected: number | null = null;

  const natural = computed(() => viewCount.value * ROW_HEIGHT);
  const spacerHeight = computed(() => Math.min(natural.value, MAX_SCROLL_PX));
  const scaled = computed(() => natural.value > MAX_SCROLL_PX);
  const maxVirt = computed(() => Math.max(0, natural.value - clientHeight.value));
  const maxTop = computed(() => Math.max(0, spacerHeight.value - clientHeight.value));
  const visible = computed(() => Math.ceil(clientHeight.value / ROW_HEIGHT) + 1);
  const first = computed(() => Math.max(0, Math.floor(Math.min(virt.value, maxVirt.value) / ROW_HEIGHT)));
  const rowsOffset = computed(
    () => scrollTop.value - (Math.min(virt.value, maxVirt.value) - first.value * ROW_HEIGHT),
  );

  function topFor(v: number): number {
    if (!scaled.value) return v;
    return maxVirt.value > 0 ? (v / maxVirt.value) * maxTop.value : 0;
  }

  function setFollow(on: boolean): void {
    if (on === follow.value) return;
    follow.value = on;
    heldAt = viewCount.value;
    newSinceHold.value = 0;
  }

  function applyVirt(v: number): void {
    virt.value = Math.max(0, Math.min(maxVirt.value, v));
    const node = el.value;
    if (node) {
      const top = Math.round(topFor(virt.value));
      // Setting the scrollTop it already has fires no scroll event: expect one only on a change.
      expected = Math.abs(node.scrollTop - top) >= 1 ? top : null;
      node.scrollTop = top;
      scrollTop.value = node.scrollTop;
    }
    setFollow(virt.value >= maxVirt.value - ROW_HEIGHT / 2);
  }

  function onScroll(): void {
    const node = el.value;
    if (!node) return;
    scrollLeft.value = node.scrollLeft;
    scrollTop.value = node.scrollTop;
    const ours = expected !== null && Math.abs(node.scrollTop - expected) <= 1;
    expected = null;
    if (ours) return;
    virt.value =
      scaled.value && maxTop.value > 0 ? (node.scrollTop / maxTop.value) * maxVirt.value : node.scrollTop;
    setFollow(node.scrollTop >= maxTop.value - ROW_HEIGHT / 2);
  }

  /** Scaled only: the wheel moves by natural pixels, not by scaled ones. */
  function onWheel(e: WheelEvent): void {
    if (!scaled.value || e.deltaY === 0 || e.ctrlKey) return;
    e.preventDefault();
    const unit = e.deltaMode === 1 ? ROW_HEIGHT : e.deltaMode === 2 ? clientHeight.value : 1;
    applyVirt(virt.value + e.deltaY * unit);
  }

  function jumpToNewest(): void {
    applyVirt(maxVirt.value);
    follow.value = true;
    newSinceHold.value = 0;
  }

  /** Brings a row into view, moving as little as possible. */
  function reveal(pos: number): void {
    const top = pos * ROW_HEIGHT;
    if (top < virt.value) applyVirt(top);
    else if (top + ROW_HEIGHT > virt.value + clientHeight.value)
      applyVirt(top + ROW_HEIGHT - clientHeight.value);
  }

  function measure(): void {
    if (el.value) clientHeight.value = el.value.clientHeight;
    if (follow.value) jumpToNewest();
  }

  let pending = false;
  watch(viewCount, (count) => {
    if (follow.value) {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        if (follow.value) jumpToNewest();
      });
    } else {
      newSinceHold.value = Math.max(0, count - heldAt);
      // Keep the rows on screen where they are; the thumb moves as the scale changes.
      if (virt.value > maxVirt.value) applyVirt(maxVirt.value);
      else if (scaled.value) applyVirt(virt.value);
    }
  });

  watch(el, (node, _old, onCleanup) => {
    if (!node) return;
    node.addEventListener('wheel', onWheel, { passive: false });
    onCleanup(() => node.removeEventListener('wheel', onWheel));
  });

  return {
    virt,
    first,
    visible,
    spacerHeight,
    rowsOffset,
    scaled,
    scrollLeft,
    follow,
    newSinceHold,
    onScroll,
    jumpToNewest,
    reveal,
    measure,
    scrollTo: applyVirt,
  };
}
