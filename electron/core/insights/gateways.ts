/**
 * Which gateway this host's IPv4 routing uses towards a destination, from the main routing table (what
 * `ip -4 route show` lists), read in process through rtnetlink (the native addon: microseconds, no `ip` child
 * process, whose fork would hold a large process's event loop) and kept for a few seconds: the neighbour
 * health engine asks it for every ICMPv4 redirect, on the ingest path.
 */
import type { Route4 } from '../../../native/index.js';
import { loadNative } from '../native.js';

interface Route {
  net: number;
  mask: number;
  len: number;
  gateway: string | null;
}

function v4(text: string): number | null {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return null;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

/** The routes longest prefix first (the first match is the kernel's choice among them). */
export function toRoutes(routes: readonly Route4[]): Route[] {
  const out: Route[] = [];
  for (const r of routes) {
    const net = v4(r.dst);
    const len = r.prefixLength;
    if (net === null || !(len >= 0 && len <= 32)) continue;
    const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
    // A gateway of the other family (`via inet6`) is no IPv4 neighbour's address.
    const gateway = r.gateway !== null && v4(r.gateway) !== null ? r.gateway : null;
    out.push({ net: (net & mask) >>> 0, mask, len, gateway });
  }
  return out.sort((a, b) => b.len - a.len);
}

export class GatewayTable {
  private routes: Route[] | null = null;
  private readAtMs = 0;

  constructor(private readonly maxAgeMs = 5000) {}

  /** The gateway towards `destination` (null: on link), or undefined while the table is not known. */
  gatewayFor(destination: string): string | null | undefined {
    if (Date.now() - this.readAtMs > this.maxAgeMs) this.refresh();
    const dst = v4(destination);
    if (this.routes === null || dst === null) return undefined;
    const route = this.routes.find((r) => (dst & r.mask) >>> 0 === r.net);
    return route === undefined ? undefined : route.gateway;
  }

  refresh(): void {
    this.readAtMs = Date.now();
    try {
      this.routes = toRoutes(loadNative().routesV4());
    } catch {
      // No addon or no answer: keep the last table (undefined answers while none was read).
    }
  }
}
