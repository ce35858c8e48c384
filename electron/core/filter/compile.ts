/**
 * Compiles a parsed display filter into one specialised scan loop over a store chunk's columns, with
 * Wireshark 4.x semantics (see evaluate.ts for the language and README.md for the list).
 *
 * The loop is generated JavaScript (`new Function`): every test the columns can answer becomes an
 * inline expression on the typed arrays, and every test whose answer depends on a small domain (ICMP
 * type per family, interface, direction, an address id) becomes a lookup in a precomputed Uint8Array.
 * A closure tree would cost a megamorphic call per node per record; the generated loop is one tight
 * loop the JIT optimises whole. Only numbers the compiler produced and table indices are spliced into
 * the source, never filter text, so a filter cannot inject code.
 *
 * What the columns cannot answer is evaluated on the record's decoded fields (`env.fields`, the bytes
 * from the spool) by evaluate.ts, record by record: fields outside the columns, slices, functions,
 * arithmetic, `matches`/`contains`, layers (`#`), field references. The columns hold only the outer
 * headers, so a test on ip.* / ipv6.* / icmp.* / icmpv6.* also goes to the record for ICMP errors
 * that quote a datagram (Wireshark matches every occurrence: `ip.dst == X` matches the error whose
 * quoted header goes to X). Everything else stays columnar; `CompiledFilter.perRecord` says when a
 * filter reads records one by one (the status shows it is slower).
 */
import { FIELD_ALIASES, fieldInfo } from '../../common/fields.js';
import { messageKind } from '../../common/icmp.js';
import type { FieldMap } from '../fields/extract.js';
import { CHUNK_SHIFT, type Chunk, EVICTED_CHUNK } from '../store.js';
import { type AddressTerm, addressBytes, termMatches } from './address.js';
import { QuotedChunk } from './quoted.js';
import { type EvalEnv, Evaluator, type Predicate, resolveField, suggestName, vtypeOf } from './evaluate.js';
import { type CmpOp, type Entity, FilterSyntaxError, type Node, type SetItem, parseFilter } from './parse.js';

/** What a filter needs to know about the capture besides the columns. */
export interface FilterEnv {
  addresses: {
    readonly text: readonly string[];
    readonly family: readonly number[];
    /**
     * Reused ids (ingest.ts AddressTable, a ring buffer reclaims addresses): `serial` moves whenever an id
     * gets an address, `assignedSince` names those ids. Absent: ids only ever grow.
     */
    readonly serial?: number;
    assignedSince?(serial: number, fn: (id: number) => void): boolean;
    /** The address of `id` as four big-endian words (ingest.ts AddressTable.wordsOf); absent: parsed from text. */
    wordsOf?(id: number, out: Uint32Array, at: number): boolean;
  };
  interfaces: { readonly values: readonly string[] };
  /**
   * Every field of record `index` (decoded from its captured bytes), for the tests the columns cannot
   * answer. Absent (or null for a record): those tests see only what the columns hold.
   */
  fields?: (index: number) => FieldMap | null;
  /** Values of `${field}` references (the selected record). */
  ref?: EvalEnv['ref'];
  /**
   * The headers ICMP errors quote, as columns (filter/quoted.ts, filled by the Ingestor): tests on
   * ip.* / icmp.* ... answer errors from them instead of reading their bytes. Absent: bytes.
   */
  quoted?: { of(chunk: Chunk, c: number): QuotedChunk | null };
  /**
   * The rtt column is what `icmp.resptime` reads and MISC_F_NO_RESPONSE what `icmp.no_resp` reads (the
   * service's matcher: fields/store-fields.ts fills the per-record fields from the same columns), so the
   * columns answer them. Unset where the fields come from Wireshark's own matching (files, tests).
   */
  matchedColumns?: boolean;
}

export interface CompiledFilter {
  readonly text: string;
  /** True when some test reads records' bytes one by one (fields off the columns, regex, slices). */
  readonly perRecord: boolean;
  /** Why, for the status line (`matches`, `contains`, slices, or the fields read from bytes). */
  readonly perRecordReason: string;
  /**
   * Tests records `from..to-1` of `chunk` and writes the matching record indices (`base + i`, where
   * `base` is the chunk's first record index) to `out` from `outAt` on; returns the new end.
   */
  scan(chunk: Chunk, from: number, to: number, out: Uint32Array, outAt: number, base: number): number;
  /** Tests one record (index = base + i). */
  matches(chunk: Chunk, i: number, base: number): boolean;
}

