/**
 * The display-filter language, Wireshark 4.x syntax: a tokenizer and a recursive-descent parser to an
 * AST. Meaning (which fields exist, what a literal stands for) is checked by the compiler, which
 * reports errors the same way: a `FilterSyntaxError` whose `position` is a 0-based character offset.
 *
 *   filter   := or EOF
 *   or       := xor (('||' | 'or') xor)*
 *   xor      := and (('^^' | 'xor') and)*
 *   and      := unary (('&&' | 'and') unary)*
 *   unary    := ('!' | 'not') unary | '(' or ')' | test
 *   test     := ['any' | 'all'] sum [relop sum | 'contains' sum | ('matches' | '~') sum
 *               | ['not'] 'in' set]                      (a lone sum tests existence / non-zero)
 *   relop    := == != === !== ~= < <= > >= (or eq ne any_eq all_ne all_eq any_ne gt ge lt le)
 *   sum      := product (('+' | ' -') product)*          (`A-B` is one word, as in Wireshark)
 *   product  := bitand (('*' | '/' | '%') bitand)*
 *   bitand   := unaryv (('&' | 'bitwise_and') unaryv)*
 *   unaryv   := '-' unaryv | primary slice*
 *   primary  := WORD ['#' layer] | STRING | CHAR | '${' name '}' | NAME '(' args ')' | '{' sum '}'
 *   set      := '{' item ((',')? item)* '}'   item := sum ['..' sum]
 *   slice    := '[' range (',' range)* ']'   range := i:j | i-j | i | :j | i:   (negative: from the end)
 *
 * A WORD is a run of letters, digits and `_ . : / -` (not starting with `-`), so addresses, byte
 * strings (`aa:bb`), names (`echo-request`) and field names are single tokens; `..` splits a word.
 */

export class FilterSyntaxError extends Error {
  constructor(
    message: string,
    /** 0-based character offset into the filter text. */
    readonly position: number,
  ) {
    super(message);
    this.name = 'FilterSyntaxError';
  }
}

/** Comparison operators, by Wireshark's names for them. */
export type CmpOp =
  'any_eq' | 'all_ne' | 'all_eq' | 'any_ne' | 'gt' | 'ge' | 'lt' | 'le' | 'contains' | 'matches';
/** The old name of the operator type (==, != ... as written). */
export type RelOp = '==' | '!=' | '<' | '<=' | '>' | '>=';

export interface SliceRange {
  /** Start offset (negative: from the end). */
  start: number;
  /** Length (undefined: to `end`, or to the end of the value). */
  length?: number;
  /** Inclusive end offset (`[i-j]` with a negative bound; negative: from the end). */
  end?: number;
}

export type Entity =
  | { kind: 'field'; name: string; pos: number; layers?: SliceRange[] }
  | { kind: 'literal'; text: string; pos: number; quoted: 'none' | 'string' | 'char' }
  | { kind: 'ref'; name: string; pos: number }
  | { kind: 'call'; name: string; args: Entity[]; pos: number }
  | { kind: 'arith'; op: '+' | '-' | '*' | '/' | '%' | '&'; left: Entity; right: Entity; pos: number }
  | { kind: 'neg'; expr: Entity; pos: number }
  | { kind: 'slice'; expr: Entity; ranges: SliceRange[]; pos: number };

export interface SetItem {
  lo: Entity;
  hi?: Entity;
}

export type Node =
  | { kind: 'and' | 'or' | 'xor'; left: Node; right: Node }
  | { kind: 'not'; expr: Node; pos: number }
  /** A lone value: exists (field), is non-zero (`a & b`), is true (a function's result). */
  | { kind: 'test'; expr: Entity; pos: number }
  | {
      kind: 'cmp';
      op: CmpOp;
      quantifier?: 'any' | 'all';
      left: Entity;
      right: Entity;
      pos: number;
      opPos: number;
    }
  | {
      kind: 'in';
      negated: boolean;
      quantifier?: 'any' | 'all';
      left: Entity;
      items: SetItem[];
      pos: number;
      opPos: number;
    };

