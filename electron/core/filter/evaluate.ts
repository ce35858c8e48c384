/**
 * Display-filter semantics over one record's fields (a FieldMap from electron/core/fields/extract.ts),
 * as Wireshark 4.x evaluates them. This is the general path: every registry field, every occurrence
 * (quoted headers too), slices, functions, arithmetic, regexes. The compiler (compile.ts) uses it for
 * what the in-memory columns cannot answer, record by record; it resolves names and literal types
 * once, here, so evaluation is closures over plain values.
 *
 * Semantics (Wireshark 4.x, wireshark-filter(4)):
 * - A field yields all its values in the record (restricted to layers with `#`); a test with an
 *   absent operand is false whatever the operator.
 * - `==` any equal, `!=` all not equal, `===` all equal, `!==` (and `~=`) any not equal; ordering
 *   operators, `contains` and `matches` are "any"; `any`/`all` in front override. With two
 *   multi-valued operands "all" means every pair.
 * - `a in {…}`: some value of `a` is in the set (ranges `x..y` inclusive); `a not in {…}` is
 *   `!(a in {…})` (so it matches records without `a`, as tshark 4.0 does).
 * - `matches` is case-insensitive unless the pattern starts with `(?-i)` (JavaScript regex syntax
 *   beyond that); `contains` searches bytes or text.
 * - Literals take the type of the other side: integers in decimal, `0x` hex, `0b` binary, octal with
 *   a leading 0 (`010` is 8), `'c'` character constants; byte strings `aa:bb:cc` (also `.` `-` or a
 *   single byte `0a`/`0x0a`); IPv4/IPv6 addresses with optional /prefix; True/False; strings.
 * - Arithmetic `+ - * / %` and `&` combine every pair of values; `a & b` alone tests for a non-zero
 *   result. Slices `[i:j]`, `[i-j]`, `[i]`, `[:j]`, `[i:]`, negative offsets from the end.
 * - Functions: len, count, string, upper, lower, abs, min, max, and Wireshark 4.4's ip_rfc1918,
 *   ip_linklocal, ip_multicast, ip_special_name (IANA special-purpose registry names).
 * - `${field}` reads the field from the reference (selected) record the caller supplies; none: no
 *   values (tshark has no selection, so such a test is false there too).
 */
import { formatIpv6 } from '../../common/address.js';
import { ALL_FIELD_NAMES, FIELD_ALIASES, type FieldInfo, fieldInfo } from '../../common/fields.js';
import { typesForKey } from '../../common/icmp.js';
import type { FieldMap, FieldValue } from '../fields/extract.js';
import { addressBytes } from './address.js';
import {
  type CmpOp,
  type Entity,
  FilterSyntaxError,
  type Node,
  type SetItem,
  type SliceRange,
} from './parse.js';

/** Value types the evaluator works with. */
export type VType =
  'int' | 'float' | 'bool' | 'ipv4' | 'ipv6' | 'bytes' | 'string' | 'abstime' | 'reltime' | 'none';

type Val = number | bigint | string | Uint8Array;

export interface EvalEnv {
  /** Values of a field in the reference (selected) record, for `${field}`. */
  ref?: (name: string) => readonly FieldValue[];
}

interface Compiled {
  type: VType;
  values: (fm: FieldMap) => Val[];
  /** Set for plain fields (count(), existence). */
  field?: string;
}

/** A CIDR literal: matches addresses whose first `bits` bits equal `net`'s. */
interface Cidr {
  net: Uint8Array;
  bits: number;
}

export function vtypeOf(info: FieldInfo): VType {
  switch (info.type) {
    case 'uint8':
    case 'uint16':
    case 'uint24':
    case 'uint32':
    case 'int32':
    case 'framenum':
      return 'int';
    case 'double':
      return 'float';
    case 'bool':
      return 'bool';
    case 'ipv4':
      return 'ipv4';
    case 'ipv6':
      return 'ipv6';
    case 'ether':
    case 'bytes':
    case 'protocol':
      return 'bytes';
    case 'string':
      return 'string';
    case 'abstime':
      return 'abstime';
    case 'reltime':
      return 'reltime';
    case 'none':
      return 'none';
  }
}

/** Resolves a name (Wireshark's or one of our aliases) to its registry entry. */
export function resolveField(name: string): FieldInfo | undefined {
  const lower = name.toLowerCase();
  return fieldInfo(lower) ?? fieldInfo(FIELD_ALIASES[lower] ?? '');
}

function toVal(type: VType, v: FieldValue): Val {
  if (type === 'bool') return v === true || v === 1 ? 1 : 0;
  if (type === 'ipv4' && typeof v === 'number') return v >>> 0;
  if (v === null) return 1;
  if (typeof v === 'boolean') return v ? 1 : 0;
  return v;
}

