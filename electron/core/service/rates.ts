/** The capture rate the UI shows: records per second over the last second of ticks. */
export class RateMeter {
  private window: { atMs: number; total: number }[] = [];

  /** Records the store's length at a tick and forgets samples older than a second. */
  sample(now: number, total: number): void {
    this.window.push({ atMs: now, total });
    while (this.window.length > 1 && now - this.window[0]!.atMs > 1000) this.window.shift();
  }

  /** Records per second from the oldest sample kept to `total` now. */
  rate(now: number, total: number): number {
    const oldest = this.window[0];
    const rate = oldest && now > oldest.atMs ? ((total - oldest.total) * 1000) / (now - oldest.atMs) : 0;
    return Math.max(0, Math.round(rate));
  }

  reset(): void {
    this.window = [];
  }
}