type TokenKind =
  'word' | 'string' | 'char' | 'op' | '(' | ')' | '{' | '}' | '[' | ']' | ',' | '..' | '#' | 'ref' | 'eof';

export interface Token {
  kind: TokenKind;
  text: string;
  pos: number;
  /** Whitespace precedes it (subtraction needs it: `A -B`). */
  spaced?: boolean;
}

const WORD_START = /[A-Za-z0-9_.:]/;
const WORD_CHAR = /[A-Za-z0-9_.:/-]/;
const OPERATORS = [
  '===',
  '!==',
  '==',
  '!=',
  '~=',
  '<=',
  '>=',
  '&&',
  '||',
  '^^',
  '<',
  '>',
  '!',
  '~',
  '&',
  '+',
  '-',
  '*',
  '/',
  '%',
] as const;

function readEscape(text: string, i: number, start: number): [string, number] {
  const c = text[i + 1];
  const simple: Record<string, string> = {
    "'": "'",
    '"': '"',
    '\\': '\\',
    a: '\x07',
    b: '\b',
    f: '\f',
    n: '\n',
    r: '\r',
    t: '\t',
    v: '\v',
  };
  if (c !== undefined && simple[c] !== undefined) return [simple[c], i + 2];
  if (c === 'x') {
    const m = /^[0-9a-fA-F]{1,2}/.exec(text.slice(i + 2));
    if (m) return [String.fromCharCode(parseInt(m[0], 16)), i + 2 + m[0].length];
  }
  if (c === 'u' || c === 'U') {
    const n = c === 'u' ? 4 : 8;
    const hex = text.slice(i + 2, i + 2 + n);
    if (new RegExp(`^[0-9a-fA-F]{${n}}$`).test(hex))
      return [String.fromCodePoint(parseInt(hex, 16)), i + 2 + n];
  }
  if (c !== undefined && /[0-7]/.test(c)) {
    const m = /^[0-7]{1,3}/.exec(text.slice(i + 1))!;
    return [String.fromCharCode(parseInt(m[0], 8) & 255), i + 1 + m[0].length];
  }
  throw new FilterSyntaxError(`unknown escape '\\${c ?? ''}' in the literal starting at ${start}`, i);
}

export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let spaced = true;
  const push = (t: Token): void => {
    tokens.push({ ...t, spaced });
    spaced = false;
  };
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r') {
      i++;
      spaced = true;
      continue;
    }
    const raw = (ch === 'r' || ch === 'R') && text[i + 1] === '"';
    if (ch === '"' || raw) {
      const start = i;
      let value = '';
      i += raw ? 2 : 1;
      for (;;) {
        if (i >= text.length) throw new FilterSyntaxError(`unterminated string starting at ${start}`, start);
        const c = text[i]!;
        if (c === '"') break;
        if (c === '\\') {
          if (raw) {
            value += c + (text[i + 1] ?? '');
            i += 2;
            continue;
          }
          const [s, next] = readEscape(text, i, start);
          value += s;
          i = next;
          continue;
        }
        value += c;
        i++;
      }
      i++;
      push({ kind: 'string', text: value, pos: start });
      continue;
    }
    if (ch === "'") {
      const start = i;
      let value: string;
      if (text[i + 1] === '\\') [value, i] = readEscape(text, i + 1, start);
      else {
        value = text[i + 1] ?? '';
        i += 2;
      }
      if (text[i] !== "'" || value === '')
        throw new FilterSyntaxError(`unterminated character constant starting at ${start}`, start);
      i++;
      push({ kind: 'char', text: value, pos: start });
      continue;
    }
    if (ch === '$' && text[i + 1] === '{') {
      const end = text.indexOf('}', i);
      if (end < 0) throw new FilterSyntaxError(`expected '}' to close the field reference at ${i}`, i);
      push({ kind: 'ref', text: text.slice(i + 2, end).trim(), pos: i });
      i = end + 1;
      continue;
    }
    if (ch === '.' && text[i + 1] === '.') {
      push({ kind: '..', text: '..', pos: i });
      i += 2;
      continue;
    }
    if ('(){}[],#'.includes(ch)) {
      push({ kind: ch as TokenKind, text: ch, pos: i });
      i++;
      continue;
    }
    if (WORD_START.test(ch)) {
      const start = i;
      while (i < text.length && WORD_CHAR.test(text[i]!)) i++;
      // `..` inside a word splits it (`1..5`); a trailing `-` before a space is subtraction's.
      const word = text.slice(start, i);
      const at = word.indexOf('..');
      if (at > 0) {
        i = start + at;
        push({ kind: 'word', text: word.slice(0, at), pos: start });
        continue;
      }
      push({ kind: 'word', text: word, pos: start });
      continue;
    }
    const op = OPERATORS.find((o) => text.startsWith(o, i));
    if (op !== undefined) {
      push({ kind: 'op', text: op, pos: i });
      i += op.length;
      continue;
    }
    if (ch === '=') throw new FilterSyntaxError(`unexpected '=' at ${i}: compare with '=='`, i);
    if (ch === '|') throw new FilterSyntaxError(`unexpected '|' at ${i}: use '||' or 'or'`, i);
    throw new FilterSyntaxError(`unexpected character '${ch}' at ${i}`, i);
  }
  tokens.push({ kind: 'eof', text: '', pos: text.length, spaced });
  return tokens;
}

