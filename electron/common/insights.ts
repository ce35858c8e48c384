/**
 * The part of the contract (./contract.ts) for the answers drawn from the capture: Problems (ICMP errors by
 * the flow they report, with the path-MTU check), Paths (passive traceroute), Neighbours (ND/RA and ICMPv4
 * router health) and Alerts (rules and their firings). Times are ns since the epoch as strings (64-bit);
 * frame numbers are the table's record numbers.
 */
import { z } from 'zod';

const Empty = z.object({}).strict().default({});

/** One alert rule as written (electron/core/alerts/rule.ts); a line of alerts.conf. */
const RuleText = z
  .string()
  .max(2000)
  .refine((t) => !/[\r\n\0]/.test(t), 'one rule is one line');

const RouterAddress = z
  .string()
  .min(2)
  .max(64)
  .regex(/^[0-9A-Fa-f:.]+(%[\w.-]+)?$/, 'an IPv4 or IPv6 address');

export const InsightRequestSchemas = {
  /** ICMP errors grouped by the flow they report. */
  'problems.list': Empty,
  /** Paths of traceroute / mtr / tracepath / ping -t runs seen on this host. */
  'paths.list': Empty,
  /** Routers, hosts and findings of neighbour and router health. */
  'neighbours.get': Empty,
  /**
   * Starts neighbour health over: learn for `learnSeconds` from now (the next packet), or take `allowRouters`
   * as the only routers that may advertise (then there is no learning period).
   */
  'neighbours.configure': z
    .object({
      learnSeconds: z.number().min(0).max(86_400).optional(),
      allowRouters: z.array(RouterAddress).max(64).optional(),
    })
    .strict(),
  /** The alert rules in force: those of alerts.conf (editable) and of `--alert` (read only). */
  'alerts.rules': Empty,
  /** Checks rules without saving: each one's verdict, errors pointing at the bad part. */
  'alerts.check': z.object({ rules: z.array(RuleText).max(200) }).strict(),
  /** Saves the editable rules to alerts.conf and puts them in force; nothing is saved while one is bad. */
  'alerts.setRules': z.object({ rules: z.array(RuleText).max(200) }).strict(),
  /** The firings so far (newest last, at most MAX_FIRINGS). */
  'alerts.firings': Empty,
} as const;

export const MAX_FIRINGS = 500;

export interface ReportedFlowInfo {
  family: 4 | 6;
  protocol: 'udp' | 'tcp' | 'icmp' | 'icmpv6' | 'other';
  protocolNumber: number;
  src: string;
  dst: string;
  srcPort: number | null;
  dstPort: number | null;
  echoId: number | null;
  echoSeq: number | null;
}

export interface ProblemEventInfo {
  /** Plain words: "port unreachable (from 10.0.0.1)", "packet too big at 10.0.0.1: MTU 1280". */
  what: string;
  kind: string;
  type: number;
  code: number;
  reporter: string;
  to: string;
  mtu: number | null;
  count: number;
  firstNs: string;
  lastNs: string;
}

/** What the kernel's route to the flow's destination says about a path-MTU error (this host only). */
export interface PmtuInfo {
  destination: string;
  /** The smallest MTU the errors offered. */
  offered: number;
  /** The MTU of the route's interface: what the kernel uses without path-MTU information. */
  interfaceMtu: number | null;
  interfaceName: string | null;
  /** The MTU the kernel's route (cache) carries now; null: none (the interface's MTU applies). */
  routeMtu: number | null;
  /** The kernel uses the offered MTU or a smaller one. */
  taken: boolean;
  /** The kernel did not take it: packets of the old size keep vanishing (a path-MTU black hole). */
  blackHole: boolean;
  /** Too-big errors for this flow. */
  count: number;
  /** When the route was last asked, ms since the epoch. */
  checkedAtMs: number;
}

export interface ProblemInfo {
  /** Stable key of the flow (for lists and selection). */
  key: string;
  flow: ReportedFlowInfo | null;
  flowText: string;
  count: number;
  firstNs: string;
  lastNs: string;
  events: ProblemEventInfo[];
  pmtu: PmtuInfo | null;
  /** The local program behind the flow, when the capture recorded it (echo flows sent from this host). */
  process: { pid: number; name: string | null } | null;
  /** Frame numbers of the errors (the newest 32). */
  evidence: number[];
}