/** A field the columns hold (outer header / record metadata). */
interface ColumnField {
  kind: 'addr' | 'uint' | 'float' | 'reltime' | 'type' | 'dir' | 'hook' | 'iface';
  family?: 4 | 6;
  which?: 'src' | 'dst' | 'both';
  expr?: string;
  presence?: string;
  /** The field also occurs inside the datagram an ICMP error quotes (ip.*, icmp.* ...). */
  quotable?: boolean;
  /** ICMPv4 types where the field exists but the columns do not hold it (timestamp, mask...). */
  moreTypes?: number[];
}

const HAS_ECHO = '(misc[i] & 0x1000000) !== 0';
const FAM4 = '(meta[i] >>> 24) === 4';
const FAM6 = '(meta[i] >>> 24) === 6';
/** The ICMP layer is there: not a later fragment (store.ts FLAG_NOT_FIRST), which carries no ICMP header. */
const ICMP4 = `(${FAM4} & (flags[i] & 2) === 0)`;
const ICMP6 = `(${FAM6} & (flags[i] & 2) === 0)`;

/** The family (and for icmp.* / icmpv6.* fields, ICMP layer) guard of a column field. */
function familyGuard(name: string, col: ColumnField): string {
  const icmp = name.startsWith('icmp.') || name.startsWith('icmpv6.');
  if (col.family === 4) return icmp ? ICMP4 : FAM4;
  if (col.family === 6) return icmp ? ICMP6 : FAM6;
  return '';
}

const COLUMNS: Readonly<Record<string, ColumnField>> = {
  'ip.src': { kind: 'addr', family: 4, which: 'src', quotable: true },
  'ip.dst': { kind: 'addr', family: 4, which: 'dst', quotable: true },
  'ip.addr': { kind: 'addr', family: 4, which: 'both', quotable: true },
  'ipv6.src': { kind: 'addr', family: 6, which: 'src', quotable: true },
  'ipv6.dst': { kind: 'addr', family: 6, which: 'dst', quotable: true },
  'ipv6.addr': { kind: 'addr', family: 6, which: 'both', quotable: true },
  'icmp.type': { kind: 'type', family: 4, quotable: true },
  'icmpv6.type': { kind: 'type', family: 6, quotable: true },
  'icmp.code': { kind: 'uint', family: 4, expr: '((meta[i] >>> 8) & 255)', quotable: true },
  'icmpv6.code': { kind: 'uint', family: 6, expr: '((meta[i] >>> 8) & 255)', quotable: true },
  'icmp.ident': {
    kind: 'uint',
    family: 4,
    expr: '(idSeq[i] >>> 16)',
    presence: HAS_ECHO,
    quotable: true,
    moreTypes: [13, 14, 15, 16, 17, 18],
  },
  'icmp.seq': {
    kind: 'uint',
    family: 4,
    expr: '(idSeq[i] & 65535)',
    presence: HAS_ECHO,
    quotable: true,
    moreTypes: [13, 14, 15, 16, 17, 18],
  },
  'icmpv6.echo.identifier': {
    kind: 'uint',
    family: 6,
    expr: '(idSeq[i] >>> 16)',
    presence: HAS_ECHO,
    quotable: true,
  },
  'icmpv6.echo.sequence_number': {
    kind: 'uint',
    family: 6,
    expr: '(idSeq[i] & 65535)',
    presence: HAS_ECHO,
    quotable: true,
  },
  'ip.ttl': { kind: 'uint', family: 4, expr: '(misc[i] & 255)', quotable: true },
  'ipv6.hlim': { kind: 'uint', family: 6, expr: '(misc[i] & 255)', quotable: true },
  ttl: { kind: 'uint', expr: '(misc[i] & 255)' },
  'icmpcap.dir': { kind: 'dir' },
  'icmpcap.hook': { kind: 'hook' },
  'frame.interface_name': { kind: 'iface' },
  'frame.len': { kind: 'uint', expr: '(len[i] & 65535)' },
  'frame.cap_len': { kind: 'uint', expr: '(len[i] >>> 16)' },
  'icmpcap.rtt': { kind: 'float', expr: 'rtt[i]', presence: 'rtt[i] === rtt[i]' },
  // Echo requests without a reply within the timeout (stats/aggregator.ts sets MISC_F_NO_RESPONSE).
  'icmp.resp_not_found': { kind: 'uint', family: 4, expr: '1', presence: '(misc[i] & 0x20000000) !== 0' },
  'icmpv6.resp_not_found': { kind: 'uint', family: 6, expr: '1', presence: '(misc[i] & 0x20000000) !== 0' },
  'frame.number': { kind: 'uint', expr: '(base + i + 1)' },
  'frame.time_relative': { kind: 'reltime', expr: 'tsRel[i]' },
};