const WORD_OPS: Readonly<Record<string, CmpOp>> = {
  eq: 'any_eq',
  any_eq: 'any_eq',
  ne: 'all_ne',
  all_ne: 'all_ne',
  all_eq: 'all_eq',
  any_ne: 'any_ne',
  gt: 'gt',
  ge: 'ge',
  lt: 'lt',
  le: 'le',
  contains: 'contains',
  matches: 'matches',
};
const SYMBOL_OPS: Readonly<Record<string, CmpOp>> = {
  '==': 'any_eq',
  '!=': 'all_ne',
  '===': 'all_eq',
  '!==': 'any_ne',
  '~=': 'any_ne',
  '>': 'gt',
  '>=': 'ge',
  '<': 'lt',
  '<=': 'le',
  '~': 'matches',
};

function describe(t: Token): string {
  if (t.kind === 'eof') return 'the end of the filter';
  if (t.kind === 'string') return `"${t.text}"`;
  return `'${t.text}'`;
}

/** Parses a slice or layer spec (`0:4`, `1-3`, `-4:`, `:2`, `5`) at `pos`. */
function parseRange(spec: string, pos: number): SliceRange {
  const int = (s: string): number => {
    if (!/^-?\d+$/.test(s)) throw new FilterSyntaxError(`expected an offset in '[${spec}]' at ${pos}`, pos);
    return Number(s);
  };
  let m: RegExpExecArray | null;
  if ((m = /^(-?\d*):(-?\d*)$/.exec(spec))) {
    const start = m[1] === '' ? 0 : int(m[1]!);
    if (m[2] === '') return { start };
    const length = int(m[2]!);
    if (length <= 0)
      throw new FilterSyntaxError(`a slice length must be positive in '[${spec}]' at ${pos}`, pos);
    return { start, length };
  }
  if ((m = /^(-?\d+)-(-?\d+)$/.exec(spec))) {
    const start = int(m[1]!);
    const end = int(m[2]!);
    if (start >= 0 === end >= 0 && end < start)
      throw new FilterSyntaxError(`a range ends before it starts in '[${spec}]' at ${pos}`, pos);
    return end >= 0 && start >= 0 ? { start, length: end - start + 1 } : { start, end };
  }
  return { start: int(spec), length: 1 };
}

class Parser {
  private at = 0;

  constructor(
    private readonly tokens: Token[],
    private readonly text: string,
  ) {}

  private peek(k = 0): Token {
    return this.tokens[Math.min(this.at + k, this.tokens.length - 1)]!;
  }

