/**
 * `capture -f`: the part of pcap-filter(7) that speaks about ICMP, compiled to a CaptureFilterSpec the kernel
 * applies (the module's filters, or AF_PACKET's BPF program). Accepted: `icmp`, `icmp6`, `ip`, `ip6`,
 * `[src|dst] host ADDR`, `[src|dst] net ADDR/LEN` (or `net ADDR mask MASK`), `[src|dst] ADDR`,
 * `icmp[icmptype]` / `icmp[icmpcode]` / `icmp6[icmp6type]` / `icmp6[icmp6code]` (or `[0]`, `[1]`) compared
 * with a number or pcap's names (`icmp-echo`, `icmp6-packettoobig`, ...), `inbound`, `outbound`, and
 * `and`/`or`/`not` (`&&`, `||`, `!`) with parentheses.
 *
 * A spec is a conjunction (families, types per family, codes, directions, any of a list of addresses), so
 * the compiler works per family: each family is either excluded or constrained by one set per field; `and`
 * intersects, `or` unites where the result is still one set per field, `not` complements one field. What
 * the spec cannot say (two address conditions at once, `not host`) is refused, naming the part and
 * pointing at -Y, which can say it.
 */
import type { CaptureFilterAddress, CaptureFilterSpec } from '../../common/capture-filter.js';
import { formatAddress } from '../../common/address.js';
import { parseAddressTerm, termMatches } from '../filter/address.js';

export class CaptureFilterError extends Error {
  override readonly name = 'CaptureFilterError';
}

function refuse(message: string): never {
  throw new CaptureFilterError(message);
}

const ICMP_TYPE_NAMES: Readonly<Record<string, number>> = {
  'icmp-echoreply': 0,
  'icmp-unreach': 3,
  'icmp-sourcequench': 4,
  'icmp-redirect': 5,
  'icmp-echo': 8,
  'icmp-routeradvert': 9,
  'icmp-routersolicit': 10,
  'icmp-timxceed': 11,
  'icmp-paramprob': 12,
  'icmp-tstamp': 13,
  'icmp-tstampreply': 14,
  'icmp-ireq': 15,
  'icmp-ireqreply': 16,
  'icmp-maskreq': 17,
  'icmp-maskreply': 18,
};

const ICMP6_TYPE_NAMES: Readonly<Record<string, number>> = {
  'icmp6-destinationunreach': 1,
  'icmp6-packettoobig': 2,
  'icmp6-timeexceeded': 3,
  'icmp6-parameterproblem': 4,
  'icmp6-echo': 128,
  'icmp6-echoreply': 129,
  'icmp6-multicastlistenerquery': 130,
  'icmp6-multicastlistenerreportv1': 131,
  'icmp6-multicastlistenerdone': 132,
  'icmp6-routersolicit': 133,
  'icmp6-routeradvert': 134,
  'icmp6-neighborsolicit': 135,
  'icmp6-neighboradvert': 136,
  'icmp6-redirect': 137,
  'icmp6-routerrenum': 138,
  'icmp6-nodeinformationquery': 139,
  'icmp6-nodeinformationresponse': 140,
  'icmp6-ineighbordiscoverysolicit': 141,
  'icmp6-ineighbordiscoveryadvert': 142,
  'icmp6-multicastlistenerreportv2': 143,
  'icmp6-homeagentdiscoveryrequest': 144,
  'icmp6-homeagentdiscoveryreply': 145,
  'icmp6-mobileprefixsolicit': 146,
  'icmp6-mobileprefixadvert': 147,
  'icmp6-certpathsolicit': 148,
  'icmp6-certpathadvert': 149,
  'icmp6-multicastrouteradvert': 151,
  'icmp6-multicastroutersolicit': 152,
  'icmp6-multicastrouterterm': 153,
};

type Direction = 'in' | 'out' | 'forward';
const DIRECTIONS: readonly Direction[] = ['in', 'out', 'forward'];

/** What one family must satisfy: null fields let everything through. */
type AnySet = ReadonlySet<number | string>;

interface Part {
  types: ReadonlySet<number> | null;
  codes: ReadonlySet<number> | null;
  dirs: ReadonlySet<Direction> | null;
  addrs: readonly CaptureFilterAddress[] | null;
}