/** Columns for the echo-matching fields (FilterEnv.matchedColumns). */
const MATCHED_COLUMNS: Readonly<Record<string, ColumnField>> = {
  'icmp.resptime': {
    kind: 'float',
    family: 4,
    expr: 'rtt[i]',
    presence: `(meta[i] & 255) === 0 && rtt[i] === rtt[i]`,
  },
  'icmpv6.resptime': {
    kind: 'float',
    family: 6,
    expr: 'rtt[i]',
    presence: `(meta[i] & 255) === 129 && rtt[i] === rtt[i]`,
  },
  'icmp.no_resp': { kind: 'uint', family: 4, expr: '1', presence: '(misc[i] & 0x20000000) !== 0' },
  'icmpv6.no_resp': { kind: 'uint', family: 6, expr: '1', presence: '(misc[i] & 0x20000000) !== 0' },
};

/** icmpcap's older names, still accepted (completion offers the Wireshark names). */
const OLD_NAMES: Readonly<Record<string, string>> = {
  ...FIELD_ALIASES,
  ttl: 'ttl',
};

/** Bare words that are not fields: message kinds (electron/common/icmp.ts `messageKind`). */
const KIND_WORDS = ['echo', 'error', 'nd'] as const;

/** Every name the filter accepts, for completion. */
export const FILTER_FIELDS: readonly string[] = [
  ...Object.keys(COLUMNS),
  ...Object.keys(OLD_NAMES),
  ...KIND_WORDS,
  'ip',
  'ipv6',
  'icmp',
  'icmpv6',
];

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

/** Per (family, type): the message quotes a datagram (Wireshark dissects it: fields occur twice). */
const QUOTES = (() => {
  const t = new Uint8Array(512);
  for (const type of [3, 4, 5, 11, 12]) t[type] = 1;
  for (const type of [1, 2, 3, 4]) t[256 + type] = 1;
  return t;
})();

interface AddressTable {
  terms: AddressTerm[];
  family: 4 | 6;
  hits: Uint8Array;
  known: number;
  /** env.addresses.serial when `hits` was brought up to date (-1: never). */
  serial: number;
}

interface NameTable {
  match: (name: string) => boolean;
  hits: Uint8Array;
  known: number;
}

function canonical(name: string): string {
  const lower = name.toLowerCase();
  if (COLUMNS[lower] !== undefined) return lower;
  const alias = OLD_NAMES[lower];
  if (alias !== undefined && COLUMNS[alias] !== undefined) return alias;
  return resolveField(lower)?.name ?? lower;
}

type Op = CmpOp | 'in' | 'not_in';

/**
 * A leaf's test: `code` on any record, `plain` on a record that is not in the quoted index (it quotes
 * no datagram, so its outer header alone decides).
 */
interface Leaf {
  code: string;
  plain: string;
}

interface Compiled extends Leaf {
  heavy: boolean;
}

const same = (code: string): Leaf => ({ code, plain: code });

class Compiler {
  /** Tables the generated code reads as `t0`, `t1`, ... */
  readonly tables: Uint8Array[] = [];
  readonly addressTables: { slot: number; table: AddressTable }[] = [];
  readonly nameTables: { slot: number; table: NameTable }[] = [];
  /** Per-record predicates the generated code calls as `S[k](index)`. */
  readonly slow: Predicate[] = [];
  readonly slowFields = new Set<string>();
  readonly slowKinds = new Set<string>();
  slowForms = false;
  readonly used = new Set<string>(['meta']);
  readonly evaluator: Evaluator;

  constructor(private readonly env: FilterEnv) {
    this.evaluator = new Evaluator({ ref: env.ref });
  }

  private column(name: string): ColumnField | undefined {
    return COLUMNS[name] ?? (this.env.matchedColumns === true ? MATCHED_COLUMNS[name] : undefined);
  }

  private table(t: Uint8Array): string {
    this.tables.push(t);
    return `t${this.tables.length - 1}`;
  }

  private use(code: string): string {
    for (const col of ['tsRel', 'src', 'dst', 'meta', 'idSeq', 'misc', 'len', 'rtt', 'flags']) {
      if (new RegExp(`\\b${col}\\[`).test(code)) this.used.add(col);
    }
    return code;
  }

  /** A test evaluated on the record's fields; `fallback` (columns) when the record cannot be read. */
  private perRecord(node: Node, fallback: string): string {
    const ev = new Evaluator({ ref: this.env.ref });
    const pred = ev.node(node);
    for (const f of ev.fields) this.slowFields.add(f);
    if (ev.slowForms) this.slowForms = true;
    for (const k of ev.forms) this.slowKinds.add(k);
    this.slow.push(pred);
    return `((q = S(${this.slow.length - 1}, base + i)) === 2 ? ${fallback} : q === 1)`;
  }

