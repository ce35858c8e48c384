/**
 * IPv6 neighbour and router health over the record stream (what NDPMon and radvdump were used for).
 *
 * Fed one record at a time, with its frame number and link (interface name). The ND fields are read from the
 * record's bytes by `ndFields` (nd.ts), by the field extractor's rules, so they are the values the filter and
 * the details pane show. Link-layer addresses come from the ND options (records start at the IP header).
 *
 * Routers and prefixes are learned per link from RAs during a learning period (or taken from an allow list);
 * afterwards every finding carries the frame numbers of its evidence packets.
 */
import { formatIpv6 } from '../../common/address.js';
import { ndFields, type NdFields } from './nd.js';
import type { DecodedRecord } from '../record.js';
import type { NeighbourFindingKind } from '../../common/insights.js';

export interface NeighbourFinding {
  kind: NeighbourFindingKind;
  link: string;
  /** The router or address the finding is about. */
  subject: string;
  /** Plain words: what changed or happened. */
  detail: string;
  /** Frame numbers (1-based, as in the table) of the packets that show it, oldest first. */
  evidence: number[];
  tsNs: bigint;
}

export interface RouterState {
  /** 6: learned from ICMPv6 RAs; 4: from ICMPv4 router discovery (RFC 1256; prefixes hold its addresses). */
  family?: 4 | 6;
  link: string;
  address: string;
  mac: string | null;
  prefixes: string[];
  managed: boolean;
  other: boolean;
  mtu: number | null;
  rdnss: string[];
  lifetime: number;
  firstFrame: number;
  lastFrame: number;
  lastTsNs: bigint;
  /** Learned during the learning period or allow-listed (not itself a finding). */
  known: boolean;
}

export interface HostState {
  link: string;
  address: string;
  mac: string | null;
  lastFrame: number;
  lastTsNs: bigint;
}

export interface NeighbourOptions {
  /** Learning period from the first record, in seconds (default 30). Ignored when `allowRouters` is given. */
  learnSeconds?: number;
  /** Router addresses (link-local or global) that may advertise; anything else is a new router at once. */
  allowRouters?: string[];
  /** RAs on one link within one second that count as a flood (default 10). */
  floodPerSecond?: number;
  /** DAD conflicts for one address that count as repeated failures (default 3). */
  repeatedDad?: number;
  /**
   * The gateway this host's routing uses towards an IPv4 destination (undefined: not known, so ICMPv4
   * redirects are not judged). A redirect from anyone else is a finding: the kernel ignores it, a host
   * without that check would follow it.
   */
  gatewayFor?: (destination: string) => string | null | undefined;
}

const ND_RS = 133;
const ND_RA = 134;
const ND_NS = 135;
const ND_NA = 136;
const NS_PER_S = 1_000_000_000n;
/** How long after a DAD probe an NA for its target counts as the answer (RetransTimer is 1 s; be lenient). */
const DAD_WINDOW_NS = 5n * NS_PER_S;
const MAX_EVIDENCE = 32;
const ICMP_REDIRECT = 5;
const ICMP_ROUTER_ADVERT = 9;

/** The ICMPv4 message of a record (its bytes after the IPv4 header), or null when not captured. */
function icmpv4Bytes(data: Uint8Array): Uint8Array | null {
  if (data.length < 20 || data[0]! >> 4 !== 4) return null;
  const ihl = (data[0]! & 0xf) * 4;
  return data.length >= ihl + 8 ? data.subarray(ihl) : null;
}

function macText(v: Uint8Array | null): string | null {
  if (v === null || v.length !== 6) return null;
  return Array.from(v, (b) => b.toString(16).padStart(2, '0')).join(':');
}

