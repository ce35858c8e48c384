/**
 * Compiles a parsed display filter into one specialised scan loop over a store chunk's columns.
 *
 * The loop is generated JavaScript (`new Function`): every field test becomes an inline expression on
 * the typed-array columns, and every test whose answer depends on a small domain (ICMP type per family,
 * interface, direction, an address id) becomes a lookup in a precomputed Uint8Array. A closure tree
 * would cost a megamorphic call per node per record; the generated loop is one tight loop the JIT
 * optimises whole (about 10x faster at 10 M records). Only numbers the compiler produced and table
 * indices are spliced into the source, never filter text, so a filter cannot inject code.
 *
 * Semantics (as Wireshark's where the field exists there):
 * - A test on a field the record does not have is false, whatever the operator: `ip.src != 1.2.3.4`
 *   and `icmp.seq != 5` match no IPv6 record and no non-echo record; `rtt > 0` only matches replies.
 *   Negate the whole test (`!(ip.src == 1.2.3.4)`) to include records without the field.
 * - `!=` is Wireshark's "all not equal" (`!==`, the meaning of `!=` since Wireshark 3.6): on the
 *   two-valued `ip.addr` / `ipv6.addr`, `ip.addr != X` means neither the source nor the destination is
 *   X (for IPv4 records), which is `!(ip.addr == X)` restricted to records that have the field.
 *   `ip.addr == X` and `ip.addr in {...}` match when either address does.
 * - `icmp.type`, `icmp.code`, `icmp.id`, `icmp.seq` are family-neutral here (every record is ICMP or
 *   ICMPv6): `icmp.type == 3` tests the raw type number in both families, while a type name stands for
 *   its number in each family (`icmp.type == echo-request` is v4 type 8 or v6 type 128; a name that
 *   exists in one family only, like `packet-too-big`, matches that family only, and `!=` a name matches
 *   every record of the other family). `icmpv6.type` / `icmpv6.code` exist only for ICMPv6.
 *   The bare protocol `icmp` is ICMPv4 only, as in Wireshark (use `ip` / `ipv6` / `icmpv6` too).
 * - `ip.ttl` exists for IPv4, `ipv6.hlim` for IPv6, `ttl` for both.
 * - `echo`, `error`, `nd` select a message kind (electron/common/icmp.ts `messageKind`).
 * - `dir` is in / out / fwd (forward) / unknown; `hook` is the netfilter hook that saw the packet
 *   (prerouting, local-in, forward, local-out, postrouting, or none for AF_PACKET and files).
 * - A bare field tests its presence: `icmp.id` = echo messages, `rtt` = replies matched to a request.
 */
import { ICMP4_TYPES, ICMP6_TYPES, messageKind, typesForKey } from '../../common/icmp.js';
import type { Chunk } from '../store.js';
import { type AddressTerm, addressBytes, parseAddressTerm, termMatches } from './address.js';
import { FilterSyntaxError, type Node, type RelOp, type SetItem, type Value, parseFilter } from './parse.js';

/** What a filter needs to know about the capture besides the columns. */
export interface FilterEnv {
  addresses: { readonly text: readonly string[]; readonly family: readonly number[] };
  interfaces: { readonly values: readonly string[] };
}

export interface CompiledFilter {
  readonly text: string;
  /**
   * Tests records `from..to-1` of `chunk` and writes the matching record indices (`base + i`, where
   * `base` is the chunk's first record index) to `out` from `outAt` on; returns the new end.
   */
  scan(chunk: Chunk, from: number, to: number, out: Uint32Array, outAt: number, base: number): number;
  /** Tests one record (index = base + i). */
  matches(chunk: Chunk, i: number, base: number): boolean;
}

type FieldKind = 'addr' | 'uint' | 'float' | 'type' | 'dir' | 'hook' | 'iface';

interface FieldDef {
  kind: FieldKind;
  /** The field exists only for this family. */
  family?: 4 | 6;
  /** For addresses: which of the record's addresses. */
  which?: 'src' | 'dst' | 'both';
  /** Value expression (uint, float). */
  expr?: string;
  /** Presence condition besides the family. */
  presence?: string;
  max?: number;
}