  /**
   * The test as a JS expression; `heavy` when it reads records one by one (then `&&`/`||` keep it
   * from running where the other side already decides). Light sides combine with `&`/`|`/`^`: no
   * branches, so the scan loop costs the same whatever the data (a mispredicted branch per record
   * costs more than the test).
   */
  compile(node: Node): Compiled {
    switch (node.kind) {
      case 'and':
      case 'or': {
        const l = this.compile(node.left);
        const r = this.compile(node.right);
        const heavy = l.heavy || r.heavy;
        const op = node.kind === 'and' ? (heavy ? '&&' : '&') : heavy ? '||' : '|';
        return { code: `(${l.code} ${op} ${r.code})`, plain: `(${l.plain} ${op} ${r.plain})`, heavy };
      }
      case 'xor': {
        const l = this.compile(node.left);
        const r = this.compile(node.right);
        return {
          code: `(!${l.code} !== !${r.code})`,
          plain: `(!${l.plain} !== !${r.plain})`,
          heavy: l.heavy || r.heavy,
        };
      }
      case 'not': {
        const e = this.compile(node.expr);
        const not = (c: string): string => (e.heavy ? `!${c}` : `(${c} ^ 1)`);
        return { code: not(e.code), plain: not(e.plain), heavy: e.heavy };
      }
      case 'test':
      case 'cmp':
      case 'in': {
        const fast = this.leaf(node);
        if (fast !== null)
          return { code: `(${this.use(fast.code)})`, plain: `(${this.use(fast.plain)})`, heavy: false };
        // Validate now (errors point at the character), then evaluate per record.
        const code = `(${this.perRecord(node, 'false')})`;
        return { code, plain: code, heavy: true };
      }
    }
  }

  /** Columnar code for a leaf, or null when the columns cannot answer it. */
  private leaf(node: Node & { kind: 'test' | 'cmp' | 'in' }): Leaf | null {
    if (node.kind === 'test') {
      const e = node.expr;
      if (e.kind !== 'literal' || e.quoted !== 'none') return null;
      return this.word(e.text, e.pos, node);
    }
    if (node.left.kind !== 'literal' || node.left.quoted !== 'none') return null;
    const name = canonical(node.left.text);
    const col = this.column(name);
    if (col === undefined) return null;
    let op: Op;
    let items: SetItem[];
    if (node.kind === 'cmp') {
      if (node.op === 'contains' || node.op === 'matches') return null;
      if (node.right.kind !== 'literal') return null;
      if (
        node.right.quoted === 'none' &&
        resolveField(node.right.text) !== undefined &&
        !/^[0-9]/.test(node.right.text)
      )
        return null;
      op = node.op;
      items = [{ lo: node.right }];
    } else {
      if (
        node.items.some((it) => it.lo.kind !== 'literal' || (it.hi !== undefined && it.hi.kind !== 'literal'))
      )
        return null;
      op = node.negated ? 'not_in' : 'in';
      items = node.items;
    }
    // A quantifier over both addresses: the evaluator.
    if (node.quantifier !== undefined && col.which === 'both') return null;
    const fast = this.columnTest(name, col, op, items, node);
    if (fast === null) return null;
    if (!col.quotable) return { code: fast, plain: fast };
    // ICMP errors carry a second occurrence (the quoted datagram): the quoted columns answer it (the
    // same test on the inner header), or the record's bytes when they do not hold it.
    const quotes = `${this.quotesTable(col)}[${TYPE_INDEX}] === 1`;
    const held = this.quotedHeld();
    // "Any" tests are true as soon as the outer header matches: only errors whose outer header does not
    // match look inside (so `ip.dst == X` reads at most the non-matching errors' bytes).
    const anyTest = node.quantifier !== 'all' && op !== 'all_eq' && op !== 'all_ne' && op !== 'not_in';
    if (anyTest) {
      const read = this.perRecord(node, 'false');
      return {
        code: `(${fast} || (${quotes} && (${held} ? ${inner(fast)} : ${read})))`,
        plain: this.plainAny(col, fast, read),
      };
    }
    const layerOp = op === 'not_in' ? 'in' : op;
    const layer = layerOp === op ? fast : this.columnTest(name, col, layerOp, items, node)!;
    const pO = this.presentExpr(name, col);
    const pI = inner(pO);
    const allForm = node.quantifier === 'all' || op === 'all_eq' || op === 'all_ne';
    let both = allForm
      ? `((${pO} || ${pI}) && (!(${pO}) || ${layer}) && (!(${pI}) || ${inner(layer)}))`
      : `(${layer} || ${inner(layer)})`;
    if (op === 'not_in') both = `!${both}`;
    const read = this.perRecord(node, fast);
    const more = this.moreTable(col);
    return {
      code: `(${quotes} ? (${held} ? ${both} : ${read}) : ${fast})`,
      plain: more === null ? fast : `(${more}[${TYPE_INDEX}] === 1 ? ${read} : ${fast})`,
    };
  }

