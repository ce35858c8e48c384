/**
 * The k-th smallest of `a[0, n)` (k from 0), reordering `a` in place: Hoare's selection (quickselect) with
 * a median-of-three pivot, O(n) on average. A percentile of a peer's 1024-RTT reservoir this way costs a few
 * microseconds; copying and sorting it cost ~100 (200 peers on every statistics tick: a 50 ms stall).
 * NaN is not expected (RTTs are finite).
 */
export function selectKth(a: Float32Array | Float64Array, n: number, k: number): number {
  if (!(k >= 0 && k < n && n <= a.length)) throw new RangeError(`k ${k} out of [0, ${n})`);
  let lo = 0;
  let hi = n - 1;
  while (hi > lo) {
    const mid = (lo + hi) >>> 1;
    // Median of three into a[mid], with a[lo] <= a[mid] <= a[hi].
    if (a[mid]! < a[lo]!) swap(a, mid, lo);
    if (a[hi]! < a[lo]!) swap(a, hi, lo);
    if (a[hi]! < a[mid]!) swap(a, hi, mid);
    const pivot = a[mid]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        swap(a, i, j);
        i++;
        j--;
      }
    }
    // a[lo..j] <= pivot <= a[i..hi], and a[j+1..i-1] == pivot.
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k]!;
  }
  return a[k]!;
}

function swap(a: Float32Array | Float64Array, i: number, j: number): void {
  const t = a[i]!;
  a[i] = a[j]!;
  a[j] = t;
}