export interface MplsInfo {
  label: number;
  exp: number;
  bottom: boolean;
  ttl: number;
}

export interface HopInfo {
  ttl: number;
  addresses: string[];
  sent: number | null;
  answered: number;
  lossPct: number | null;
  rttMedianMs: number | null;
  rttMinMs: number | null;
  rttMaxMs: number | null;
  mpls: MplsInfo[];
  destination: boolean;
}

export interface PathInfo {
  key: string;
  family: 4 | 6;
  source: string;
  destination: string;
  protocol: 'icmp' | 'icmpv6' | 'udp' | 'tcp';
  /** Ordered from the quoted probes (UDP/TCP tools): no RTT, no loss, silent hops not seen. */
  inferred: boolean;
  reached: boolean;
  hops: HopInfo[];
}

/** What neighbour health reports (electron/core/neighbours/health.ts); alert rules name them too. */
export const NEIGHBOUR_FINDING_KINDS = [
  'new-router',
  'router-changed',
  'router-lifetime-zero',
  'ra-flood',
  'dad-conflict',
  'dad-repeated',
  'na-flip-flop',
  'router-flag-non-router',
  /** ICMPv4 redirect from an address that is not the gateway this host uses for the destination. */
  'redirect-not-gateway',
] as const;

export type NeighbourFindingKind = (typeof NEIGHBOUR_FINDING_KINDS)[number];

export interface FindingInfo {
  id: number;
  kind: NeighbourFindingKind;
  link: string;
  subject: string;
  detail: string;
  evidence: number[];
  tsNs: string;
}

export interface RouterInfo {
  family: 4 | 6;
  link: string;
  address: string;
  mac: string | null;
  prefixes: string[];
  managed: boolean;
  other: boolean;
  mtu: number | null;
  rdnss: string[];
  lifetime: number;
  lastFrame: number;
  lastTsNs: string;
  known: boolean;
}

export interface HostInfo {
  link: string;
  address: string;
  mac: string | null;
  lastFrame: number;
  lastTsNs: string;
}

export interface NeighboursSnapshot {
  routers: RouterInfo[];
  hosts: HostInfo[];
  findings: FindingInfo[];
  /** Routers learned until this time (ns since the epoch), or null: an allow list, or not started. */
  learningUntilNs: string | null;
  allowRouters: string[] | null;
}

export type RuleCheck =
  | { ok: true; name: string }
  | {
      ok: false;
      message: string;
      /** 0-based offset of the bad part in the rule text. */
      position: number;
    };

export interface AlertRuleInfo {
  text: string;
  /** 'file': alerts.conf (editable here); 'command-line': `--alert` (read only). */
  origin: 'file' | 'command-line';
  check: RuleCheck;
}

export interface AlertRulesInfo {
  /** The rules file. */
  file: string;
  rules: AlertRuleInfo[];
  /** alerts.setRules: whether the file was written (false while any rule is bad). */
  saved?: boolean;
  /** Why the file could not be read or written, with what to do. */
  message?: string;
}

export interface AlertFiring {
  id: number;
  rule: string;
  text: string;
  time: string;
  tsNs: string;
  figures: {
    metric: string;
    value: number;
    op: string | null;
    threshold: number | null;
    windowSeconds: number | null;
  };
  evidence: number[];
  finding?: { kind: string; detail: string };
  /** The snapshot's file name, when the rule saves one. */
  snapshot?: string;
}

export interface InsightResults {
  'problems.list': ProblemInfo[];
  'paths.list': PathInfo[];
  'neighbours.get': NeighboursSnapshot;
  'neighbours.configure': NeighboursSnapshot;
  'alerts.rules': AlertRulesInfo;
  'alerts.check': RuleCheck[];
  'alerts.setRules': AlertRulesInfo;
  'alerts.firings': AlertFiring[];
}

export interface InsightEvents {
  /** Pushed at most twice a second while anything changes. */
  problems: ProblemInfo[];
  paths: PathInfo[];
  neighbours: NeighboursSnapshot;
  /** One firing, as it happens (desktop notifications). */
  'alert.fired': AlertFiring;
  /** The rules changed (saved here or by another window). */
  'alert.rules': AlertRulesInfo;
}

export type InsightRequestName = keyof typeof InsightRequestSchemas;
export const INSIGHT_REQUEST_NAMES = Object.keys(InsightRequestSchemas) as InsightRequestName[];