  private take(): Token {
    return this.tokens[this.at++]!;
  }

  private isWord(t: Token, ...words: string[]): boolean {
    return t.kind === 'word' && words.includes(t.text.toLowerCase());
  }

  private isOp(t: Token, ...ops: string[]): boolean {
    return t.kind === 'op' && ops.includes(t.text);
  }

  parseFilter(): Node {
    const node = this.parseOr();
    const t = this.peek();
    if (t.kind !== 'eof') {
      const hint =
        t.kind === 'word' || t.kind === '(' || t.kind === 'string' ? " (join tests with '&&' or '||')" : '';
      throw new FilterSyntaxError(`unexpected ${describe(t)} at ${t.pos}${hint}`, t.pos);
    }
    return node;
  }

  private parseOr(): Node {
    let left = this.parseXor(null);
    for (;;) {
      const t = this.peek();
      if (!(this.isOp(t, '||') || this.isWord(t, 'or'))) return left;
      this.take();
      left = { kind: 'or', left, right: this.parseXor(t) };
    }
  }

  private parseXor(after: Token | null): Node {
    let left = this.parseAnd(after);
    for (;;) {
      const t = this.peek();
      if (!(this.isOp(t, '^^') || this.isWord(t, 'xor'))) return left;
      this.take();
      left = { kind: 'xor', left, right: this.parseAnd(t) };
    }
  }

  private parseAnd(after: Token | null): Node {
    let left = this.parseUnary(after);
    for (;;) {
      const t = this.peek();
      if (!(this.isOp(t, '&&') || this.isWord(t, 'and'))) return left;
      this.take();
      left = { kind: 'and', left, right: this.parseUnary(t) };
    }
  }

  private parseUnary(after: Token | null): Node {
    const t = this.peek();
    if (this.isOp(t, '!') || this.isWord(t, 'not')) {
      this.take();
      return { kind: 'not', expr: this.parseUnary(t), pos: t.pos };
    }
    if (t.kind === '(') {
      this.take();
      const inner = this.parseOr();
      const close = this.take();
      if (close.kind !== ')')
        throw new FilterSyntaxError(
          `expected ')' at ${close.pos} to close the '(' at ${t.pos}, found ${describe(close)}`,
          close.pos,
        );
      return inner;
    }
    return this.parseTest(after);
  }

  private parseTest(after: Token | null): Node {
    let quantifier: 'any' | 'all' | undefined;
    const q = this.peek();
    if (this.isWord(q, 'any', 'all') && this.startsValue(this.peek(1))) {
      this.take();
      quantifier = q.text.toLowerCase() as 'any' | 'all';
    }
    const first = this.peek();
    if (!this.startsValue(first) || this.isWord(first, 'and', 'or', 'xor', 'in', 'contains', 'matches')) {
      const where = after ? ` after '${after.text}'` : '';
      throw new FilterSyntaxError(
        `expected a field, a protocol or '('${where} at ${first.pos}, found ${describe(first)}`,
        first.pos,
      );
    }
    const left = this.parseSum();
    const t = this.peek();
    const op =
      t.kind === 'op' ? SYMBOL_OPS[t.text] : t.kind === 'word' ? WORD_OPS[t.text.toLowerCase()] : undefined;
    if (op !== undefined) {
      this.take();
      const right = this.parseOperand(t);
      return { kind: 'cmp', op, quantifier, left, right, pos: first.pos, opPos: t.pos };
    }
    if (this.isWord(t, 'in') || (this.isWord(t, 'not') && this.isWord(this.peek(1), 'in'))) {
      const negated = this.isWord(t, 'not');
      if (negated) this.take();
      const inTok = this.take();
      return {
        kind: 'in',
        negated,
        quantifier,
        left,
        items: this.parseSet(inTok),
        pos: first.pos,
        opPos: t.pos,
      };
    }
    if (t.kind === 'op' && t.text === '=')
      throw new FilterSyntaxError(`unexpected '=' at ${t.pos}: compare with '=='`, t.pos);
    if (quantifier !== undefined)
      throw new FilterSyntaxError(
        `'${quantifier}' needs a comparison after ${describe(first)} at ${t.pos}`,
        t.pos,
      );
    return { kind: 'test', expr: left, pos: first.pos };
  }

