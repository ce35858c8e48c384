/**
 * Which gateway this host's IPv4 routing uses towards a destination, from the main routing table
 * (`ip -j -4 route show`), read asynchronously and kept for a few seconds: the neighbour health engine asks
 * it for every ICMPv4 redirect, on the ingest path, where nothing may block.
 */
import { execFile } from 'node:child_process';

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

export function parseRoutes(json: string): Route[] {
  const out: Route[] = [];
  for (const r of JSON.parse(json) as { dst?: string; gateway?: string; type?: string }[]) {
    if (r.type !== undefined && r.type !== 'unicast') continue;
    const [addr = '', lenText] = r.dst === 'default' ? ['0.0.0.0', '0'] : (r.dst ?? '').split('/');
    const net = v4(addr);
    const len = lenText === undefined ? 32 : Number(lenText);
    if (net === null || !(len >= 0 && len <= 32)) continue;
    const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
    out.push({ net: (net & mask) >>> 0, mask, len, gateway: r.gateway ?? null });
  }
  return out.sort((a, b) => b.len - a.len);
}

export class GatewayTable {
  private routes: Route[] | null = null;
  private readAtMs = 0;
  private reading = false;

  constructor(private readonly maxAgeMs = 5000) {}

  /** The gateway towards `destination` (null: on link), or undefined while the table is not known. */
  gatewayFor(destination: string): string | null | undefined {
    if (Date.now() - this.readAtMs > this.maxAgeMs) void this.refresh();
    const dst = v4(destination);
    if (this.routes === null || dst === null) return undefined;
    const route = this.routes.find((r) => (dst & r.mask) >>> 0 === r.net);
    return route === undefined ? undefined : route.gateway;
  }

  refresh(): Promise<void> {
    if (this.reading) return Promise.resolve();
    this.reading = true;
    return new Promise((resolve) => {
      execFile('ip', ['-j', '-4', 'route', 'show'], { timeout: 3000 }, (err, stdout) => {
        this.reading = false;
        this.readAtMs = Date.now();
        if (!err) {
          try {
            this.routes = parseRoutes(stdout);
          } catch {
            // unreadable output: keep the last table
          }
        }
        resolve();
      });
    });
  }
}