  /**
   * The "any" test of a quotable field on a record that quotes nothing (not in the quoted index): the
   * outer header decides, but for the ICMPv4 types where the field exists off the columns (`moreTypes`).
   */
  private plainAny(col: ColumnField, fast: string, read: string): string {
    const more = this.moreTable(col);
    return more === null ? fast : `(${fast} || (${more}[${TYPE_INDEX}] === 1 && ${read}))`;
  }

  /** Per (family, type): the field is off the columns though the message quotes nothing, or null. */
  private moreTable(col: ColumnField): string | null {
    if (col.moreTypes === undefined) return null;
    const t = new Uint8Array(512);
    for (const type of col.moreTypes) t[type] = QUOTES[type] === 1 ? 0 : 1;
    return this.table(t);
  }

  /** Whether the generated code reads the quoted columns (q* arrays, slot k). */
  quotedUsed = false;

  /** True when the quoted columns hold record i's inner header (sets `k` to its slot). */
  private quotedHeld(): string {
    this.quotedUsed = true;
    return `((k = Q.slot(i)) >= 0 && qsimple[k] === 1)`;
  }

  /** The field is present in the outer header (family, ICMP layer, echo...). */
  private presentExpr(name: string, col: ColumnField): string {
    const parts = [familyGuard(name, col), col.presence ?? ''].filter((p) => p !== '');
    return parts.length === 0 ? 'true' : parts.join(' & ');
  }

  /** Per (family, type): the record must be read for this field. */
  private quotesTable(col: ColumnField): string {
    if (col.moreTypes === undefined) return this.table(QUOTES);
    const t = QUOTES.slice();
    for (const type of col.moreTypes) t[type] = 1;
    return this.table(t);
  }

  /** A bare word: protocol, message kind or field existence. */
  private word(text: string, pos: number, node: Node): Leaf | null {
    const lower = text.toLowerCase();
    switch (lower) {
      case 'frame':
        return same('true');
      case 'ip':
        return same(FAM4);
      case 'icmp':
        return same(ICMP4);
      case 'ipv6':
        return same(FAM6);
      case 'icmpv6':
        return same(ICMP6);
      case 'echo':
      case 'error':
      case 'nd': {
        const t = new Uint8Array(512);
        for (let type = 0; type < 256; type++) {
          t[type] = messageKind(4, type) === lower ? 1 : 0;
          t[256 + type] = messageKind(6, type) === lower ? 1 : 0;
        }
        return same(`${this.table(t)}[${TYPE_INDEX}] !== 0`);
      }
    }
    const name = canonical(lower);
    const col = this.column(name);
    if (col === undefined) {
      if (resolveField(lower) === undefined && fieldInfo(lower) === undefined)
        throw new FilterSyntaxError(`unknown field or protocol '${text}' at ${pos}${suggestName(text)}`, pos);
      return null;
    }
    const fast = this.presentExpr(name, col);
    if (!col.quotable) return { code: fast, plain: fast };
    const held = this.quotedHeld();
    const read = this.perRecord(node, 'false');
    return {
      code: `(${fast} || (${this.quotesTable(col)}[${TYPE_INDEX}] === 1 && (${held} ? ${inner(fast)} : ${read})))`,
      plain: this.plainAny(col, fast, read),
    };
  }

  /** The typed literal values of `items` (parsed as the evaluator parses them: same errors). */
  private literals(name: string, items: SetItem[]): { lo: unknown; hi?: unknown }[] {
    // `ttl` (either family's TTL / hop limit) is ours alone: typed as ip.ttl.
    const info = resolveField(name) ?? fieldInfo('ip.ttl')!;
    const hint = { type: vtypeOf(info), name: info.name };
    const one = (e: Entity): unknown => this.evaluator.entity(e, hint).values(null as unknown as FieldMap)[0];
    return items.map((it) => ({ lo: one(it.lo), hi: it.hi === undefined ? undefined : one(it.hi) }));
  }