function bytesCmp(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function indexOfBytes(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

const utf8 = new TextEncoder();

function asBytes(v: Val, type: VType): Uint8Array | null {
  if (v instanceof Uint8Array) return v;
  if (typeof v === 'string') return utf8.encode(v);
  if (type === 'ipv4' && typeof v === 'number')
    return Uint8Array.of(v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255);
  return null;
}

function ipv4Bytes(v: number): Uint8Array {
  return Uint8Array.of(v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255);
}

function cidrMatch(c: Cidr, addr: Uint8Array): boolean {
  const full = c.bits >>> 3;
  for (let i = 0; i < full; i++) if (addr[i] !== c.net[i]) return false;
  const rest = c.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((addr[full]! ^ c.net[full]!) & mask) === 0;
}

// ---- Literals ----

const INT_RE = /^-?(0x[0-9a-f]+|0b[01]+|0[0-7]*|[1-9][0-9]*)$/i;

function parseInt64(text: string): number | null {
  if (!INT_RE.test(text)) return null;
  const neg = text.startsWith('-');
  const t = neg ? text.slice(1) : text;
  let n: number;
  if (/^0x/i.test(t)) n = parseInt(t.slice(2), 16);
  else if (/^0b/i.test(t)) n = parseInt(t.slice(2), 2);
  else if (t.length > 1 && t.startsWith('0')) n = parseInt(t, 8);
  else n = Number(t);
  return neg ? -n : n;
}

function parseByteString(text: string): Uint8Array | null {
  if (/^0x[0-9a-f]{1,2}$/i.test(text)) return Uint8Array.of(parseInt(text.slice(2), 16));
  if (/^[0-9a-f]{1,2}$/i.test(text)) return Uint8Array.of(parseInt(text, 16));
  if (/^[0-9a-f]{2}([:.-][0-9a-f]{2})+$/i.test(text))
    return Uint8Array.from(text.split(/[:.-]/), (h) => parseInt(h, 16));
  if (/^[0-9a-f]{1,2}([:.-][0-9a-f]{1,2})+$/i.test(text))
    return Uint8Array.from(text.split(/[:.-]/), (h) => parseInt(h, 16));
  return null;
}

function parseAbsTime(text: string): bigint | null {
  const legacy = /^([A-Za-z]{3}) +(\d{1,2}), (\d{4}) (\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?( UTC)?$/.exec(
    text.trim(),
  );
  if (legacy) {
    const months = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
    const mon = months.indexOf(legacy[1]!.toLowerCase());
    if (mon < 0) return null;
    const args = [
      Number(legacy[3]),
      mon,
      Number(legacy[2]),
      Number(legacy[4]),
      Number(legacy[5]),
      Number(legacy[6]),
    ] as const;
    const ms = legacy[8] ? Date.UTC(...args) : new Date(...args).getTime();
    const frac = (legacy[7] ?? '.').slice(1).padEnd(9, '0');
    return BigInt(ms) * 1_000_000n + BigInt(frac === '' ? 0 : Number(frac));
  }
  const iso = /^(\d{4}-\d{2}-\d{2})[T ]?(\d{2}:\d{2}:\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})?$/.exec(
    text.trim(),
  );
  if (iso) {
    const ms = new Date(`${iso[1]}T${iso[2]}${iso[4] ?? ''}`).getTime();
    if (Number.isNaN(ms)) return null;
    const frac = (iso[3] ?? '.').slice(1).padEnd(9, '0');
    return BigInt(ms) * 1_000_000n + BigInt(frac === '' ? 0 : Number(frac));
  }
  return null;
}

/** A literal as a value of `type` (with the field's name for messages and type names). */
const UINT_MAX: Readonly<Record<string, number>> = {
  uint8: 255,
  uint16: 65535,
  uint24: 0xffffff,
  uint32: 0xffffffff,
};

function literalValue(e: Entity & { kind: 'literal' }, type: VType, fieldName: string): Val | Cidr {
  const at = e.pos;
  const fail = (message: string): never => {
    throw new FilterSyntaxError(`${message} at ${at}`, at);
  };
  const text = e.text;
  const found = `found '${text}'`;
  if (e.quoted === 'char' && (type === 'int' || type === 'float' || type === 'bool'))
    return text.charCodeAt(0);
  switch (type) {
    case 'int': {
      const n = e.quoted === 'none' ? parseInt64(text) : null;
      if (n !== null) {
        const max = UINT_MAX[fieldInfo(fieldName)?.type ?? ''];
        if (max !== undefined && (n < 0 || n > max)) fail(`${fieldName} is 0 to ${max}, not ${text}`);
        return n;
      }
      if ((fieldName === 'icmp.type' || fieldName === 'icmpv6.type') && e.quoted === 'none') {
        const t = typesForKey(text.toLowerCase());
        const v4 = fieldName === 'icmp.type';
        const v = v4 ? t.v4 : t.v6;
        if (v !== undefined) return v;
        const other = v4 ? t.v6 : t.v4;
        const hint =
          other !== undefined
            ? ` (it is an ${v4 ? 'ICMPv6' : 'ICMPv4'} type; use ${v4 ? 'icmpv6.type' : 'icmp.type'})`
            : '';
        fail(
          `unknown ${v4 ? 'ICMP' : 'ICMPv6'} type '${text}'${hint === '' ? '' : `${hint.slice(0, -1)})`}`.replace(
            /\)\)$/,
            ')',
          ),
        );
      }
      return fail(`expected a whole number for ${fieldName}, ${found}`);
    }
    case 'float':
    case 'reltime': {
      const n =
        e.quoted === 'none'
          ? (parseInt64(text) ?? (/^-?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(text) ? Number(text) : null))
          : null;
      if (n === null) return fail(`expected a number for ${fieldName}, ${found}`);
      return type === 'reltime' ? BigInt(Math.round(n * 1e9)) : n;
    }
    case 'bool': {
      const l = text.toLowerCase();
      if (l === 'true') return 1;
      if (l === 'false') return 0;
      const n = e.quoted === 'none' ? parseInt64(text) : null;
      if (n === null) return fail(`expected True, False or a number for ${fieldName}, ${found}`);
      return n !== 0 ? 1 : 0;
    }
    case 'ipv4':
    case 'ipv6': {
      const fam = type === 'ipv4' ? 4 : 6;
      const [addr, bitsText] = text.split('/');
      const bytes = e.quoted === 'char' ? null : addressBytes(addr ?? '', fam);
      if (bytes === null) {
        const otherFam = fam === 4 ? 6 : 4;
        if (addressBytes(addr ?? '', otherFam) !== null) {
          const other = fam === 4 ? fieldName.replace(/^ip\./, 'ipv6.') : fieldName.replace(/^ipv6\./, 'ip.');
          fail(`'${text}' is an IPv${otherFam} address but ${fieldName} is IPv${fam}; use ${other}`);
        }
        const names =
          /^[a-z]/i.test(text) && !/^[0-9a-f:]+$/i.test(text) ? ' (host names are not resolved)' : '';
        return fail(`expected an IPv${fam} address or prefix for ${fieldName}${names}, ${found}`);
      }
      if (bitsText === undefined)
        return type === 'ipv4'
          ? ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0
          : bytes;
      const bits = /^\d+$/.test(bitsText) ? Number(bitsText) : -1;
      const maxBits = fam === 4 ? 32 : 128;
      if (bits < 0 || bits > maxBits)
        fail(`bad prefix length '/${bitsText}': an IPv${fam} prefix is /0 to /${maxBits}`);
      return { net: bytes, bits };
    }
    case 'bytes': {
      if (e.quoted !== 'none') return utf8.encode(text);
      const b = parseByteString(text);
      if (b === null) return fail(`expected a byte string (like 0a:1b:2c) for ${fieldName}, ${found}`);
      return b;
    }
    case 'string':
      return text;
    case 'abstime': {
      const ns = parseAbsTime(text);
      if (ns === null)
        return fail(
          `expected a date and time (like "2024-05-01 12:00:00" or "May  1, 2024 12:00:00.5 UTC") for ${fieldName}`,
        );
      return ns;
    }
    case 'none':
      return fail(`${fieldName} has no value to compare: test it alone`);
  }
}

