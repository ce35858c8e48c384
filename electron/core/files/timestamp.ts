/**
 * Timestamp conversion for the readers. Records hold nanoseconds as a 64-bit integer; the common file
 * resolutions (seconds to nanoseconds, no offset) are converted with 32-bit halves held in doubles, because a
 * BigInt per record would cost more than the rest of the decoding. Every product below stays under 2^53.
 */

const TWO_32 = 0x1_0000_0000;
const SMALL_FACTOR_LIMIT = 0x20_0000;

/** A conversion from file units to nanoseconds: `ns = units * multiplier + offsetNs` or a BigInt fallback. */
export class TimestampScale {
  /** Set when `ns = units * fastMultiplier` exactly (a power of ten up to 10^9, no offset). */
  private readonly fastFactors: number[] | null;

  private constructor(
    private readonly numerator: bigint,
    private readonly denominator: bigint,
    private readonly offsetNs: bigint,
  ) {
    this.fastFactors = offsetNs === 0n && denominator === 1n ? splitFactor(numerator) : null;
  }

  /** pcapng `if_tsresol`: high bit clear = 10^-n seconds, set = 2^-n seconds; `if_tsoffset` in seconds. */
  static fromTsresol(tsresol: number, tsoffsetSeconds = 0n): TimestampScale {
    const exponent = BigInt(tsresol & 0x7f);
    const unitsPerSecond = tsresol & 0x80 ? 1n << exponent : 10n ** exponent;
    return TimestampScale.fromUnitsPerSecond(unitsPerSecond, tsoffsetSeconds);
  }

  static fromUnitsPerSecond(unitsPerSecond: bigint, offsetSeconds = 0n): TimestampScale {
    const ns = 1_000_000_000n;
    const divisor = gcd(ns, unitsPerSecond);
    return new TimestampScale(ns / divisor, unitsPerSecond / divisor, offsetSeconds * ns);
  }

  /** Converts `hi * 2^32 + lo` units; the result is left in `out.hi`/`out.lo` (32-bit halves). */
  convert(hi: number, lo: number, out: U64Parts): void {
    const factors = this.fastFactors;
    if (factors !== null) {
      out.hi = hi;
      out.lo = lo;
      for (const factor of factors) multiplySmall(out, factor);
      return;
    }
    const units = (BigInt(hi) << 32n) | BigInt(lo);
    const ns = BigInt.asUintN(64, (units * this.numerator) / this.denominator + this.offsetNs);
    out.hi = Number(ns >> 32n);
    out.lo = Number(ns & 0xffffffffn);
  }
}

export interface U64Parts {
  hi: number;
  lo: number;
}

/** `parts *= factor` modulo 2^64, for factor < 2^21 so that `lo * factor` is exact. */
function multiplySmall(parts: U64Parts, factor: number): void {
  const low = parts.lo * factor;
  const carry = Math.floor(low / TWO_32);
  parts.lo = low - carry * TWO_32;
  parts.hi = (parts.hi * factor + carry) % TWO_32;
}

/** Splits an integer multiplier into factors below 2^21, or null when it cannot be split that way. */
function splitFactor(multiplier: bigint): number[] | null {
  if (multiplier > 1_000_000_000n) return null;
  let rest = Number(multiplier);
  const factors: number[] = [];
  while (rest >= SMALL_FACTOR_LIMIT) {
    if (rest % 1000 !== 0) return null;
    factors.push(1000);
    rest /= 1000;
  }
  if (rest > 1) factors.push(rest);
  return factors;
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/** pcap: seconds plus a fraction in micro- or nanoseconds. */
export function pcapTimestamp(seconds: number, fraction: number, fractionToNs: number, out: U64Parts): void {
  // seconds * 10^9 = seconds * 15625 * 64000, each step exact in doubles.
  out.hi = Math.floor((seconds * 15625) / TWO_32);
  out.lo = seconds * 15625 - out.hi * TWO_32;
  multiplySmall(out, 64000);
  const lo = out.lo + fraction * fractionToNs;
  const carry = Math.floor(lo / TWO_32);
  out.lo = lo - carry * TWO_32;
  out.hi = (out.hi + carry) % TWO_32;
}

export interface SecondsNs {
  seconds: number;
  ns: number;
}

/**
 * Splits `hi * 2^32 + lo` nanoseconds into whole seconds and the nanoseconds left over, exactly, without a
 * BigInt (pcap record headers; a BigInt division per record costs more than the rest of the record).
 */
export function splitSecondsNs(hi: number, lo: number, out: SecondsNs): void {
  // The double estimate is off by at most a few thousand ns, so the seconds by at most one either way.
  let seconds = Math.floor((hi * TWO_32 + lo) / 1e9);
  // seconds * 10^9 as 32-bit halves, exactly: seconds < 2^35 splits into 16-bit-ish parts whose products
  // with 10^9 stay below 2^53.
  const high = Math.floor(seconds / 65536);
  const scaledHigh = high * 1e9; // * 2^16 below
  const productHi0 = Math.floor(scaledHigh / 65536);
  let productLo = (scaledHigh - productHi0 * 65536) * 65536 + (seconds - high * 65536) * 1e9;
  const carry = Math.floor(productLo / TWO_32);
  productLo -= carry * TWO_32;
  let ns = (hi - productHi0 - carry) * TWO_32 + (lo - productLo);
  while (ns < 0) {
    seconds--;
    ns += 1e9;
  }
  while (ns >= 1e9) {
    seconds++;
    ns -= 1e9;
  }
  out.seconds = seconds;
  out.ns = ns;
}