  private startsValue(t: Token): boolean {
    return (
      t.kind === 'word' ||
      t.kind === 'string' ||
      t.kind === 'char' ||
      t.kind === 'ref' ||
      t.kind === '{' ||
      this.isOp(t, '-')
    );
  }

  private parseOperand(after: Token): Entity {
    const t = this.peek();
    if (!this.startsValue(t))
      throw new FilterSyntaxError(
        `expected a value after '${after.text}' at ${t.pos}, found ${describe(t)}`,
        t.pos,
      );
    return this.parseSum();
  }

  private parseSum(): Entity {
    let left = this.parseProduct();
    for (;;) {
      const t = this.peek();
      if (!this.isOp(t, '+', '-')) return left;
      this.take();
      const right = this.parseOperandOf(t, () => this.parseProduct());
      left = { kind: 'arith', op: t.text as '+' | '-', left, right, pos: t.pos };
    }
  }

  private parseProduct(): Entity {
    let left = this.parseBitAnd();
    for (;;) {
      const t = this.peek();
      if (!this.isOp(t, '*', '/', '%')) return left;
      this.take();
      const right = this.parseOperandOf(t, () => this.parseBitAnd());
      left = { kind: 'arith', op: t.text as '*' | '/' | '%', left, right, pos: t.pos };
    }
  }

  private parseBitAnd(): Entity {
    let left = this.parseUnaryValue();
    for (;;) {
      const t = this.peek();
      if (!(this.isOp(t, '&') || this.isWord(t, 'bitwise_and'))) return left;
      this.take();
      const right = this.parseOperandOf(t, () => this.parseUnaryValue());
      left = { kind: 'arith', op: '&', left, right, pos: t.pos };
    }
  }

  private parseOperandOf(op: Token, parse: () => Entity): Entity {
    const t = this.peek();
    if (!this.startsValue(t))
      throw new FilterSyntaxError(
        `expected a value after '${op.text}' at ${t.pos}, found ${describe(t)}`,
        t.pos,
      );
    return parse();
  }

  private parseUnaryValue(): Entity {
    const t = this.peek();
    if (this.isOp(t, '-')) {
      this.take();
      const expr = this.parseOperandOf(t, () => this.parseUnaryValue());
      // A negative number literal stays a literal (`-5`), so types resolve as for `5`.
      if (expr.kind === 'literal' && expr.quoted === 'none' && /^[0-9.]/.test(expr.text))
        return { ...expr, text: `-${expr.text}`, pos: t.pos };
      return { kind: 'neg', expr, pos: t.pos };
    }
    let e = this.parsePrimary();
    while (this.peek().kind === '[' && !this.peek().spaced) {
      const open = this.take();
      e = { kind: 'slice', expr: e, ranges: this.parseRanges(open), pos: open.pos };
    }
    return e;
  }

  /** The ranges inside `[...]`, read from the raw text (offsets may be negative and contain ':' '-'). */
  private parseRanges(open: Token): SliceRange[] {
    const close = this.text.indexOf(']', open.pos);
    if (close < 0) throw new FilterSyntaxError(`expected ']' to close the '[' at ${open.pos}`, open.pos);
    const inner = this.text.slice(open.pos + 1, close);
    const ranges: SliceRange[] = [];
    let offset = open.pos + 1;
    for (const part of inner.split(',')) {
      const spec = part.trim();
      if (spec === '') throw new FilterSyntaxError(`expected an offset at ${offset}`, offset);
      ranges.push(parseRange(spec.replace(/\s+/g, ''), offset + part.indexOf(spec)));
      offset += part.length + 1;
    }
    while (this.peek().kind !== 'eof' && this.peek().pos <= close) this.take();
    return ranges;
  }