/** Per family: null excludes the family. */
interface Form {
  4: Part | null;
  6: Part | null;
}

const ALL: Part = { types: null, codes: null, dirs: null, addrs: null };
const FAMILIES = [4, 6] as const;

// --- lexer and parser -------------------------------------------------------------------------------------

const TOKEN = /\s*(&&|\|\||==|!=|<=|>=|[()!<>=[\]]|[^\s()!<>=[\]&|]+)/y;

function tokenize(text: string): string[] {
  const tokens: string[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < text.length) {
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(text);
    if (!m) {
      if (/^\s*$/.test(text.slice(at))) break;
      refuse(`cannot read the capture filter at "${text.slice(at).trim()}"`);
    }
    tokens.push(m[1]!);
  }
  return tokens;
}

class Parser {
  private pos = 0;

  constructor(private readonly tokens: string[]) {}

  parse(): Form {
    if (this.tokens.length === 0) refuse('the capture filter is empty');
    const form = this.or();
    if (this.pos < this.tokens.length) refuse(`unexpected "${this.tokens[this.pos]}" in the capture filter`);
    return form;
  }

  private peek(): string | undefined {
    return this.tokens[this.pos];
  }

  private next(what: string): string {
    const t = this.tokens[this.pos++];
    if (t === undefined) refuse(`the capture filter ends where ${what} should follow`);
    return t;
  }

  private or(): Form {
    let left = this.and();
    while (this.peek() === 'or' || this.peek() === '||') {
      this.pos++;
      left = union(left, this.and());
    }
    return left;
  }

  private and(): Form {
    let left = this.not();
    for (;;) {
      const t = this.peek();
      if (t === 'and' || t === '&&') {
        this.pos++;
        left = intersect(left, this.not());
      } else if (t !== undefined && t !== ')' && t !== 'or' && t !== '||') {
        // tcpdump lets `and` out after a qualifier-less primitive only in a few cases; we take juxtaposition
        // as `and` nowhere: say so.
        refuse(`expected "and" or "or" before "${t}" in the capture filter`);
      } else return left;
    }
  }

  private not(): Form {
    const t = this.peek();
    if (t === 'not' || t === '!') {
      const start = this.pos++;
      const operand = this.not();
      return complement(operand, this.tokens.slice(start, this.pos).join(' '));
    }
    return this.primary();
  }

  private primary(): Form {
    const t = this.next('a term');
    if (t === '(') {
      const inner = this.or();
      if (this.next('")"') !== ')') refuse('a "(" in the capture filter is not closed');
      return inner;
    }
    switch (t) {
      case 'icmp':
      case 'ip':
        if (this.peek() === '[') return this.accessor(4);
        return { 4: ALL, 6: null };
      case 'icmp6':
      case 'ip6':
        if (this.peek() === '[') return this.accessor(6);
        return { 4: null, 6: ALL };
      case 'inbound':
      case 'outbound': {
        const dirs = new Set<Direction>([t === 'inbound' ? 'in' : 'out']);
        return { 4: { ...ALL, dirs }, 6: { ...ALL, dirs } };
      }
      case 'src':
      case 'dst': {
        let side: CaptureFilterAddress['side'] = t;
        const more = this.peek();
        if ((more === 'or' || more === 'and') && /^(src|dst)$/.test(this.tokens[this.pos + 1] ?? '')) {
          if (more === 'and') refuse(`"${t} and ${this.tokens[this.pos + 1]}": ${EXPRESS_WITH_Y}`);
          this.pos += 2;
          side = 'any';
        }
        return this.addressTerm(side);
      }
      case 'host':
      case 'net':
        this.pos--;
        return this.addressTerm('any');
      default:
        if (parseAddressTerm(t) !== null && !t.includes('/')) {
          this.pos--;
          return this.addressTerm('any');
        }
        return unsupported(t);
    }
  }