const HAS_ECHO = '(misc[i] & 0x1000000) !== 0';

const FIELDS: Readonly<Record<string, FieldDef>> = {
  'ip.src': { kind: 'addr', family: 4, which: 'src' },
  'ip.dst': { kind: 'addr', family: 4, which: 'dst' },
  'ip.addr': { kind: 'addr', family: 4, which: 'both' },
  'ipv6.src': { kind: 'addr', family: 6, which: 'src' },
  'ipv6.dst': { kind: 'addr', family: 6, which: 'dst' },
  'ipv6.addr': { kind: 'addr', family: 6, which: 'both' },
  'icmp.type': { kind: 'type' },
  'icmpv6.type': { kind: 'type', family: 6 },
  'icmp.code': { kind: 'uint', expr: '((meta[i] >>> 8) & 255)', max: 255 },
  'icmpv6.code': { kind: 'uint', family: 6, expr: '((meta[i] >>> 8) & 255)', max: 255 },
  'icmp.id': { kind: 'uint', expr: '(idSeq[i] >>> 16)', presence: HAS_ECHO, max: 0xffff },
  'icmp.seq': { kind: 'uint', expr: '(idSeq[i] & 65535)', presence: HAS_ECHO, max: 0xffff },
  dir: { kind: 'dir' },
  hook: { kind: 'hook' },
  iface: { kind: 'iface' },
  len: { kind: 'uint', expr: '(len[i] & 65535)', max: 0xffff },
  ttl: { kind: 'uint', expr: '(misc[i] & 255)', max: 255 },
  'ip.ttl': { kind: 'uint', family: 4, expr: '(misc[i] & 255)', max: 255 },
  'ipv6.hlim': { kind: 'uint', family: 6, expr: '(misc[i] & 255)', max: 255 },
  rtt: { kind: 'float', expr: 'rtt[i]', presence: 'rtt[i] === rtt[i]' },
  /** Echo requests without a reply within the timeout (aggregator.ts sets MISC_F_NO_RESPONSE). */
  'icmp.resp_not_found': { kind: 'uint', expr: '1', presence: '(misc[i] & 0x20000000) !== 0', max: 1 },
  'frame.number': { kind: 'uint', expr: '(base + i + 1)', max: 0xffffffff },
  'frame.time_relative': { kind: 'float', expr: '(tsRel[i] / 1e9)' },
};

const ALIASES: Readonly<Record<string, string>> = {
  'icmpv6.resp_not_found': 'icmp.resp_not_found',
  'icmp.ident': 'icmp.id',
  'frame.len': 'len',
  'frame.interface_name': 'iface',
};

/** Bare words that are not fields: protocols and message kinds. */
const WORDS = ['ip', 'ipv6', 'icmp', 'icmpv6', 'echo', 'error', 'nd'] as const;

/** Every name the filter accepts, for completion in the renderer. */
export const FILTER_FIELDS: readonly string[] = [...Object.keys(FIELDS), ...Object.keys(ALIASES), ...WORDS];

const DIR_NAMES: Readonly<Record<string, number>> = { in: 0, out: 1, fwd: 2, forward: 2, unknown: 3 };
/** store.ts HOOK_NAMES, and 'none' (AF_PACKET, files) */
const HOOK_NAMES: Readonly<Record<string, number>> = {
  prerouting: 0,
  'local-in': 1,
  forward: 2,
  'local-out': 3,
  postrouting: 4,
  none: 7,
};

/** Index of a record's (family, type) in a 512-entry type table. */
const TYPE_INDEX = '((meta[i] & 255) | ((meta[i] >>> 17) & 256))';

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

function suggest(name: string): string {
  let best = '';
  let bestD = 3;
  for (const f of FILTER_FIELDS) {
    const dist = editDistance(name.toLowerCase(), f);
    if (dist < bestD) {
      best = f;
      bestD = dist;
    }
  }
  return best ? ` (did you mean '${best}'?)` : '';
}

interface AddressTable {
  terms: AddressTerm[];
  family: 4 | 6;
  hits: Uint8Array;
  known: number;
}

interface NameTable {
  match: (name: string) => boolean;
  hits: Uint8Array;
  known: number;
}

