/**
 * Path-MTU check: for a Fragmentation Needed / Packet Too Big aimed at this host, does the kernel now use the
 * offered MTU towards the flow's destination? Asks the route cache as `ip route get` shows it (RTM_GETROUTE
 * through the native addon, in process), in the network namespace this process runs in: the one it captured in.
 *
 * When the kernel did not take it (a firewall dropped the message after capture, or the kernel rejected it)
 * packets of that size keep vanishing: the classic PMTU black hole.
 */
import { isIP } from 'node:net';
import { loadNative } from '../native.js';
import type { Problem } from './flows.js';

export interface PmtuCheck {
  destination: string;
  /** The smallest MTU the errors offered. */
  offered: number;
  /** The MTU the kernel's route to the destination carries now (null: none, the interface's MTU applies). */
  routeMtu: number | null;
  /** The kernel uses the offered MTU (or a smaller one). */
  taken: boolean;
  /** How many too-big errors this flow received. */
  count: number;
}

/**
 * The MTU of the kernel's route (cache) to `destination`, or null when it has none. Throws when there is no
 * route, or the addon is not built.
 */
export function routeMtu(destination: string): number | null {
  if (isIP(destination) === 0) throw new Error(`not an IP address: ${destination}`);
  return loadNative().routeGet(destination).mtu;
}

/**
 * Checks every problem with a too-big error sent to its flow's source (the sender it tells to send smaller):
 * run where the capture ran, that is this host. `lookup` is the route MTU query (the kernel's by default).
 */
export function checkPmtu(problems: readonly Problem[], lookup = routeMtu): Map<Problem, PmtuCheck> {
  const out = new Map<Problem, PmtuCheck>();
  for (const p of problems) {
    if (p.flow === null) continue;
    const tooBig = p.events.filter((e) => e.kind === 'too-big' && e.mtu !== null && e.to === p.flow?.src);
    if (tooBig.length === 0) continue;
    const offered = Math.min(...tooBig.map((e) => e.mtu!));
    let mtu: number | null;
    try {
      mtu = lookup(p.flow.dst);
    } catch {
      continue; // no route lookup here (no iproute2): say nothing rather than guess
    }
    out.set(p, {
      destination: p.flow.dst,
      offered,
      routeMtu: mtu,
      taken: mtu !== null && mtu <= offered,
      count: tooBig.reduce((n, e) => n + e.count, 0),
    });
  }
  return out;
}

/** The line the problems table prints under a flow. */
export function pmtuText(c: PmtuCheck): string {
  if (c.taken)
    return `  path MTU: the kernel uses ${c.routeMtu} towards ${c.destination} (offered ${c.offered})`;
  return (
    `  WARNING: path MTU black hole? ${c.count} error${c.count === 1 ? '' : 's'} offered MTU ${c.offered}, ` +
    `but the kernel's route to ${c.destination} ${c.routeMtu === null ? 'has no MTU' : `uses ${c.routeMtu}`}: ` +
    `the message was dropped (firewall) or rejected; check rules that drop ICMP "fragmentation needed" / ` +
    `"packet too big"`
  );
}
