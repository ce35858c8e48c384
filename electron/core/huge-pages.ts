/**
 * Large arrays on transparent huge pages. A typed array of millions of records (a view's order and keys, a
 * sort's passes) is first touched one 4 KiB page at a time, and each of those page faults costs the kernel a
 * trip through its fault path; in a virtual machine whose host keeps shadow page tables (this project's own
 * machines) about 2.7 us each: 256 MiB took 710 ms to touch, with huge pages 35-50 ms, and sorts of 20 M records
 * ran 25-40 % faster. (The longest turns of the event loop it did not shorten measurably: see issue 17's notes.)
 *
 * `hugePages(array)` asks the kernel (madvise MADV_HUGEPAGE, through the addon) to map the array's memory 2 MiB
 * at a time; it must come before the array's first write. Only advice: where the kernel gives no huge pages
 * (THP `never`, no addon, a small array) the array is used as it is. `ICMPCAP_HUGE_PAGES=0` in the
 * environment turns the advice off (a machine where huge pages cost more than they save: compaction stalls).
 */
import { loadNative } from './native.js';

/** Below this an array holds at most a huge page or two: not worth a call. */
export const HUGE_PAGES_MIN_BYTES = 4 << 20;

let advise: ((view: ArrayBufferView) => number) | null | undefined;

/** The addon's adviseHugePages, or null where the addon cannot be loaded (loaded once, on first use). */
function adviser(): ((view: ArrayBufferView) => number) | null {
  if (advise === undefined) {
    try {
      const native = loadNative();
      advise = typeof native.adviseHugePages === 'function' ? native.adviseHugePages : null;
    } catch {
      advise = null;
    }
  }
  return advise;
}

/** `array`, its memory advised onto huge pages when it is large (see above); call it before the first write. */
export function hugePages<T extends ArrayBufferView>(array: T): T {
  if (array.byteLength >= HUGE_PAGES_MIN_BYTES && process.env.ICMPCAP_HUGE_PAGES !== '0') adviser()?.(array);
  return array;
}