class Compiler {
  /** Tables the generated code reads as `t0`, `t1`, ... */
  readonly tables: Uint8Array[] = [];
  readonly addressTables: { slot: number; table: AddressTable }[] = [];
  readonly nameTables: { slot: number; table: NameTable }[] = [];
  readonly used = new Set<string>();

  private table(t: Uint8Array): string {
    this.tables.push(t);
    return `t${this.tables.length - 1}`;
  }

  private use(code: string): string {
    for (const col of ['tsRel', 'src', 'dst', 'meta', 'idSeq', 'misc', 'len', 'rtt']) {
      if (new RegExp(`\\b${col}\\[`).test(code)) this.used.add(col);
    }
    return code;
  }

  compile(node: Node): string {
    switch (node.kind) {
      case 'and':
        return `(${this.compile(node.left)} && ${this.compile(node.right)})`;
      case 'or':
        return `(${this.compile(node.left)} || ${this.compile(node.right)})`;
      case 'not':
        return `!(${this.compile(node.expr)})`;
      case 'word':
        return `(${this.use(this.word(node.name, node.pos))})`;
      case 'cmp':
        return `(${this.use(this.test(node.field, node.fieldPos, node.opPos, node.op, [{ lo: node.value }]))})`;
      case 'in':
        return `(${this.use(this.test(node.field, node.fieldPos, node.opPos, 'in', node.items))})`;
    }
  }

  private field(name: string, pos: number): FieldDef {
    const lower = name.toLowerCase();
    const def = FIELDS[ALIASES[lower] ?? lower];
    if (def === undefined) {
      const isWord = (WORDS as readonly string[]).includes(lower);
      const why = isWord
        ? `'${name}' is a protocol or kind and has no value to compare`
        : `unknown field '${name}'`;
      throw new FilterSyntaxError(`${why} at ${pos}${isWord ? '' : suggest(name)}`, pos);
    }
    return def;
  }

  private familyCond(family: 4 | 6 | undefined): string {
    return family === undefined ? '' : `(meta[i] >>> 24) === ${family}`;
  }

  private presence(def: FieldDef): string {
    const parts = [this.familyCond(def.family), def.presence ?? ''].filter((p) => p !== '');
    return parts.length === 0 ? 'true' : parts.join(' && ');
  }

  private word(name: string, pos: number): string {
    const lower = name.toLowerCase();
    switch (lower) {
      case 'ip':
      case 'icmp':
        return '(meta[i] >>> 24) === 4';
      case 'ipv6':
      case 'icmpv6':
        return '(meta[i] >>> 24) === 6';
      case 'echo':
      case 'error':
      case 'nd': {
        const t = new Uint8Array(512);
        for (let type = 0; type < 256; type++) {
          t[type] = messageKind(4, type) === lower ? 1 : 0;
          t[256 + type] = messageKind(6, type) === lower ? 1 : 0;
        }
        return `${this.table(t)}[${TYPE_INDEX}] !== 0`;
      }
    }
    const def = FIELDS[ALIASES[lower] ?? lower];
    if (def === undefined) {
      throw new FilterSyntaxError(`unknown field or protocol '${name}' at ${pos}${suggest(name)}`, pos);
    }
    return `(${this.presence(def)})`;
  }

  private test(name: string, fieldPos: number, opPos: number, op: RelOp | 'in', items: SetItem[]): string {
    const def = this.field(name, fieldPos);
    const ordered = op !== '==' && op !== '!=' && op !== 'in';
    for (const item of items) {
      if (
        item.hi !== undefined &&
        (def.kind === 'addr' || def.kind === 'iface' || def.kind === 'dir' || def.kind === 'hook')
      ) {
        throw new FilterSyntaxError(
          `a range needs numbers: ${name} takes single values at ${item.lo.pos}`,
          item.lo.pos,
        );
      }
    }
    if (
      ordered &&
      (def.kind === 'addr' || def.kind === 'iface' || def.kind === 'dir' || def.kind === 'hook')
    ) {
      throw new FilterSyntaxError(`${name} compares with == or != (or 'in'), not '${op}' at ${opPos}`, opPos);
    }
    switch (def.kind) {
      case 'addr':
        return this.addressTest(name, def, op, items);
      case 'iface':
        return this.ifaceTest(op, items);
      case 'dir':
        return this.enumTest(
          op,
          items,
          DIR_NAMES,
          3,
          '((meta[i] >>> 16) & 255)',
          'a direction (in, out, fwd, unknown)',
        );
      case 'hook':
        return this.enumTest(
          op,
          items,
          HOOK_NAMES,
          7,
          '((misc[i] >>> 26) & 7)',
          'a hook (prerouting, local-in, forward, local-out, postrouting, none)',
        );
      case 'type':
        return this.typeTest(name, def, op, items);
      case 'uint':
      case 'float':
        return this.numberTest(name, def, op, items);
    }
  }