// ---- Helpers for special-purpose addresses (IANA registries) ----

const SPECIAL4: [string, number, string][] = [
  ['0.0.0.0', 8, 'This network'],
  ['10.0.0.0', 8, 'Private-Use'],
  ['100.64.0.0', 10, 'Shared Address Space'],
  ['127.0.0.0', 8, 'Loopback'],
  ['169.254.0.0', 16, 'Link Local'],
  ['172.16.0.0', 12, 'Private-Use'],
  ['192.0.0.0', 24, 'IETF Protocol Assignments'],
  ['192.0.2.0', 24, 'Documentation (TEST-NET-1)'],
  ['192.88.99.0', 24, 'Deprecated (6to4 Relay Anycast)'],
  ['192.168.0.0', 16, 'Private-Use'],
  ['198.18.0.0', 15, 'Benchmarking'],
  ['198.51.100.0', 24, 'Documentation (TEST-NET-2)'],
  ['203.0.113.0', 24, 'Documentation (TEST-NET-3)'],
  ['240.0.0.0', 4, 'Reserved'],
  ['255.255.255.255', 32, 'Limited Broadcast'],
];
const SPECIAL6: [string, number, string][] = [
  ['::1', 128, 'Loopback Address'],
  ['::', 128, 'Unspecified Address'],
  ['::ffff:0:0', 96, 'IPv4-mapped Address'],
  ['64:ff9b::', 96, 'IPv4-IPv6 Translat.'],
  ['100::', 64, 'Discard-Only Address Block'],
  ['2001::', 23, 'IETF Protocol Assignments'],
  ['2001:db8::', 32, 'Documentation'],
  ['2002::', 16, '6to4'],
  ['fc00::', 7, 'Unique-Local'],
  ['fe80::', 10, 'Link-Local Unicast'],
];
const special = (list: [string, number, string][], fam: 4 | 6): { c: Cidr; name: string }[] =>
  list.map(([a, bits, name]) => ({ c: { net: addressBytes(a, fam)!, bits }, name }));