  private columnTest(name: string, col: ColumnField, op: Op, items: SetItem[], node: Node): string | null {
    const famCond = familyGuard(name, col);
    // Joined with `&`: every part is a comparison without side effects, and a branch per part costs more.
    const guard = [famCond, col.presence ?? ''].filter((p) => p !== '').join(' & ');
    const present = guard === '' ? 'true' : guard;
    const eqOp = op === 'any_eq' || op === 'all_eq' || op === 'in';
    const neOp = op === 'all_ne' || op === 'any_ne' || op === 'not_in';
    const ordered = !eqOp && !neOp;
    switch (col.kind) {
      case 'addr': {
        if (ordered) return null;
        const vals = this.literals(name, items);
        if (vals.some((v) => v.hi !== undefined)) return null;
        const family = col.family!;
        const terms: AddressTerm[] = vals.map(({ lo }) => {
          if (typeof lo === 'number') return { family, bytes: addressBytes(v4Text(lo), 4)!, prefix: 32 };
          if (lo instanceof Uint8Array) return { family, bytes: lo, prefix: 128 };
          const c = lo as { net: Uint8Array; bits: number };
          return { family, bytes: c.net, prefix: c.bits };
        });
        const table: AddressTable = { terms, family, hits: new Uint8Array(0), known: 0, serial: -1 };
        const t = this.table(table.hits);
        this.addressTables.push({ slot: this.tables.length - 1, table });
        const any =
          col.which === 'src'
            ? `${t}[src[i]]`
            : col.which === 'dst'
              ? `${t}[dst[i]]`
              : `(${t}[src[i]] | ${t}[dst[i]])`;
        const all = col.which === 'both' ? `(${t}[src[i]] & ${t}[dst[i]])` : any;
        // A hit implies the family (refreshAddresses marks only ids of the table's family): the
        // positive tests need no guard.
        switch (op) {
          case 'any_eq':
          case 'in':
            return `(${any} === 1)`;
          case 'all_eq':
            return `(${all} === 1)`;
          case 'all_ne':
            return `(${present} & ${any} === 0)`;
          case 'any_ne':
            return `(${present} & ${all} === 0)`;
          case 'not_in':
            return `!(${any} === 1)`;
          default:
            return null;
        }
      }
      case 'iface': {
        if (ordered || items.some((it) => it.hi !== undefined)) return null;
        const names = new Set(items.map((it) => (it.lo as Entity & { kind: 'literal' }).text));
        const table: NameTable = { match: (n) => names.has(n), hits: new Uint8Array(0), known: 0 };
        const t = this.table(table.hits);
        this.nameTables.push({ slot: this.tables.length - 1, table });
        const hit = `${t}[(misc[i] >>> 8) & 65535] === 1`;
        return neOp ? `!(${hit})` : hit;
      }
      case 'dir':
      case 'hook': {
        if (ordered || items.some((it) => it.hi !== undefined)) return null;
        const names = col.kind === 'dir' ? DIR_NAMES : HOOK_NAMES;
        const max = col.kind === 'dir' ? 3 : 7;
        const expr = col.kind === 'dir' ? '((meta[i] >>> 16) & 255)' : '((misc[i] >>> 26) & 7)';
        let mask = 0;
        for (const it of items) {
          const lo = it.lo as Entity & { kind: 'literal' };
          const v =
            names[lo.text.toLowerCase()] ??
            (/^\d$/.test(lo.text) && Number(lo.text) <= max ? Number(lo.text) : undefined);
          if (v === undefined) {
            const what =
              col.kind === 'dir'
                ? 'a direction (in, out, fwd, unknown)'
                : 'a hook (prerouting, local-in, forward, local-out, postrouting, none)';
            throw new FilterSyntaxError(`expected ${what} at ${lo.pos}, found '${lo.text}'`, lo.pos);
          }
          mask |= 1 << v;
        }
        const hit = `((${mask} >>> ${expr}) & 1) === 1`;
        return neOp ? `!(${hit})` : hit;
      }
      case 'type': {
        const vals = this.literals(name, items);
        const t = new Uint8Array(512);
        const off = col.family === 6 ? 256 : 0;
        for (let type = 0; type < 256; type++) {
          let hit: boolean;
          if (op === 'in' || op === 'not_in')
            hit = vals.some(({ lo, hi }) =>
              hi === undefined ? type === lo : type >= (lo as number) && type <= (hi as number),
            );
          else hit = cmpNum(type, op, vals[0]!.lo as number);
          t[off + type] = hit ? 1 : 0;
        }
        // Later fragments read as type 0 (ingest.ts): a table without type 0 needs no guard at all (the
        // other family's half is 0).
        const code =
          t[off] === 0
            ? `(${this.table(t)}[${TYPE_INDEX}] === 1)`
            : `(${famCond} & ${this.table(t)}[${TYPE_INDEX}] === 1)`;
        return op === 'not_in' ? `!${code}` : code;
      }
      case 'uint':
      case 'float':
      case 'reltime': {
        const vals = this.literals(name, items).map(({ lo, hi }) => ({
          lo: col.kind === 'reltime' ? Number(lo as bigint) : (lo as number),
          hi: hi === undefined ? undefined : col.kind === 'reltime' ? Number(hi as bigint) : (hi as number),
        }));
        // The rtt column is Float32: compare what is stored.
        const conv = (v: number): number => (col.expr === 'rtt[i]' ? Math.fround(v) : v);
        const expr = col.expr!;
        const g = present === 'true' ? '' : `${present} & `;
        if (op === 'in' || op === 'not_in') {
          const tests = vals.map(({ lo, hi }) =>
            hi === undefined ? `v === ${conv(lo)}` : `(v >= ${conv(lo)} && v <= ${conv(hi)})`,
          );
          const code = `(${g}((v = ${expr}), ${tests.join(' || ')}))`;
          return op === 'not_in' ? `!${code}` : code;
        }
        const js = {
          any_eq: '===',
          all_eq: '===',
          all_ne: '!==',
          any_ne: '!==',
          gt: '>',
          ge: '>=',
          lt: '<',
          le: '<=',
        }[op as Exclude<CmpOp, 'contains' | 'matches'>];
        return `(${g}${expr} ${js} ${conv(vals[0]!.lo)})`;
      }
    }
    void node;
    return null;
  }
}

