/**
 * The bytes of every ArrayBuffer reachable from `roots` through object properties, array elements and
 * Map/Set entries, each buffer counted once: the ground truth a component's own `bytesAllocated` is checked
 * against (tests) and reported beside (benchmarks). JS objects and strings are not counted (their size is
 * the engine's business: process.memoryUsage().heapUsed tells that part).
 */
export interface ReachableBytes {
  total: number;
  /** Bytes per path of the first reference found (e.g. `aggregator.peerSlots[].lostT`), largest first. */
  byPath: [string, number][];
}

export function reachableArrayBufferBytes(roots: Record<string, unknown>): ReachableBytes {
  const seen = new Set<unknown>();
  const buffers = new Map<ArrayBufferLike, string>();
  const stack: [unknown, string][] = Object.entries(roots).map(([name, value]) => [value, name]);
  while (stack.length > 0) {
    const [value, path] = stack.pop()!;
    if (value === null || (typeof value !== 'object' && typeof value !== 'function')) continue;
    if (seen.has(value)) continue;
    seen.add(value);
    if (ArrayBuffer.isView(value)) {
      if (!buffers.has(value.buffer)) buffers.set(value.buffer, path);
    } else if (value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) {
      if (!buffers.has(value)) buffers.set(value, path);
    } else if (value instanceof Map) {
      for (const [k, v] of value as Map<unknown, unknown>) stack.push([k, `${path}.key`], [v, `${path}[]`]);
    } else if (value instanceof Set) {
      for (const v of value as Set<unknown>) stack.push([v, `${path}[]`]);
    } else if (Array.isArray(value)) {
      for (const v of value) stack.push([v, `${path}[]`]);
    } else if (typeof value === 'object') {
      for (const key of Object.keys(value))
        stack.push([(value as Record<string, unknown>)[key], `${path}.${key}`]);
    }
  }
  const byPath = new Map<string, number>();
  let total = 0;
  for (const [buffer, path] of buffers) {
    total += buffer.byteLength;
    byPath.set(path, (byPath.get(path) ?? 0) + buffer.byteLength);
  }
  return { total, byPath: [...byPath].sort((a, b) => b[1] - a[1]) };
}
