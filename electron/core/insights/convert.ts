/** The engines' results as the contract carries them (bigints as strings, summaries instead of samples). */
import type { AlertFiring, FindingInfo, HostInfo, PathInfo, RouterInfo } from '../../common/insights.js';
import type { TracedPath } from '../answers/traceroute.js';
import type { AlertEvent } from '../alerts/engine.js';
import type { HostState, NeighbourFinding, RouterState } from '../neighbours/health.js';

function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function pathInfo(p: TracedPath): PathInfo {
  return {
    key: `${p.family}|${p.source}|${p.destination}|${p.protocol}|${p.inferred ? 'i' : 'x'}`,
    family: p.family,
    source: p.source,
    destination: p.destination,
    protocol: p.protocol,
    inferred: p.inferred,
    reached: p.reached,
    hops: p.hops.map((h) => ({
      ttl: h.ttl,
      addresses: [...h.addresses],
      sent: h.sent,
      answered: h.answered,
      lossPct: h.lossPct,
      rttMedianMs: median(h.rttMs),
      rttMinMs: h.rttMs.length ? Math.min(...h.rttMs) : null,
      rttMaxMs: h.rttMs.length ? Math.max(...h.rttMs) : null,
      mpls: h.mpls.map((m) => ({ ...m })),
      destination: h.destination,
    })),
  };
}

export function findingInfo(f: NeighbourFinding, id: number): FindingInfo {
  return {
    id,
    kind: f.kind,
    link: f.link,
    subject: f.subject,
    detail: f.detail,
    evidence: [...f.evidence],
    tsNs: f.tsNs.toString(),
  };
}

export function routerInfo(r: RouterState): RouterInfo {
  return {
    family: r.family ?? 6,
    link: r.link,
    address: r.address,
    mac: r.mac,
    prefixes: [...r.prefixes],
    managed: r.managed,
    other: r.other,
    mtu: r.mtu,
    rdnss: [...r.rdnss],
    lifetime: r.lifetime,
    lastFrame: r.lastFrame,
    lastTsNs: r.lastTsNs.toString(),
    known: r.known,
  };
}

export function hostInfo(h: HostState): HostInfo {
  return {
    link: h.link,
    address: h.address,
    mac: h.mac,
    lastFrame: h.lastFrame,
    lastTsNs: h.lastTsNs.toString(),
  };
}

export function firingInfo(ev: AlertEvent, id: number, snapshot: string | null): AlertFiring {
  return {
    id,
    rule: ev.rule,
    text: ev.text,
    time: ev.time,
    tsNs: ev.tsNs.toString(),
    figures: { ...ev.figures },
    evidence: [...ev.evidence],
    ...(ev.finding ? { finding: { kind: ev.finding.kind, detail: ev.finding.detail } } : {}),
    ...(snapshot ? { snapshot } : {}),
  };
}