  private parsePrimary(): Entity {
    const t = this.take();
    switch (t.kind) {
      case 'string':
        return { kind: 'literal', text: t.text, pos: t.pos, quoted: 'string' };
      case 'char':
        return { kind: 'literal', text: t.text, pos: t.pos, quoted: 'char' };
      case 'ref':
        if (t.text === '') throw new FilterSyntaxError(`expected a field name in '\${}' at ${t.pos}`, t.pos);
        return { kind: 'ref', name: t.text, pos: t.pos };
      case '{': {
        const inner = this.parseSum();
        const close = this.take();
        if (close.kind !== '}')
          throw new FilterSyntaxError(
            `expected '}' at ${close.pos} to close the '{' at ${t.pos}, found ${describe(close)}`,
            close.pos,
          );
        return inner;
      }
      case 'word': {
        if (this.peek().kind === '(' && !this.peek().spaced && /^[a-z_][a-z0-9_]*$/i.test(t.text)) {
          this.take();
          const args: Entity[] = [];
          if (this.peek().kind !== ')') {
            for (;;) {
              args.push(this.parseOperandOf(t, () => this.parseSum()));
              const sep = this.take();
              if (sep.kind === ')') break;
              if (sep.kind !== ',')
                throw new FilterSyntaxError(
                  `expected ',' or ')' in the call to ${t.text}() at ${sep.pos}, found ${describe(sep)}`,
                  sep.pos,
                );
            }
          } else this.take();
          return { kind: 'call', name: t.text.toLowerCase(), args, pos: t.pos };
        }
        if (this.peek().kind === '#' && !this.peek().spaced) {
          const hash = this.take();
          const n = this.peek();
          let layers: SliceRange[];
          if (n.kind === '[') {
            this.take();
            layers = this.parseRanges(n);
          } else if (n.kind === 'word' && /^\d+$/.test(n.text)) {
            this.take();
            layers = [{ start: Number(n.text), length: 1 }];
          } else throw new FilterSyntaxError(`expected a layer number after '#' at ${n.pos}`, hash.pos);
          return { kind: 'field', name: t.text, pos: t.pos, layers };
        }
        return { kind: 'literal', text: t.text, pos: t.pos, quoted: 'none' };
      }
      default:
        throw new FilterSyntaxError(`expected a value at ${t.pos}, found ${describe(t)}`, t.pos);
    }
  }

  private parseSet(inToken: Token): SetItem[] {
    const open = this.take();
    if (open.kind !== '{')
      throw new FilterSyntaxError(
        `expected '{' after 'in' at ${open.pos}, found ${describe(open)}`,
        open.pos,
      );
    const items: SetItem[] = [];
    let prev: Token = open;
    for (;;) {
      const t = this.peek();
      if (t.kind === '}') {
        if (items.length === 0)
          throw new FilterSyntaxError(`empty set at ${open.pos}: list values in { }`, t.pos);
        this.take();
        return items;
      }
      if (t.kind === 'eof')
        throw new FilterSyntaxError(
          `expected '}' at ${t.pos} to close the '{' at ${open.pos} (after '${inToken.text}')`,
          t.pos,
        );
      if (t.kind === ',') {
        if (prev.kind === '{' || prev.kind === ',')
          throw new FilterSyntaxError(`expected a value before ',' at ${t.pos}`, t.pos);
        prev = this.take();
        continue;
      }
      const lo = this.parseOperandOf(prev, () => this.parseSum());
      const item: SetItem = { lo };
      if (this.peek().kind === '..') {
        const dots = this.take();
        item.hi = this.parseOperandOf(dots, () => this.parseSum());
      }
      items.push(item);
      prev = this.tokens[this.at - 1]!;
    }
  }
}

/** Parses a filter; blank text is "no filter" and gives null. Throws FilterSyntaxError. */
export function parseFilter(text: string): Node | null {
  const tokens = tokenize(text);
  if (tokens.length === 1) return null;
  return new Parser(tokens, text).parseFilter();
}
