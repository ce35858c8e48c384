/**
 * A seeded generator for tests (xorshift32): the same seed gives the same sequence, so a failure found on
 * random input can be replayed. `next()` gives 32-bit unsigned words, `fraction()` numbers in [0, 1).
 */
export function xorshift32(seed: number): { next: () => number; fraction: () => number } {
  let x = seed >>> 0 || 1;
  const next = (): number => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  return { next, fraction: () => next() / 2 ** 32 };
}