  /** `host ADDR`, `net ADDR[/LEN]`, `net ADDR mask MASK`, or a bare `ADDR` after src/dst. */
  private addressTerm(side: CaptureFilterAddress['side']): Form {
    let kind = this.peek();
    if (kind === 'host' || kind === 'net') this.pos++;
    else kind = 'host';
    const text = this.next('an address');
    let rule: CaptureFilterAddress;
    if (kind === 'net') {
      let prefixText = text;
      if (this.peek() === 'mask') {
        this.pos++;
        const mask = parseAddressTerm(this.next('a netmask'));
        if (mask === null || 'error' in mask) refuse(`"mask" takes a netmask such as 255.255.255.0`);
        prefixText = `${text}/${maskLength(mask.bytes)}`;
      } else if (/^\d+(\.\d+){0,2}(\/\d+)?$/.test(text)) {
        // pcap's short networks: `net 10` is 10.0.0.0/8, `net 192.168/16` is 192.168.0.0/16.
        const [addr, len] = text.split('/');
        const parts = addr!.split('.');
        prefixText = `${[...parts, '0', '0', '0'].slice(0, 4).join('.')}/${len ?? parts.length * 8}`;
      }
      rule = addressRule(prefixText, side, true);
    } else {
      if (text.includes('/')) refuse(`host ${text}: a host is one address; use "net ${text}"`);
      rule = addressRule(text, side, false);
    }
    return rule.family === 4
      ? { 4: { ...ALL, addrs: [rule] }, 6: null }
      : { 4: null, 6: { ...ALL, addrs: [rule] } };
  }

  /** `icmp[icmptype] OP VALUE` and friends. */
  private accessor(family: 4 | 6): Form {
    this.pos++; // [
    const what = this.next('icmptype or icmpcode');
    if (this.next('"]"') !== ']')
      refuse(`only icmp[icmptype] and icmp[icmpcode] are supported, not icmp[${what}...`);
    const proto = family === 4 ? 'icmp' : 'icmp6';
    const field =
      what === '0' || what === `${proto}type`
        ? 'types'
        : what === '1' || what === `${proto}code`
          ? 'codes'
          : null;
    if (field === null)
      refuse(
        `${proto}[${what}]: the kernel filter reads the ICMP type and code only (${proto}[${proto}type], ${proto}[${proto}code]); use -Y for other fields`,
      );
    const op = this.next('a comparison');
    if (!['==', '=', '!=', '<', '>', '<=', '>='].includes(op))
      refuse(`${proto}[${what}] ${op}: compare with ==, !=, <, >, <= or >=`);
    const valueText = this.next('a value');
    const names = family === 4 ? ICMP_TYPE_NAMES : ICMP6_TYPE_NAMES;
    const value = /^\d+$/.test(valueText)
      ? Number(valueText)
      : field === 'types'
        ? names[valueText]
        : undefined;
    if (value === undefined || value > 255) {
      const hint = field === 'types' ? ` or a name such as ${family === 4 ? 'icmp-echo' : 'icmp6-echo'}` : '';
      refuse(`${proto}[${what}] ${op} ${valueText}: give a number from 0 to 255${hint}`);
    }
    const set = new Set<number>();
    for (let v = 0; v < 256; v++) if (compare(v, op, value)) set.add(v);
    const part: Part = { ...ALL, [field]: set };
    return emptyPart(part)
      ? { 4: null, 6: null }
      : family === 4
        ? { 4: part, 6: null }
        : { 4: null, 6: part };
  }
}

const EXPRESS_WITH_Y =
  'the kernel filter keeps packets matching any one of its addresses, so it cannot require two address ' +
  "conditions at once; filter one with -f and the other with -Y (e.g. -Y 'ip.dst == 192.0.2.1')";

function unsupported(word: string): never {
  const known = [
    'tcp',
    'udp',
    'port',
    'portrange',
    'ether',
    'vlan',
    'arp',
    'len',
    'greater',
    'less',
    'proto',
    'gateway',
    'broadcast',
    'multicast',
    'sctp',
    'mpls',
  ];
  const what = known.includes(word)
    ? `"${word}" is outside what icmpcap captures or filters in the kernel`
    : `"${word}" is not part of icmpcap's capture filters`;
  refuse(
    `${what}. Capture filters take icmp, icmp6, host, net, src, dst, icmp[icmptype], icmp[icmpcode], ` +
      'inbound, outbound, and, or, not and parentheses; anything else can go in -Y',
  );
}