  private addressTest(name: string, def: FieldDef, op: RelOp | 'in', items: SetItem[]): string {
    const family = def.family!;
    const terms = items.map(({ lo }) => {
      const term = lo.quoted ? null : parseAddressTerm(lo.text);
      if (term === null) {
        throw new FilterSyntaxError(
          `expected an IPv${family} address or prefix for ${name} at ${lo.pos}, found '${lo.text}'`,
          lo.pos,
        );
      }
      if ('error' in term) throw new FilterSyntaxError(`${term.error} at ${lo.pos}`, lo.pos);
      if (term.family !== family) {
        const other = family === 4 ? name.replace(/^ip\./, 'ipv6.') : name.replace(/^ipv6\./, 'ip.');
        throw new FilterSyntaxError(
          `'${lo.text}' is an IPv${term.family} address but ${name} is IPv${family} at ${lo.pos}; use ${other}`,
          lo.pos,
        );
      }
      return term;
    });
    const table: AddressTable = { terms, family, hits: new Uint8Array(0), known: 0 };
    const t = this.table(table.hits);
    this.addressTables.push({ slot: this.tables.length - 1, table });
    const any =
      def.which === 'src'
        ? `${t}[src[i]]`
        : def.which === 'dst'
          ? `${t}[dst[i]]`
          : `(${t}[src[i]] | ${t}[dst[i]])`;
    if (op === '!=') return `((meta[i] >>> 24) === ${family} && ${any} === 0)`;
    return `${any} === 1`;
  }

  private ifaceTest(op: RelOp | 'in', items: SetItem[]): string {
    const names = new Set(items.map((item) => item.lo.text));
    const table: NameTable = { match: (n) => names.has(n), hits: new Uint8Array(0), known: 0 };
    const t = this.table(table.hits);
    this.nameTables.push({ slot: this.tables.length - 1, table });
    return `${t}[(misc[i] >>> 8) & 65535] ${op === '!=' ? '!==' : '==='} 1`;
  }

  /** A field with a few named values (a bit mask of the matching ones). */
  private enumTest(
    op: RelOp | 'in',
    items: SetItem[],
    names: Readonly<Record<string, number>>,
    max: number,
    expr: string,
    what: string,
  ): string {
    let mask = 0;
    for (const { lo } of items) {
      const text = lo.text.toLowerCase();
      const v = names[text] ?? (/^\d$/.test(text) && Number(text) <= max ? Number(text) : undefined);
      if (v === undefined || lo.quoted) {
        throw new FilterSyntaxError(`expected ${what} at ${lo.pos}, found '${lo.text}'`, lo.pos);
      }
      mask |= 1 << v;
    }
    if (op === '!=') mask = ~mask & ((2 << max) - 1);
    return `((${mask} >>> ${expr}) & 1) === 1`;
  }