const SPECIAL4_C = special(SPECIAL4, 4);
const SPECIAL6_C = special(SPECIAL6, 6);

function addrBytes(v: Val, type: VType): Uint8Array | null {
  if (type === 'ipv4' && typeof v === 'number') return ipv4Bytes(v);
  if (type === 'ipv6' && v instanceof Uint8Array) return v;
  return null;
}

function valueText(v: Val, type: VType): string {
  switch (type) {
    case 'ipv4':
      return Array.from(ipv4Bytes(v as number)).join('.');
    case 'ipv6':
      return formatIpv6(v as Uint8Array);
    case 'reltime': {
      const ns = v as bigint;
      return `${ns / 1_000_000_000n}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}`;
    }
    case 'bytes':
      return Array.from(v as Uint8Array, (x) => x.toString(16).padStart(2, '0')).join(':');
    default:
      return String(v);
  }
}

// ---- The compiler of entities and tests to closures ----

export type Predicate = (fm: FieldMap) => boolean;

function layerFilter(ranges: SliceRange[] | undefined): ((layer: number, count: number) => boolean) | null {
  if (ranges === undefined) return null;
  return (layer, count) =>
    ranges.some((r) => {
      const start = r.start < 0 ? count + 1 + r.start : r.start;
      const end =
        r.length !== undefined
          ? start + r.length - 1
          : r.end !== undefined
            ? r.end < 0
              ? count + 1 + r.end
              : r.end
            : count;
      return layer >= start && layer <= end;
    });
}