function compare(v: number, op: string, value: number): boolean {
  switch (op) {
    case '!=':
      return v !== value;
    case '<':
      return v < value;
    case '>':
      return v > value;
    case '<=':
      return v <= value;
    case '>=':
      return v >= value;
    default:
      return v === value;
  }
}

function maskLength(bytes: Uint8Array): number {
  let bits = 0;
  let ended = false;
  for (const b of bytes) {
    for (let k = 7; k >= 0; k--) {
      const set = (b >> k) & 1;
      if (set && ended) refuse('"mask" takes a contiguous netmask such as 255.255.255.0');
      if (set) bits++;
      else ended = true;
    }
  }
  return bits;
}

function addressRule(text: string, side: CaptureFilterAddress['side'], net: boolean): CaptureFilterAddress {
  const term = parseAddressTerm(text);
  if (term === null)
    refuse(
      `"${text}" is not an IPv4 or IPv6 address${net ? ' or network' : ''} (names are not resolved: give the address)`,
    );
  if ('error' in term) refuse(`${text}: ${term.error}`);
  const masked = term.bytes.slice();
  for (let bit = term.prefix; bit < masked.length * 8; bit++) masked[bit >> 3]! &= ~(0x80 >> (bit & 7));
  if (masked.some((b, k) => b !== term.bytes[k]))
    refuse(
      `net ${text}: bits are set beyond the /${term.prefix} prefix; did you mean host ${text.split('/')[0]}?`,
    );
  return {
    family: term.family,
    address: formatAddress(masked, term.family),
    prefixLength: term.prefix,
    side,
  };
}

// --- set algebra per family -------------------------------------------------------------------------------

function intersectSets<T extends number | string>(
  a: ReadonlySet<T> | null,
  b: ReadonlySet<T> | null,
): ReadonlySet<T> | null {
  if (a === null) return b;
  if (b === null) return a;
  return new Set([...a].filter((v) => b.has(v)));
}

function sameSet(a: AnySet | null, b: AnySet | null): boolean {
  if (a === null || b === null) return a === b;
  return a.size === b.size && [...a].every((v) => b.has(v));
}

function subset(a: AnySet | null, b: AnySet | null): boolean {
  if (b === null) return true;
  if (a === null) return false;
  return [...a].every((v) => b.has(v));
}

const ruleKey = (r: CaptureFilterAddress): string => `${r.side} ${r.address}/${r.prefixLength}`;

function ruleTerm(r: CaptureFilterAddress) {
  const t = parseAddressTerm(`${r.address}/${r.prefixLength}`);
  if (t === null || 'error' in t) throw new Error(`internal: bad rule ${ruleKey(r)}`);
  return t;
}

/** `a` contains `b`: same side (or a's is any), and b's prefix inside a's. */
function ruleContains(a: CaptureFilterAddress, b: CaptureFilterAddress): boolean {
  if (a.side !== 'any' && a.side !== b.side) return false;
  const ta = ruleTerm(a);
  return ta.prefix <= b.prefixLength && termMatches(ta, ruleTerm(b).bytes);
}

function addrSet(list: readonly CaptureFilterAddress[] | null): ReadonlySet<string> | null {
  return list === null ? null : new Set(list.map(ruleKey));
}

function intersectAddrs(
  a: readonly CaptureFilterAddress[] | null,
  b: readonly CaptureFilterAddress[] | null,
): readonly CaptureFilterAddress[] | null {
  if (a === null) return b;
  if (b === null) return a;
  if (sameSet(addrSet(a), addrSet(b))) return a;
  if (a.length === 1 && b.length === 1) {
    if (ruleContains(a[0]!, b[0]!)) return b;
    if (ruleContains(b[0]!, a[0]!)) return a;
    const ta = ruleTerm(a[0]!);
    const tb = ruleTerm(b[0]!);
    const disjoint = !termMatches(ta, tb.bytes) && !termMatches(tb, ta.bytes);
    // Both on the source (or both on the destination) and disjoint: nothing matches. With `any`, one can be
    // the source and the other the destination.
    if (disjoint && a[0]!.side === b[0]!.side && a[0]!.side !== 'any') return [];
  }
  refuse(`"${describe(a)} and ${describe(b)}": ${EXPRESS_WITH_Y}`);
}