  private typeTest(name: string, def: FieldDef, op: RelOp | 'in', items: SetItem[]): string {
    // Each value becomes a number per family (undefined: the name does not exist in that family).
    const perFamily = (v: Value): { v4?: number; v6?: number } => {
      if (!v.quoted && /^(0x[0-9a-f]+|\d+)$/i.test(v.text)) {
        const n = Number(v.text);
        if (n > 255) throw new FilterSyntaxError(`${name} is 0 to 255, not ${v.text} at ${v.pos}`, v.pos);
        return def.family === 6 ? { v6: n } : { v4: n, v6: n };
      }
      const types = typesForKey(v.text.toLowerCase());
      if (def.family === 6) delete types.v4;
      if (types.v4 === undefined && types.v6 === undefined) {
        const known = new Set(
          [...Object.values(ICMP4_TYPES), ...Object.values(ICMP6_TYPES)].map((t) => t.key),
        );
        const which = def.family === 6 ? 'ICMPv6 type' : 'ICMP type';
        const hint = def.family === 6 && known.has(v.text.toLowerCase()) ? ' (it is an ICMPv4 type)' : '';
        throw new FilterSyntaxError(`unknown ${which} '${v.text}' at ${v.pos}${hint}`, v.pos);
      }
      return types;
    };
    const resolved = items.map((item) => ({
      lo: perFamily(item.lo),
      hi: item.hi === undefined ? undefined : perFamily(item.hi),
    }));
    const t = new Uint8Array(512);
    for (const family of [4, 6] as const) {
      if (def.family !== undefined && def.family !== family) continue;
      const key = family === 4 ? 'v4' : 'v6';
      for (let type = 0; type < 256; type++) {
        let hit: boolean;
        if (op === 'in') {
          hit = resolved.some(({ lo, hi }) => {
            const a = lo[key];
            if (hi === undefined) return a === type;
            const b = hi[key];
            return a !== undefined && b !== undefined && type >= a && type <= b;
          });
        } else {
          const v = resolved[0]!.lo[key];
          hit = v === undefined ? op === '!=' : compare(type, op, v);
        }
        t[(family === 6 ? 256 : 0) + type] = hit ? 1 : 0;
      }
    }
    return `${this.table(t)}[${TYPE_INDEX}] !== 0`;
  }

  private numberTest(name: string, def: FieldDef, op: RelOp | 'in', items: SetItem[]): string {
    const parse = (v: Value): number => {
      const ok =
        def.kind === 'float' ? /^(\d+(\.\d*)?|\.\d+)$/.test(v.text) : /^(0x[0-9a-f]+|\d+)$/i.test(v.text);
      const n = Number(v.text);
      if (v.quoted || !ok || !Number.isFinite(n)) {
        const what = def.kind === 'float' ? 'a number' : 'a whole number';
        throw new FilterSyntaxError(`expected ${what} for ${name} at ${v.pos}, found '${v.text}'`, v.pos);
      }
      if (def.max !== undefined && n > def.max) {
        throw new FilterSyntaxError(`${name} is 0 to ${def.max}, not ${v.text} at ${v.pos}`, v.pos);
      }
      return n;
    };
    const presence = this.presence(def);
    const guard = presence === 'true' ? '' : `${presence} && `;
    const expr = def.expr!;
    if (op !== 'in') {
      let v = parse(items[0]!.lo);
      if (def.expr === 'rtt[i]') v = Math.fround(v); // the column is Float32: compare what is stored
      const js = op === '==' ? '===' : op === '!=' ? '!==' : op;
      return `(${guard}${expr} ${js} ${v})`;
    }
    const ranges = items.map((item) => {
      const lo = parse(item.lo);
      const hi = item.hi === undefined ? lo : parse(item.hi);
      if (hi < lo) {
        throw new FilterSyntaxError(
          `empty range ${item.lo.text}..${item.hi!.text} at ${item.lo.pos}`,
          item.lo.pos,
        );
      }
      return def.expr === 'rtt[i]' ? [Math.fround(lo), Math.fround(hi)] : [lo, hi];
    });
    if (def.kind === 'uint' && def.max! <= 0xffff) {
      const t = new Uint8Array(def.max! + 1);
      for (const [lo, hi] of ranges) t.fill(1, Math.ceil(lo!), Math.floor(hi!) + 1);
      return `(${guard}${this.table(t)}[${expr}] === 1)`;
    }
    const tests = ranges.map(([lo, hi]) => (lo === hi ? `v === ${lo}` : `(v >= ${lo} && v <= ${hi})`));
    return `(${guard}((v = ${expr}), ${tests.join(' || ')}))`;
  }
}