function v6(v: Uint8Array | null): string | null {
  return v !== null && v.length === 16 ? formatIpv6(v) : null;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function listText(a: readonly string[]): string {
  return a.length === 0 ? 'none' : a.join(', ');
}

export class NeighbourHealth {
  private readonly routers = new Map<string, RouterState>();
  private readonly hosts = new Map<string, HostState>();
  private readonly findingsList: NeighbourFinding[] = [];
  private readonly raTimes = new Map<string, { tsNs: bigint; frame: number }[]>();
  private readonly flooding = new Set<string>();
  private readonly probes = new Map<string, { frame: number; tsNs: bigint }>();
  private readonly dadFailures = new Map<string, number[]>();
  private readonly routerFlagFlagged = new Set<string>();
  private readonly learnNs: bigint;
  private readonly allow: Set<string> | null;
  private readonly floodPerSecond: number;
  private readonly repeatedDad: number;
  private startNs: bigint | null = null;
  private readonly gatewayFor: NeighbourOptions['gatewayFor'];

  constructor(opts: NeighbourOptions = {}) {
    this.learnNs = BigInt(Math.round((opts.learnSeconds ?? 30) * 1000)) * 1_000_000n;
    this.allow = opts.allowRouters ? new Set(opts.allowRouters.map((a) => a.toLowerCase())) : null;
    this.floodPerSecond = opts.floodPerSecond ?? 10;
    this.repeatedDad = opts.repeatedDad ?? 3;
    this.gatewayFor = opts.gatewayFor;
  }

  get findings(): readonly NeighbourFinding[] {
    return this.findingsList;
  }

  /** The end of the learning period (ns since the epoch); null with an allow list or before any packet. */
  get learningUntilNs(): bigint | null {
    return this.allow !== null || this.startNs === null ? null : this.startNs + this.learnNs;
  }

  routerList(): RouterState[] {
    return [...this.routers.values()];
  }

  hostList(): HostState[] {
    return [...this.hosts.values()];
  }

  private learning(tsNs: bigint): boolean {
    if (this.allow !== null) return false;
    return this.startNs !== null && tsNs - this.startNs < this.learnNs;
  }

  /** Looks at one record; returns the findings it produced (also kept in `findings`). */
  observe(record: DecodedRecord, frame: number, link: string): NeighbourFinding[] {
    this.startNs ??= record.tsNs;
    if (record.family === 4) return this.observeV4(record, frame, link);
    if (record.family !== 6 || record.type < ND_RS || record.type > ND_NA) return [];
    // RFC 4861: ND messages with a hop limit other than 255 come from off link and are discarded.
    if (record.ttl !== 255) return [];
    const fields = ndFields(record.data);
    const out: NeighbourFinding[] = [];
    const emit = (kind: NeighbourFindingKind, subject: string, detail: string, evidence: number[]): void => {
      const f: NeighbourFinding = {
        kind,
        link,
        subject,
        detail,
        evidence: evidence.slice(-MAX_EVIDENCE),
        tsNs: record.tsNs,
      };
      out.push(f);
      this.findingsList.push(f);
    };
    if (record.type === ND_RA) this.onRa(record, frame, link, fields, emit);
    else if (record.type === ND_NS) this.onNs(record, frame, link, fields);
    else if (record.type === ND_NA) this.onNa(record, frame, link, fields, emit);
    return out;
  }

  /** ICMPv4: router discovery (RFC 1256) and redirects. */
  private observeV4(record: DecodedRecord, frame: number, link: string): NeighbourFinding[] {
    if (record.type !== ICMP_REDIRECT && record.type !== ICMP_ROUTER_ADVERT) return [];
    const out: NeighbourFinding[] = [];
    const emit = (kind: NeighbourFindingKind, subject: string, detail: string, evidence: number[]): void => {
      const f: NeighbourFinding = { kind, link, subject, detail, evidence, tsNs: record.tsNs };
      out.push(f);
      this.findingsList.push(f);
    };
    const icmp = icmpv4Bytes(record.data);
    if (icmp === null) return out;
    if (record.type === ICMP_ROUTER_ADVERT) this.onRouterAdvertV4(record, frame, link, icmp, emit);
    else this.onRedirect(record, frame, link, icmp, emit);
    return out;
  }

  private onRouterAdvertV4(
    record: DecodedRecord,
    frame: number,
    link: string,
    icmp: Uint8Array,
    emit: (k: NeighbourFindingKind, s: string, d: string, e: number[]) => void,
  ): void {
    if (icmp.length < 8) return;
    const count = icmp[4]!;
    const entryWords = icmp[5]!;
    const lifetime = (icmp[6]! << 8) | icmp[7]!;
    const addresses: string[] = [];
    for (let i = 0; i < count && entryWords >= 2; i++) {
      const at = 8 + i * entryWords * 4;
      if (at + 8 > icmp.length) break;
      const pref = new DataView(icmp.buffer, icmp.byteOffset + at + 4, 4).getInt32(0);
      addresses.push(`${Array.from(icmp.subarray(at, at + 4)).join('.')} (preference ${pref})`);
    }
    addresses.sort();
    const src = record.src;
    this.noteHost(link, src, null, frame, record.tsNs);
    const key = `${link}|${src}`;
    const router = this.routers.get(key);
    const learning = this.learning(record.tsNs);
    if (router === undefined) {
      const known = learning || (this.allow?.has(src) ?? false);
      this.routers.set(key, {
        family: 4,
        link,
        address: src,
        mac: null,
        prefixes: addresses,
        managed: false,
        other: false,
        mtu: null,
        rdnss: [],
        lifetime,
        firstFrame: frame,
        lastFrame: frame,
        lastTsNs: record.tsNs,
        known,
      });
      if (known) return;
      if (lifetime === 0)
        emit(
          'router-lifetime-zero',
          src,
          `router lifetime 0 from ${src}, which is not a known router on ${link}`,
          [frame],
        );
      else
        emit(
          'new-router',
          src,
          `new IPv4 router ${src} on ${link} advertising ${listText(addresses)} (RFC 1256)`,
          [frame],
        );
      return;
    }
    const changes: string[] = [];
    if (!sameList(router.prefixes, addresses))
      changes.push(`addresses ${listText(router.prefixes)} -> ${listText(addresses)}`);
    if ((router.lifetime === 0) !== (lifetime === 0))
      changes.push(`lifetime ${router.lifetime} -> ${lifetime}`);
    const previous = router.lastFrame;
    Object.assign(router, { prefixes: addresses, lifetime, lastFrame: frame, lastTsNs: record.tsNs });
    if (changes.length > 0 && !learning)
      emit('router-changed', src, `IPv4 router ${src} on ${link} changed: ${changes.join('; ')}`, [
        previous,
        frame,
      ]);
  }

  private onRedirect(
    record: DecodedRecord,
    frame: number,
    link: string,
    icmp: Uint8Array,
    emit: (k: NeighbourFindingKind, s: string, d: string, e: number[]) => void,
  ): void {
    // The redirect names the better gateway and quotes the datagram it is about (its destination).
    if (icmp.length < 8 + 20 || this.gatewayFor === undefined) return;
    const newGateway = Array.from(icmp.subarray(4, 8)).join('.');
    const destination = Array.from(icmp.subarray(8 + 16, 8 + 20)).join('.');
    const gateway = this.gatewayFor(destination);
    if (gateway === undefined || gateway === record.src) return;
    emit(
      'redirect-not-gateway',
      record.src,
      `ICMP redirect for ${destination} to ${newGateway} from ${record.src}, which is not the gateway ` +
        `(${gateway ?? 'directly connected'}) on ${link}: ignore it, or find who sends it`,
      [frame],
    );
  }

  private noteHost(link: string, address: string, mac: string | null, frame: number, tsNs: bigint): void {
    if (address === '::') return;
    const key = `${link}|${address}`;
    const host = this.hosts.get(key);
    if (host === undefined) this.hosts.set(key, { link, address, mac, lastFrame: frame, lastTsNs: tsNs });
    else {
      if (mac !== null) host.mac = mac;
      host.lastFrame = frame;
      host.lastTsNs = tsNs;
    }
  }

  private onRa(
    record: DecodedRecord,
    frame: number,
    link: string,
    fields: NdFields,
    emit: (k: NeighbourFindingKind, s: string, d: string, e: number[]) => void,
  ): void {
    const src = record.src;
    const tsNs = record.tsNs;
    const mac = macText(fields.srcLinkaddr);
    const prefixes = fields.prefixes.map((p) => `${v6(p.prefix) ?? '?'}/${p.length}`).sort();
    const rdnss = fields.rdnss.map((a) => v6(a) ?? '?').sort();
    const seen = {
      prefixes,
      managed: fields.managed,
      other: fields.other,
      mtu: fields.mtu,
      rdnss,
      lifetime: fields.routerLifetime ?? 0,
    };
    this.noteHost(link, src, mac, frame, tsNs);

    // Flood: more than floodPerSecond RAs on this link within one second; once until the link calms down.
    const times = this.raTimes.get(link) ?? [];
    times.push({ tsNs, frame });
    while (times.length > 0 && tsNs - times[0]!.tsNs > NS_PER_S) times.shift();
    this.raTimes.set(link, times);
    if (times.length > this.floodPerSecond) {
      if (!this.flooding.has(link)) {
        this.flooding.add(link);
        emit(
          'ra-flood',
          link,
          `${times.length} router advertisements within one second on ${link}`,
          times.map((t) => t.frame),
        );
      }
    } else if (times.length <= this.floodPerSecond / 2) this.flooding.delete(link);

    const key = `${link}|${src}`;
    const router = this.routers.get(key);
    const learning = this.learning(tsNs);
    if (router === undefined) {
      const known = learning || (this.allow?.has(src.toLowerCase()) ?? false);
      this.routers.set(key, {
        link,
        address: src,
        mac,
        ...seen,
        firstFrame: frame,
        lastFrame: frame,
        lastTsNs: tsNs,
        known,
      });
      if (known) return;
      if (seen.lifetime === 0) {
        emit(
          'router-lifetime-zero',
          src,
          `router lifetime 0 from ${src}, which is not a known router on ${link}`,
          [frame],
        );
      } else {
        emit(
          'new-router',
          src,
          `new router ${src}${mac ? ` (${mac})` : ''} on ${link} advertising ${listText(prefixes)}`,
          [frame],
        );
      }
      return;
    }
    const changes: string[] = [];
    if (!sameList(router.prefixes, seen.prefixes))
      changes.push(`prefixes ${listText(router.prefixes)} -> ${listText(seen.prefixes)}`);
    if (router.managed !== seen.managed)
      changes.push(`M flag ${router.managed ? 1 : 0} -> ${seen.managed ? 1 : 0}`);
    if (router.other !== seen.other) changes.push(`O flag ${router.other ? 1 : 0} -> ${seen.other ? 1 : 0}`);
    if (router.mtu !== seen.mtu) changes.push(`MTU ${router.mtu ?? 'none'} -> ${seen.mtu ?? 'none'}`);
    if (!sameList(router.rdnss, seen.rdnss))
      changes.push(`RDNSS ${listText(router.rdnss)} -> ${listText(seen.rdnss)}`);
    const previous = router.lastFrame;
    Object.assign(router, seen, { lastFrame: frame, lastTsNs: tsNs });
    if (mac !== null) router.mac = mac;
    if (changes.length > 0 && !learning) {
      emit('router-changed', src, `router ${src} on ${link} changed: ${changes.join('; ')}`, [
        previous,
        frame,
      ]);
    }
  }

  private onNs(record: DecodedRecord, frame: number, link: string, fields: NdFields): void {
    const target = v6(fields.nsTarget);
    if (target === null) return;
    if (record.src === '::') {
      this.probes.set(`${link}|${target}`, { frame, tsNs: record.tsNs });
      return;
    }
    this.noteHost(link, record.src, macText(fields.srcLinkaddr), frame, record.tsNs);
  }

  private onNa(
    record: DecodedRecord,
    frame: number,
    link: string,
    fields: NdFields,
    emit: (k: NeighbourFindingKind, s: string, d: string, e: number[]) => void,
  ): void {
    const target = v6(fields.naTarget);
    if (target === null) return;
    const mac = macText(fields.targetLinkaddr);
    const routerFlag = fields.naRouter;
    const override = fields.naOverride;
    const key = `${link}|${target}`;

    const probe = this.probes.get(key);
    if (probe !== undefined && record.tsNs - probe.tsNs <= DAD_WINDOW_NS) {
      this.probes.delete(key);
      emit(
        'dad-conflict',
        target,
        `duplicate address ${target} on ${link}: a DAD probe was answered${mac ? ` by ${mac}` : ''}`,
        [probe.frame, frame],
      );
      const failures = this.dadFailures.get(key) ?? [];
      failures.push(probe.frame, frame);
      this.dadFailures.set(key, failures);
      if (failures.length / 2 === this.repeatedDad) {
        emit(
          'dad-repeated',
          target,
          `${this.repeatedDad} DAD attempts for ${target} on ${link} failed`,
          failures,
        );
      }
    }

    const host = this.hosts.get(key);
    if (host !== undefined && override && mac !== null && host.mac !== null && host.mac !== mac) {
      emit(
        'na-flip-flop',
        target,
        `${target} on ${link} moved from ${host.mac} to ${mac} (overriding advertisement)`,
        [host.lastFrame, frame],
      );
    }
    this.noteHost(link, target, mac, frame, record.tsNs);

    if (routerFlag && !this.learning(record.tsNs) && !this.routerFlagFlagged.has(key)) {
      const isRouter = [...this.routers.values()].some(
        (r) => r.link === link && (r.address === target || (mac !== null && r.mac === mac)),
      );
      if (!isRouter) {
        this.routerFlagFlagged.add(key);
        emit(
          'router-flag-non-router',
          target,
          `${target} on ${link} claims to be a router (NA router flag) but sends no router advertisements`,
          [frame],
        );
      }
    }
  }
}