function describe(list: readonly CaptureFilterAddress[]): string {
  return list
    .map(
      (r) =>
        `${r.side === 'any' ? '' : `${r.side} `}${r.prefixLength === (r.family === 4 ? 32 : 128) ? `host ${r.address}` : `net ${r.address}/${r.prefixLength}`}`,
    )
    .join(' or ');
}

function emptyPart(p: Part): boolean {
  return p.types?.size === 0 || p.codes?.size === 0 || p.dirs?.size === 0 || p.addrs?.length === 0;
}

function intersect(a: Form, b: Form): Form {
  const out: Form = { 4: null, 6: null };
  for (const f of FAMILIES) {
    const pa = a[f];
    const pb = b[f];
    if (pa === null || pb === null) continue;
    const part: Part = {
      types: intersectSets(pa.types, pb.types),
      codes: intersectSets(pa.codes, pb.codes),
      dirs: intersectSets(pa.dirs, pb.dirs),
      addrs: intersectAddrs(pa.addrs, pb.addrs),
    };
    out[f] = emptyPart(part) ? null : part;
  }
  return out;
}

function partSubset(a: Part, b: Part): boolean {
  return (
    subset(a.types, b.types) &&
    subset(a.codes, b.codes) &&
    subset(a.dirs, b.dirs) &&
    (b.addrs === null || (a.addrs !== null && a.addrs.every((r) => b.addrs!.some((s) => ruleContains(s, r)))))
  );
}

function union(a: Form, b: Form): Form {
  const out: Form = { 4: null, 6: null };
  for (const f of FAMILIES) {
    const pa = a[f];
    const pb = b[f];
    if (pa === null || pb === null) {
      out[f] = pa ?? pb;
      continue;
    }
    if (partSubset(pa, pb)) out[f] = pb;
    else if (partSubset(pb, pa)) out[f] = pa;
    else {
      const differ = (['types', 'codes', 'dirs', 'addrs'] as const).filter((k) =>
        k === 'addrs' ? !sameSet(addrSet(pa.addrs), addrSet(pb.addrs)) : !sameSet(pa[k], pb[k]),
      );
      if (differ.length > 1)
        refuse(
          `an "or" of filters that differ in both ${differ.join(' and ')} cannot be one kernel filter; ` +
            'split it: keep the broader part in -f and the rest in -Y',
        );
      const k = differ[0]!;
      const merged: Part = { ...pa };
      if (k === 'addrs') {
        const seen = new Set<string>();
        merged.addrs = [...pa.addrs!, ...pb.addrs!].filter(
          (r) => !seen.has(ruleKey(r)) && seen.add(ruleKey(r)),
        );
      } else if (k === 'dirs') {
        merged.dirs = pa.dirs && pb.dirs && new Set([...pa.dirs, ...pb.dirs]);
      } else {
        merged[k] = pa[k] && pb[k] && new Set([...pa[k], ...pb[k]]);
      }
      out[f] = merged;
    }
  }
  return out;
}

function complement(a: Form, text: string): Form {
  const out: Form = { 4: null, 6: null };
  for (const f of FAMILIES) {
    const p = a[f];
    if (p === null) {
      out[f] = ALL;
      continue;
    }
    const constrained = (['types', 'codes', 'dirs', 'addrs'] as const).filter((k) => p[k] !== null);
    if (constrained.length === 0) continue; // the whole family: excluded
    if (constrained.length > 1)
      refuse(
        `"${text}": "not" of a filter on both ${constrained.join(' and ')} cannot be one kernel filter; use -Y for it`,
      );
    const k = constrained[0]!;
    if (k === 'addrs')
      refuse(
        `"${text}": the kernel filter keeps the addresses it lists and cannot leave one out; ` +
          "use -Y (e.g. -Y '!(ip.addr == 192.0.2.1)')",
      );
    const part: Part =
      k === 'dirs'
        ? { ...ALL, dirs: new Set(DIRECTIONS.filter((d) => !p.dirs!.has(d))) }
        : {
            ...ALL,
            [k]: new Set(
              Array.from({ length: 256 }, (_, v) => v).filter((v) => !(p[k] as ReadonlySet<number>).has(v)),
            ),
          };
    out[f] = emptyPart(part) ? null : part;
  }
  return out;
}