function sliceOf(b: Uint8Array, ranges: SliceRange[]): Uint8Array | null {
  const parts: Uint8Array[] = [];
  for (const r of ranges) {
    const start = r.start < 0 ? b.length + r.start : r.start;
    let end: number;
    if (r.length !== undefined) end = start + r.length;
    else if (r.end !== undefined) end = (r.end < 0 ? b.length + r.end : r.end) + 1;
    else end = b.length;
    if (start < 0 || end > b.length || end <= start) return null;
    parts.push(b.subarray(start, end));
  }
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export class Evaluator {
  /** Fields the filter reads (for the compiler: which can stay columnar). */
  readonly fields = new Set<string>();
  /** Uses regexes or byte searches (slower: the status says so). */
  slowForms = false;
  /** What reads the bytes, for the status line: 'regex', 'byte search', 'slices'. */
  readonly forms = new Set<string>();

  constructor(private readonly env: EvalEnv = {}) {}

  node(n: Node): Predicate {
    switch (n.kind) {
      case 'and': {
        const l = this.node(n.left);
        const r = this.node(n.right);
        return (fm) => l(fm) && r(fm);
      }
      case 'or': {
        const l = this.node(n.left);
        const r = this.node(n.right);
        return (fm) => l(fm) || r(fm);
      }
      case 'xor': {
        const l = this.node(n.left);
        const r = this.node(n.right);
        return (fm) => l(fm) !== r(fm);
      }
      case 'not': {
        const e = this.node(n.expr);
        return (fm) => !e(fm);
      }
      case 'test':
        return this.test(n.expr);
      case 'cmp':
        return this.cmp(n);
      case 'in':
        return this.inSet(n.left, n.items, n.negated, n.quantifier);
    }
  }

  /** A lone value: a field or protocol exists; `a & b` is non-zero; a function's result is true. */
  private test(e: Entity): Predicate {
    if (e.kind === 'literal') {
      const info = resolveField(e.text);
      if (info === undefined) throw unknownName(e.text, e.pos);
      const name = info.name;
      this.fields.add(name);
      return (fm) => fm.has(name);
    }
    if (e.kind === 'field') {
      const c = this.entity(e, null);
      return (fm) => c.values(fm).length > 0;
    }
    const c = this.entity(e, null);
    if (e.kind === 'arith' || c.type === 'bool')
      return (fm) =>
        c.values(fm).some((v) => (v instanceof Uint8Array ? v.some((x) => x !== 0) : v !== 0 && v !== 0n));
    return (fm) => c.values(fm).length > 0;
  }

  private isFieldWord(e: Entity): boolean {
    return (
      e.kind === 'literal' &&
      e.quoted === 'none' &&
      resolveField(e.text) !== undefined &&
      !/^[0-9]/.test(e.text)
    );
  }

  /** Compiles an entity; `hint` is the type a literal should take (from the other operand). */
  entity(e: Entity, hint: { type: VType; name: string } | null): Compiled {
    switch (e.kind) {
      case 'field':
      case 'literal': {
        if (e.kind === 'field' || this.isFieldWord(e)) {
          const name = e.kind === 'field' ? e.name : e.text;
          const info = resolveField(name);
          if (info === undefined) throw unknownName(name, e.pos);
          this.fields.add(info.name);
          const type = vtypeOf(info);
          const layers = layerFilter(e.kind === 'field' ? e.layers : undefined);
          const fname = info.name;
          return {
            type,
            field: fname,
            values: (fm) => {
              const occ = fm.occurrences(fname);
              if (occ.length === 0) return [];
              if (layers === null) return occ.map((o) => toVal(type, o.value));
              const count = occ[occ.length - 1]!.layer;
              return occ.filter((o) => layers(o.layer, count)).map((o) => toVal(type, o.value));
            },
          };
        }
        if (hint === null) {
          throw new FilterSyntaxError(
            `'${e.text}' is neither a field nor a protocol at ${e.pos}${suggestName(e.text)}`,
            e.pos,
          );
        }
        const v = literalValue(e, hint.type, hint.name);
        if (!(v instanceof Uint8Array) && typeof v === 'object') {
          // A CIDR literal: handled by the comparison (only == / != / in).
          const cidr = v;
          return { type: hint.type, values: () => [cidr as unknown as Val] };
        }
        return { type: hint.type, values: () => [v] };
      }
      case 'ref': {
        const info = resolveField(e.name);
        if (info === undefined) throw unknownName(e.name, e.pos);
        const type = vtypeOf(info);
        const ref = this.env.ref;
        return { type, values: () => (ref ? ref(info.name).map((v) => toVal(type, v)) : []) };
      }
      case 'neg': {
        const c = this.entity(e.expr, hint);
        if (c.type !== 'int' && c.type !== 'float' && c.type !== 'reltime')
          throw new FilterSyntaxError(`cannot negate a value of type ${c.type} at ${e.pos}`, e.pos);
        return {
          type: c.type,
          values: (fm) => c.values(fm).map((v) => (typeof v === 'bigint' ? -v : -(v as number))),
        };
      }
      case 'slice': {
        this.forms.add('slices');
        const c = this.entity(e.expr, null);
        if (
          c.type === 'int' ||
          c.type === 'float' ||
          c.type === 'bool' ||
          c.type === 'none' ||
          c.type === 'reltime' ||
          c.type === 'abstime'
        )
          throw new FilterSyntaxError(
            `cannot slice a value of type ${c.type} at ${e.pos}: slices take bytes, strings, addresses and protocols`,
            e.pos,
          );
        const ranges = e.ranges;
        const ctype = c.type;
        return {
          type: 'bytes',
          values: (fm) => {
            const out: Val[] = [];
            for (const v of c.values(fm)) {
              const b = asBytes(v, ctype);
              const s = b === null ? null : sliceOf(b, ranges);
              if (s !== null) out.push(s);
            }
            return out;
          },
        };
      }
      case 'arith':
        return this.arith(e, hint);
      case 'call':
        return this.call(e, hint);
    }
  }

  private arith(e: Entity & { kind: 'arith' }, hint: { type: VType; name: string } | null): Compiled {
    const leftIsLit = e.left.kind === 'literal' && !this.isFieldWord(e.left);
    const l = leftIsLit ? null : this.entity(e.left, hint);
    const r = this.entity(e.right, l !== null ? { type: l.type, name: l.field ?? hint?.name ?? '' } : hint);
    const left = l ?? this.entity(e.left, { type: r.type, name: r.field ?? '' });
    const type = left.type;
    if (e.op === '&') {
      if (type === 'bytes') {
        return {
          type: 'bytes',
          values: (fm) => {
            const out: Val[] = [];
            for (const a of left.values(fm))
              for (const b of r.values(fm)) {
                const x = a as Uint8Array;
                const y = b as Uint8Array;
                if (x.length !== y.length) continue;
                out.push(x.map((v, i) => v & y[i]!));
              }
            return out;
          },
        };
      }
      if (type !== 'int' && type !== 'bool')
        throw new FilterSyntaxError(`'&' needs integers or byte slices, not ${type} at ${e.pos}`, e.pos);
    } else if (type !== 'int' && type !== 'float' && type !== 'reltime') {
      throw new FilterSyntaxError(`cannot '${e.op}' values of type ${type} at ${e.pos}`, e.pos);
    }
    const op = e.op;
    const f =
      type === 'reltime'
        ? (a: bigint, b: bigint): bigint =>
            op === '+' ? a + b : op === '-' ? a - b : op === '*' ? a * b : op === '/' ? a / b : a % b
        : null;
    const num = (a: number, b: number): number | null => {
      switch (op) {
        case '+':
          return a + b;
        case '-':
          return a - b;
        case '*':
          return a * b;
        case '/':
          return b === 0 ? null : type === 'int' ? Math.trunc(a / b) : a / b;
        case '%':
          return b === 0 ? null : a % b;
        case '&':
          return (a & b) >>> 0;
      }
    };
    return {
      type,
      values: (fm) => {
        const out: Val[] = [];
        const bs = r.values(fm);
        for (const a of left.values(fm))
          for (const b of bs) {
            if (f !== null) out.push(f(a as bigint, b as bigint));
            else {
              const v = num(a as number, b as number);
              if (v !== null) out.push(v);
            }
          }
        return out;
      },
    };
  }

  private call(e: Entity & { kind: 'call' }, hint: { type: VType; name: string } | null): Compiled {
    const args = (n: number, what: string): Compiled[] => {
      if (e.args.length !== n && n >= 0)
        throw new FilterSyntaxError(
          `${e.name}() takes ${n === 1 ? 'one argument' : `${n} arguments`} (${what}) at ${e.pos}`,
          e.pos,
        );
      return e.args.map((a) => this.entity(a, hint));
    };
    const map = (c: Compiled, type: VType, f: (v: Val) => Val | null): Compiled => ({
      type,
      values: (fm) => {
        const out: Val[] = [];
        for (const v of c.values(fm)) {
          const x = f(v);
          if (x !== null) out.push(x);
        }
        return out;
      },
    });
    switch (e.name) {
      case 'len': {
        const [c] = args(1, 'a string, bytes or address field');
        const t = c!.type;
        if (
          t === 'int' ||
          t === 'float' ||
          t === 'bool' ||
          t === 'none' ||
          t === 'abstime' ||
          t === 'reltime'
        )
          throw new FilterSyntaxError(`len() takes a string, bytes or address, not ${t} at ${e.pos}`, e.pos);
        return map(c!, 'int', (v) => asBytes(v, t)?.length ?? null);
      }
      case 'count': {
        const [c] = args(1, 'a field');
        if (c!.field === undefined) throw new FilterSyntaxError(`count() takes a field at ${e.pos}`, e.pos);
        return { type: 'int', values: (fm) => [c!.values(fm).length] };
      }
      case 'string': {
        const [c] = args(1, 'a non-string field');
        const t = c!.type;
        if (t === 'string' || t === 'bytes')
          throw new FilterSyntaxError(`string() converts numbers and addresses, not ${t} at ${e.pos}`, e.pos);
        return map(c!, 'string', (v) => valueText(v, t));
      }
      case 'upper':
      case 'lower': {
        const [c] = args(1, 'a string field');
        if (c!.type !== 'string')
          throw new FilterSyntaxError(`${e.name}() takes a string, not ${c!.type} at ${e.pos}`, e.pos);
        return map(c!, 'string', (v) =>
          e.name === 'upper' ? String(v).toUpperCase() : String(v).toLowerCase(),
        );
      }
      case 'abs': {
        const [c] = args(1, 'a number');
        if (c!.type !== 'int' && c!.type !== 'float' && c!.type !== 'reltime')
          throw new FilterSyntaxError(`abs() takes a number, not ${c!.type} at ${e.pos}`, e.pos);
        return map(c!, c!.type, (v) => (typeof v === 'bigint' ? (v < 0n ? -v : v) : Math.abs(v as number)));
      }
      case 'min':
      case 'max': {
        if (e.args.length === 0)
          throw new FilterSyntaxError(`${e.name}() needs at least one argument at ${e.pos}`, e.pos);
        const isLit = (a: Entity): boolean => a.kind === 'literal' && !this.isFieldWord(a);
        const firstNonLit = e.args.find((a) => !isLit(a));
        if (firstNonLit === undefined)
          throw new FilterSyntaxError(`${e.name}() needs a field among its arguments at ${e.pos}`, e.pos);
        const first = this.entity(firstNonLit, hint);
        const typed = e.args.map((a) =>
          isLit(a) ? this.entity(a, { type: first.type, name: first.field ?? '' }) : this.entity(a, hint),
        );
        for (const c of typed)
          if (c.type !== first.type)
            throw new FilterSyntaxError(`${e.name}() arguments must have one type at ${e.pos}`, e.pos);
        const type = first.type;
        const sign = e.name === 'min' ? -1 : 1;
        return {
          type,
          values: (fm) => {
            let best: Val | null = null;
            for (const c of typed)
              for (const v of c.values(fm))
                if (best === null || compareVals(v, best, type) * sign > 0) best = v;
            return best === null ? [] : [best];
          },
        };
      }
      case 'ip_rfc1918':
      case 'ip_linklocal':
      case 'ip_multicast':
      case 'ip_special_name': {
        const [c] = args(1, 'an IPv4 or IPv6 address field');
        const t = c!.type;
        if (t !== 'ipv4' && t !== 'ipv6')
          throw new FilterSyntaxError(`${e.name}() takes an IP address, not ${t} at ${e.pos}`, e.pos);
        const net = (a: string, bits: number, fam: 4 | 6): Cidr => ({ net: addressBytes(a, fam)!, bits });
        const rfc1918 = [net('10.0.0.0', 8, 4), net('172.16.0.0', 12, 4), net('192.168.0.0', 16, 4)];
        const ll = t === 'ipv4' ? net('169.254.0.0', 16, 4) : net('fe80::', 10, 6);
        const mc = t === 'ipv4' ? net('224.0.0.0', 4, 4) : net('ff00::', 8, 6);
        if (e.name === 'ip_special_name') {
          const list = t === 'ipv4' ? SPECIAL4_C : SPECIAL6_C;
          return map(c!, 'string', (v) => {
            const b = addrBytes(v, t)!;
            return list.find((s) => cidrMatch(s.c, b))?.name ?? null;
          });
        }
        const test =
          e.name === 'ip_rfc1918'
            ? (b: Uint8Array) => t === 'ipv4' && rfc1918.some((r) => cidrMatch(r, b))
            : e.name === 'ip_linklocal'
              ? (b: Uint8Array) => cidrMatch(ll, b)
              : (b: Uint8Array) => cidrMatch(mc, b);
        return map(c!, 'bool', (v) => (test(addrBytes(v, t)!) ? 1 : 0));
      }
      default:
        throw new FilterSyntaxError(
          `unknown function '${e.name}' at ${e.pos}: use len, count, string, upper, lower, abs, min, max, ip_rfc1918, ip_linklocal, ip_multicast, ip_special_name`,
          e.pos,
        );
    }
  }

  /** Both operands compiled, literals typed after the other side. */
  private operands(left: Entity, right: Entity, opPos: number): [Compiled, Compiled] {
    const leftLit = left.kind === 'literal' && !this.isFieldWord(left);
    const rightLit = right.kind === 'literal' && !this.isFieldWord(right);
    if (leftLit && rightLit) {
      if (left.kind === 'literal' && left.quoted === 'none' && /^[a-z_]/i.test(left.text))
        throw unknownName(left.text, left.pos);
      throw new FilterSyntaxError(
        `a comparison needs a field on one side at ${left.pos}: both sides are constants`,
        left.pos,
      );
    }
    if (leftLit) {
      const r = this.entity(right, null);
      return [this.entity(left, { type: r.type, name: r.field ?? '' }), r];
    }
    const l = this.entity(left, null);
    const r = this.entity(right, { type: l.type, name: l.field ?? '' });
    if (!compatible(l.type, r.type))
      throw new FilterSyntaxError(`cannot compare ${l.type} with ${r.type} at ${opPos}`, opPos);
    return [l, r];
  }

  private cmp(n: Node & { kind: 'cmp' }): Predicate {
    if (n.op === 'matches') return this.matches(n);
    const [l, r] = this.operands(n.left, n.right, n.opPos);
    const type = l.type;
    if (n.op === 'contains') {
      if (type !== 'bytes' && type !== 'string')
        throw new FilterSyntaxError(
          `'contains' searches bytes and strings, not ${type} at ${n.opPos}`,
          n.opPos,
        );
      this.slowForms = true;
      this.forms.add('byte search');
      const test = (a: Val, b: Val): boolean =>
        typeof a === 'string' && typeof b === 'string'
          ? a.includes(b)
          : indexOfBytes(asBytes(a, type)!, asBytes(b, r.type) ?? new Uint8Array(0)) >= 0;
      return quantified(l, r, test, n.quantifier ?? 'any');
    }
    const eqLike = n.op === 'any_eq' || n.op === 'all_ne' || n.op === 'all_eq' || n.op === 'any_ne';
    if (type === 'none')
      throw new FilterSyntaxError(`the field has no value to compare; test it alone at ${n.opPos}`, n.opPos);
    const test = (a: Val, b: Val): boolean => {
      if (typeof b === 'object' && !(b instanceof Uint8Array)) {
        // CIDR
        const c = b as unknown as Cidr;
        const m = cidrMatch(c, addrBytes(a, type)!);
        if (n.op === 'any_eq' || n.op === 'all_eq') return m;
        if (n.op === 'all_ne' || n.op === 'any_ne') return !m;
        const d = compareVals(a, type === 'ipv4' ? bytesToV4(c.net) : c.net, type);
        return ordered(n.op, d);
      }
      const d = compareVals(a, b, type);
      return ordered(n.op, d);
    };
    void eqLike;
    const quant = n.quantifier ?? (n.op === 'all_ne' || n.op === 'all_eq' ? 'all' : 'any');
    return quantified(l, r, test, quant);
  }

  private matches(n: Node & { kind: 'cmp' }): Predicate {
    this.slowForms = true;
    this.forms.add('regex');
    const l = this.entity(n.left, null);
    if (l.type !== 'string' && l.type !== 'bytes')
      throw new FilterSyntaxError(
        `'matches' takes a string on the left (use string(${l.field ?? 'x'})) at ${n.opPos}`,
        n.opPos,
      );
    if (n.right.kind !== 'literal' || n.right.quoted !== 'string')
      throw new FilterSyntaxError(
        `'matches' needs a double-quoted regular expression at ${n.right.pos}`,
        n.right.pos,
      );
    let pattern = n.right.text;
    let flags = 'i';
    if (pattern.startsWith('(?-i)')) {
      pattern = pattern.slice(5);
      flags = '';
    } else if (pattern.startsWith('(?i)')) pattern = pattern.slice(4);
    let re: RegExp;
    try {
      re = new RegExp(pattern, flags);
    } catch (err) {
      throw new FilterSyntaxError(
        `invalid regular expression at ${n.right.pos}: ${(err as Error).message}`,
        n.right.pos,
      );
    }
    const dec = new TextDecoder('latin1');
    const quant = n.quantifier ?? 'any';
    const test = (v: Val): boolean => re.test(typeof v === 'string' ? v : dec.decode(v as Uint8Array));
    return (fm) => {
      const vs = l.values(fm);
      if (vs.length === 0) return false;
      return quant === 'any' ? vs.some(test) : vs.every(test);
    };
  }

  private inSet(
    left: Entity,
    items: SetItem[],
    negated: boolean,
    quantifier: 'any' | 'all' | undefined,
  ): Predicate {
    const l = this.entity(left, null);
    const type = l.type;
    const hint = { type, name: l.field ?? '' };
    const members = items.map((it) => ({
      lo: this.entity(it.lo, hint),
      hi: it.hi === undefined ? null : this.entity(it.hi, hint),
    }));
    for (const [k, m] of members.entries()) {
      if (!compatible(type, m.lo.type))
        throw new FilterSyntaxError(
          `cannot compare ${type} with ${m.lo.type} at ${items[k]!.lo.pos}`,
          items[k]!.lo.pos,
        );
      if (m.hi !== null && (type === 'bytes' || type === 'string' || type === 'bool'))
        throw new FilterSyntaxError(
          `a range needs numbers, times or addresses at ${items[k]!.lo.pos}`,
          items[k]!.lo.pos,
        );
    }
    const inSet = (fm: FieldMap, v: Val): boolean =>
      members.some(({ lo, hi }) => {
        const los = lo.values(fm);
        if (hi === null)
          return los.some((x) =>
            typeof x === 'object' && !(x instanceof Uint8Array)
              ? cidrMatch(x, addrBytes(v, type)!)
              : compareVals(v, x, type) === 0,
          );
        const his = hi.values(fm);
        return los.some((a) => his.some((b) => compareVals(v, a, type) >= 0 && compareVals(v, b, type) <= 0));
      });
    const quant = quantifier ?? 'any';
    const positive: Predicate = (fm) => {
      const vs = l.values(fm);
      if (vs.length === 0) return false;
      return quant === 'any' ? vs.some((v) => inSet(fm, v)) : vs.every((v) => inSet(fm, v));
    };
    return negated ? (fm) => !positive(fm) : positive;
  }
}

function bytesToV4(b: Uint8Array): number {
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

function ordered(op: CmpOp, d: number): boolean {
  switch (op) {
    case 'any_eq':
    case 'all_eq':
      return d === 0;
    case 'all_ne':
    case 'any_ne':
      return d !== 0;
    case 'gt':
      return d > 0;
    case 'ge':
      return d >= 0;
    case 'lt':
      return d < 0;
    case 'le':
      return d <= 0;
    default:
      return false;
  }
}

function quantified(
  l: Compiled,
  r: Compiled,
  test: (a: Val, b: Val) => boolean,
  quant: 'any' | 'all',
): Predicate {
  return (fm) => {
    const as = l.values(fm);
    if (as.length === 0) return false;
    const bs = r.values(fm);
    if (bs.length === 0) return false;
    if (quant === 'any') {
      for (const a of as) for (const b of bs) if (test(a, b)) return true;
      return false;
    }
    for (const a of as) for (const b of bs) if (!test(a, b)) return false;
    return true;
  };
}

function compatible(a: VType, b: VType): boolean {
  if (a === b) return true;
  const num = (t: VType): boolean => t === 'int' || t === 'float' || t === 'bool';
  if (num(a) && num(b)) return true;
  if ((a === 'bytes' && b === 'string') || (a === 'string' && b === 'bytes')) return true;
  return false;
}

export function compareVals(a: Val, b: Val, type: VType): number {
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    const x = asBytes(a, type);
    const y = asBytes(b, type);
    return x && y ? bytesCmp(x, y) : NaN;
  }
  if (typeof a === 'bigint' || typeof b === 'bigint') {
    const x = BigInt(a);
    const y = BigInt(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (typeof a === 'string' || typeof b === 'string') {
    const x = String(a);
    const y = String(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return a < b ? -1 : a > b ? 1 : a === b ? 0 : NaN;
}

function unknownName(name: string, pos: number): FilterSyntaxError {
  return new FilterSyntaxError(`unknown field '${name}' at ${pos}${suggestName(name)}`, pos);
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, k) => k);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const keep = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = keep;
    }
  }
  return d[b.length]!;
}

export function suggestName(name: string): string {
  let best = '';
  let bestD = 3;
  for (const f of [...ALL_FIELD_NAMES, ...Object.keys(FIELD_ALIASES)]) {
    const dist = editDistance(name.toLowerCase(), f);
    if (dist < bestD) {
      bestD = dist;
      best = f;
    }
  }
  return best ? ` (did you mean '${best}'?)` : '';
}