/** The same column test on the quoted header's columns (filter/quoted.ts: the store's layout, slot k). */
function inner(code: string): string {
  return code.replace(/\b(meta|idSeq|misc|src|dst|flags)\[i\]/g, 'q$1[k]');
}

function v4Text(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

function cmpNum(a: number, op: Op, b: number): boolean {
  switch (op) {
    case 'any_eq':
    case 'all_eq':
      return a === b;
    case 'all_ne':
    case 'any_ne':
      return a !== b;
    case 'gt':
      return a > b;
    case 'ge':
      return a >= b;
    case 'lt':
      return a < b;
    case 'le':
      return a <= b;
    default:
      return false;
  }
}

/**
 * The bytes of each interned address, parsed once per interner (every filter typed refreshes its
 * tables over all ids: parsing 10 k address texts each time cost more than the scan). Keyed by the text
 * too, so a reused id is parsed afresh.
 */
const parsedAddresses = new WeakMap<object, { text: (string | undefined)[]; bytes: (Uint8Array | null)[] }>();

function addressOf(addresses: FilterEnv['addresses'], id: number, family: 4 | 6): Uint8Array | null {
  let cache = parsedAddresses.get(addresses);
  if (cache === undefined) {
    cache = { text: [], bytes: [] };
    parsedAddresses.set(addresses, cache);
  }
  const text = addresses.text[id]!;
  if (cache.text[id] !== text) {
    cache.text[id] = text;
    cache.bytes[id] = addressBytes(text, family);
  }
  return cache.bytes[id]!;
}

function refreshAddresses(table: AddressTable, env: FilterEnv): Uint8Array {
  const n = env.addresses.text.length;
  const serial = env.addresses.serial;
  if (serial !== undefined && env.addresses.assignedSince !== undefined) {
    if (n > table.hits.length) {
      const grown = new Uint8Array(Math.max(n, table.hits.length * 2, 256));
      grown.set(table.hits);
      table.hits = grown;
    }
    const check = (id: number): void => {
      let hit = 0;
      if (env.addresses.family[id] === table.family && id !== 0) {
        const bytes = addressOf(env.addresses, id, table.family);
        if (bytes !== null && table.terms.some((term) => termMatches(term, bytes))) hit = 1;
      }
      table.hits[id] = hit;
    };
    // Only the ids (re)assigned since the last look; every id when that is too long ago to tell.
    if (table.serial < 0 || !env.addresses.assignedSince(table.serial, check))
      for (let id = 0; id < n; id++) check(id);
    table.serial = serial;
    table.known = n;
    return table.hits;
  }
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
    const bytes = addressOf(env.addresses, id, table.family);
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

const QUOTED_COLUMNS = ['simple', 'meta', 'idSeq', 'misc', 'src', 'dst', 'flags'] as const;

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
  const compiler = new Compiler(env);
  const { code: cond, plain, heavy } = compiler.compile(ast);
  const cols = [...compiler.used].map((c) => `${c} = chunk.${c}`);
  const tabs = compiler.tables.map((_, k) => `t${k} = T[${k}]`);
  const quoted = compiler.quotedUsed
    ? ['Q = QOF(chunk, base)', 'k = 0', ...QUOTED_COLUMNS.map((c) => `q${c} = Q.${c}`)]
    : [];
  const decls = [...cols, ...tabs, ...quoted, 'v = 0', 'q = 0'].join(', ');
  // Light filters store every index and advance by the test's 0/1: no branch per record.
  const run = (test: string, start: string, stop: string): string =>
    heavy
      ? `for (let i = ${start}; i < ${stop}; i++) if (${test}) out[n++] = base + i;`
      : `for (let i = ${start}; i < ${stop}; i++) { out[n] = base + i; n += ${test} | 0; }`;
  // With the quoted index (it lists every record that quotes a datagram, ingest.ts), the records
  // between two listed ones run the plain test (outer header only), the listed ones the whole test.
  const loop =
    compiler.quotedUsed && env.quoted !== undefined && plain !== cond
      ? `const qat = Q.at, qn = Q.count;\n` +
        `    let s = 0, hi = qn;\n` +
        `    while (s < hi) { const mid = (s + hi) >>> 1; if (qat[mid] < from) s = mid + 1; else hi = mid; }\n` +
        `    for (let at = from; ; s++) {\n` +
        `      const stop = s < qn && qat[s] < to ? qat[s] : to;\n` +
        `      ${run(plain, 'at', 'stop')}\n` +
        `      if (stop === to) break;\n` +
        `      { const i = stop; if (${cond}) out[n++] = base + i; }\n` +
        `      at = stop + 1;\n` +
        `    }`
      : run(cond, 'from', 'to');
  const body =
    `'use strict';\n` +
    `return {\n` +
    `  scan(chunk, from, to, out, n, base) {\n` +
    `    let ${decls};\n` +
    `    ${loop}\n` +
    `    return n;\n` +
    `  },\n` +
    `  one(chunk, i, base) {\n` +
    `    let ${decls};\n` +
    `    return !!${cond};\n` +
    `  },\n` +
    `};`;
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- see the file comment: generated, not user, code
  const make = new Function('T', 'S', 'QOF', body) as (
    tables: Uint8Array[],
    slow: (k: number, index: number) => number,
    quotedOf: (chunk: Chunk, base: number) => QuotedChunk,
  ) => { scan: ScanFn; one: (chunk: Chunk, i: number, base: number) => boolean };
  const tables = compiler.tables;
  // Per-record tests: 1 true, 0 false, 2 the record's bytes are not available (use the columns).
  let cachedIndex = -1;
  let cached: FieldMap | null = null;
  const slow = (k: number, index: number): number => {
    if (env.fields === undefined) return 2;
    if (index !== cachedIndex) {
      cached = env.fields(index);
      cachedIndex = index;
    }
    if (cached === null) return 2;
    return compiler.slow[k]!(cached) ? 1 : 0;
  };
  const noQuoted = new QuotedChunk(EVICTED_CHUNK);
  const quotedOf = (chunk: Chunk, base: number): QuotedChunk =>
    env.quoted?.of(chunk, base >>> CHUNK_SHIFT) ?? noQuoted;
  const fns = make(tables, slow, quotedOf);
  const { addressTables, nameTables } = compiler;
  let knownAddresses = -1;
  let knownNames = -1;
  // Tables indexed by address or interface id grow as the capture interns new ones.
  const refresh = (): void => {
    const addressesNow = env.addresses.serial ?? env.addresses.text.length;
    if (addressesNow !== knownAddresses) {
      for (const { slot, table } of addressTables) tables[slot] = refreshAddresses(table, env);
      knownAddresses = addressesNow;
    }
    if (env.interfaces.values.length !== knownNames) {
      for (const { slot, table } of nameTables) tables[slot] = refreshNames(table, env);
      knownNames = env.interfaces.values.length;
    }
  };
  const reasons: string[] = [...compiler.slowKinds];
  const offColumns = [...compiler.slowFields].filter(
    (f) => COLUMNS[f] === undefined && !(env.matchedColumns === true && MATCHED_COLUMNS[f] !== undefined),
  );
  if (offColumns.length > 0) reasons.push(`fields not in the index: ${offColumns.slice(0, 4).join(', ')}`);
  return {
    text,
    perRecord: reasons.length > 0,
    perRecordReason: reasons.join('; '),
    scan(chunk, from, to, out, outAt, base) {
      refresh();
      cachedIndex = -1;
      return fns.scan(chunk, from, to, out, outAt, base);
    },
    matches(chunk, i, base) {
      refresh();
      return fns.one(chunk, i, base);
    },
  };
}

/**
 * Checks a filter's syntax and meaning without a capture (for `filter.check`); returns why it is slow
 * (it reads packet bytes record by record: `reads packet bytes (regex)`), or null. Classified as the
 * service compiles it (quoted headers and echo matching from the columns).
 */
export function checkFilter(text: string): string | null {
  const compiled = compileFilter(text, {
    addresses: { text: [''], family: [4] },
    interfaces: { values: [''] },
    matchedColumns: true,
    quoted: { of: () => null },
  });
  return compiled?.perRecord ? `reads packet bytes (${compiled.perRecordReason})` : null;
}