// --- to the spec ------------------------------------------------------------------------------------------

const sorted = <T extends number | string>(s: ReadonlySet<T>): T[] =>
  [...s].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));

/** Compiles a pcap-filter expression; throws CaptureFilterError (with what to do) when it cannot. */
export function compileCaptureFilter(text: string): CaptureFilterSpec {
  const form = new Parser(tokenize(text)).parse();
  const present = FAMILIES.filter((f) => form[f] !== null);
  if (present.length === 0) refuse(`"${text}" matches no packet`);
  const parts = present.map((f) => form[f]!);
  const spec: CaptureFilterSpec = {};
  if (present.length === 1) spec.families = [present[0]!];
  const p4 = form[4];
  const p6 = form[6];
  if (p4?.types) spec.typesV4 = sorted(p4.types);
  if (p6?.types) spec.typesV6 = sorted(p6.types);
  for (const k of ['codes', 'dirs'] as const) {
    const first = parts[0]![k];
    if (!parts.every((p) => sameSet(p[k], first)))
      refuse(
        `"${text}" asks for different ${k === 'codes' ? 'codes' : 'directions'} in ICMP and ICMPv6, which one kernel filter cannot say; ` +
          'split it between -f and -Y',
      );
    if (first !== null) {
      if (k === 'codes') spec.codes = sorted(first as ReadonlySet<number>);
      else spec.directions = DIRECTIONS.filter((d) => (first as ReadonlySet<Direction>).has(d));
    }
  }
  if (parts.some((p) => p.addrs !== null)) {
    spec.addresses = present.flatMap((f) => {
      const addrs = form[f]!.addrs;
      // A family with no address condition next to one with: every address of that family.
      return (
        addrs ?? [{ family: f, address: f === 4 ? '0.0.0.0' : '::', prefixLength: 0, side: 'any' as const }]
      );
    });
  }
  return spec;
}

/** `field` is one of `values` (0..255), written the shorter way: the values, or not the others. */
function valueSet(field: string, values: readonly number[]): string {
  if (values.length === 0) return '(frame.number == 0)';
  const others = Array.from({ length: 256 }, (_, v) => v).filter((v) => !values.includes(v));
  if (others.length === 0) return `(${field} >= 0)`;
  if (values.length <= others.length) return `(${values.map((v) => `${field} == ${v}`).join(' || ')})`;
  return `!(${others.map((v) => `${field} == ${v}`).join(' || ')})`;
}

/**
 * The same filter as a display filter (-Y syntax), so user space keeps exactly what the kernel should have
 * kept: for file input (-r), and as a check behind any kernel that filtered less.
 */
export function specAsDisplayFilter(spec: CaptureFilterSpec): string {
  const all: string[] = [];
  const families: (4 | 6)[] = spec.families?.length ? spec.families : [4, 6];
  const familyExpr = (f: 4 | 6): string => {
    const terms = [f === 4 ? 'icmp' : 'icmpv6'];
    const types = f === 4 ? spec.typesV4 : spec.typesV6;
    const field = f === 4 ? 'icmp.type' : 'icmpv6.type';
    if (types) terms.push(valueSet(field, types));
    return terms.join(' && ');
  };
  all.push(`(${families.map((f) => `(${familyExpr(f)})`).join(' || ')})`);
  if (spec.codes) all.push(valueSet('icmp.code', spec.codes));
  if (spec.directions)
    all.push(`(${spec.directions.map((d) => `dir == ${d === 'forward' ? 'fwd' : d}`).join(' || ')})`);
  if (spec.addresses) {
    const field = (r: CaptureFilterAddress): string =>
      `${r.family === 4 ? 'ip' : 'ipv6'}.${r.side === 'any' ? 'addr' : r.side}`;
    const terms = spec.addresses.map((r) => `${field(r)} == ${r.address}/${r.prefixLength}`);
    all.push(`(${terms.join(' || ') || 'frame.number == 0'})`);
  }
  return all.join(' && ');
}