function compare(a: number, op: RelOp, b: number): boolean {
  switch (op) {
    case '==':
      return a === b;
    case '!=':
      return a !== b;
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '>':
      return a > b;
    case '>=':
      return a >= b;
  }
}

function refreshAddresses(table: AddressTable, env: FilterEnv): Uint8Array {
  const n = env.addresses.text.length;
  if (n < table.known) {
    // The capture was cleared and ids are being reused.
    table.hits.fill(0);
    table.known = 0;
  }
  if (n > table.hits.length) {
    const grown = new Uint8Array(Math.max(n, table.hits.length * 2, 256));
    grown.set(table.hits);
    table.hits = grown;
  }
  for (let id = table.known; id < n; id++) {
    if (env.addresses.family[id] !== table.family || id === 0) continue;
    const bytes = addressBytes(env.addresses.text[id]!, table.family);
    if (bytes !== null && table.terms.some((term) => termMatches(term, bytes))) table.hits[id] = 1;
  }
  table.known = n;
  return table.hits;
}

function refreshNames(table: NameTable, env: FilterEnv): Uint8Array {
  const n = env.interfaces.values.length;
  if (n < table.known) table.known = 0;
  if (n > table.hits.length) {
    const grown = new Uint8Array(Math.max(n, table.hits.length * 2, 64));
    grown.set(table.hits);
    table.hits = grown;
  }
  for (let id = table.known; id < n; id++) table.hits[id] = table.match(env.interfaces.values[id]!) ? 1 : 0;
  table.known = n;
  return table.hits;
}

type ScanFn = (
  chunk: Chunk,
  from: number,
  to: number,
  out: Uint32Array,
  outAt: number,
  base: number,
) => number;

/**
 * Parses and compiles `text`; null for a blank filter (everything matches). Throws FilterSyntaxError
 * for syntax errors and for meaning errors (unknown field, bad value), with the offending position.
 */
export function compileFilter(text: string, env: FilterEnv): CompiledFilter | null {
  const ast = parseFilter(text);
  if (ast === null) return null;
  const compiler = new Compiler();
  const cond = compiler.compile(ast);
  const cols = [...compiler.used].map((c) => `${c} = chunk.${c}`);
  const tabs = compiler.tables.map((_, k) => `t${k} = T[${k}]`);
  const decls = [...cols, ...tabs, 'v = 0'].join(', ');
  const body =
    `'use strict';\n` +
    `return {\n` +
    `  scan(chunk, from, to, out, n, base) {\n` +
    `    let ${decls};\n` +
    `    for (let i = from; i < to; i++) if (${cond}) out[n++] = base + i;\n` +
    `    return n;\n` +
    `  },\n` +
    `  one(chunk, i, base) {\n` +
    `    let ${decls};\n` +
    `    return ${cond};\n` +
    `  },\n` +
    `};`;
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- see the file comment: generated, not user, code
  const make = new Function('T', body) as (tables: Uint8Array[]) => {
    scan: ScanFn;
    one: (chunk: Chunk, i: number, base: number) => boolean;
  };
  const tables = compiler.tables;
  const fns = make(tables);
  const { addressTables, nameTables } = compiler;
  let knownAddresses = -1;
  let knownNames = -1;
  // Tables indexed by address or interface id grow as the capture interns new ones.
  const refresh = (): void => {
    if (env.addresses.text.length !== knownAddresses) {
      for (const { slot, table } of addressTables) tables[slot] = refreshAddresses(table, env);
      knownAddresses = env.addresses.text.length;
    }
    if (env.interfaces.values.length !== knownNames) {
      for (const { slot, table } of nameTables) tables[slot] = refreshNames(table, env);
      knownNames = env.interfaces.values.length;
    }
  };
  return {
    text,
    scan(chunk, from, to, out, outAt, base) {
      refresh();
      return fns.scan(chunk, from, to, out, outAt, base);
    },
    matches(chunk, i, base) {
      refresh();
      return fns.one(chunk, i, base);
    },
  };
}

/** Checks a filter's syntax and meaning without a capture (for `filter.check`). */
export function checkFilter(text: string): void {
  compileFilter(text, { addresses: { text: [''], family: [4] }, interfaces: { values: [''] } });
}
