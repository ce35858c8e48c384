/**
 * The display-filter language, Wireshark style: a tokenizer and a recursive-descent parser that turn
 * `ip.addr == 10.0.0.0/8 && !(icmp.type in {echo-request echo-reply})` into an AST. Meaning (which
 * fields exist, what a value stands for) is checked by the compiler (compile.ts), which reports its
 * errors the same way: a `FilterSyntaxError` whose `position` is a 0-based character offset into the
 * filter text, and whose message says what was expected and where.
 *
 * Grammar (`!` binds tighter than `&&`, which binds tighter than `||`, as in Wireshark and C):
 *
 *   filter  := or EOF
 *   or      := and (('||' | 'or') and)*
 *   and     := unary (('&&' | 'and') unary)*
 *   unary   := ('!' | 'not') unary | primary
 *   primary := '(' or ')' | WORD [relop value | 'in' set]     (a bare WORD tests presence)
 *   relop   := '==' | '!=' | '<' | '<=' | '>' | '>=' | 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge'
 *   set     := '{' item ((',')? item)* '}'
 *   item    := value ['..' value]
 *   value   := WORD | STRING
 *
 * A WORD is a run of letters, digits and `_ . : / -`, so addresses (`fe80::1`, `10.0.0.0/8`), names
 * (`echo-request`) and field names (`icmp.type`) are single tokens; `..` inside a word splits it
 * (`1..5` is a range). STRING is double-quoted with `\"` and `\\` escapes.
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

export type RelOp = '==' | '!=' | '<' | '<=' | '>' | '>=';

export interface Value {
  text: string;
  quoted: boolean;
  pos: number;
}

export interface SetItem {
  lo: Value;
  /** The upper bound of a range `lo..hi`. */
  hi?: Value;
}

export type Node =
  | { kind: 'and' | 'or'; left: Node; right: Node }
  | { kind: 'not'; expr: Node; pos: number }
  /** A bare word: a protocol (`icmp`), a kind shortcut (`echo`) or a field presence test (`rtt`). */
  | { kind: 'word'; name: string; pos: number }
  | { kind: 'cmp'; field: string; fieldPos: number; op: RelOp; opPos: number; value: Value }
  | { kind: 'in'; field: string; fieldPos: number; opPos: number; items: SetItem[] };

type TokenKind = 'word' | 'string' | 'op' | '(' | ')' | '{' | '}' | ',' | '..' | 'eof';

export interface Token {
  kind: TokenKind;
  text: string;
  pos: number;
}

const WORD_CHAR = /[A-Za-z0-9_.:/-]/;
const OPERATORS = ['==', '!=', '<=', '>=', '&&', '||', '<', '>', '!'] as const;

export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r') {
      i++;
      continue;
    }
    if (ch === '"') {
      const start = i;
      let value = '';
      i++;
      for (;;) {
        if (i >= text.length) throw new FilterSyntaxError(`unterminated string starting at ${start}`, start);
        const c = text[i]!;
        if (c === '"') break;
        if (c === '\\') {
          const next = text[i + 1];
          if (next !== '"' && next !== '\\') {
            throw new FilterSyntaxError(`unknown escape '\\${next ?? ''}' in string at ${i}`, i);
          }
          value += next;
          i += 2;
          continue;
        }
        value += c;
        i++;
      }
      i++;
      tokens.push({ kind: 'string', text: value, pos: start });
      continue;
    }
    if (ch === '(' || ch === ')' || ch === '{' || ch === '}' || ch === ',') {
      tokens.push({ kind: ch, text: ch, pos: i });
      i++;
      continue;
    }
    const op = OPERATORS.find((o) => text.startsWith(o, i));
    if (op !== undefined) {
      tokens.push({ kind: 'op', text: op, pos: i });
      i += op.length;
      continue;
    }
    if (WORD_CHAR.test(ch)) {
      const start = i;
      while (i < text.length && WORD_CHAR.test(text[i]!)) i++;
      splitRanges(text.slice(start, i), start, tokens);
      continue;
    }
    if (ch === '=') throw new FilterSyntaxError(`unexpected '=' at ${i}: compare with '=='`, i);
    if (ch === '&') throw new FilterSyntaxError(`unexpected '&' at ${i}: use '&&' or 'and'`, i);
    if (ch === '|') throw new FilterSyntaxError(`unexpected '|' at ${i}: use '||' or 'or'`, i);
    throw new FilterSyntaxError(`unexpected character '${ch}' at ${i}`, i);
  }
  tokens.push({ kind: 'eof', text: '', pos: text.length });
  return tokens;
}

/** `1..5` is three tokens; no address or name contains `..`. */
function splitRanges(word: string, start: number, out: Token[]): void {
  let from = 0;
  for (;;) {
    const at = word.indexOf('..', from);
    if (at < 0) break;
    if (at > from) out.push({ kind: 'word', text: word.slice(from, at), pos: start + from });
    out.push({ kind: '..', text: '..', pos: start + at });
    from = at + 2;
  }
  if (from < word.length) out.push({ kind: 'word', text: word.slice(from), pos: start + from });
}

const WORD_OPS: Readonly<Record<string, RelOp>> = {
  eq: '==',
  ne: '!=',
  lt: '<',
  le: '<=',
  gt: '>',
  ge: '>=',
};
const SYMBOL_OPS = new Set<string>(['==', '!=', '<', '<=', '>', '>=']);

function describe(t: Token): string {
  if (t.kind === 'eof') return 'the end of the filter';
  if (t.kind === 'string') return `"${t.text}"`;
  return `'${t.text}'`;
}

class Parser {
  private at = 0;

  constructor(private readonly tokens: Token[]) {}

  private peek(): Token {
    return this.tokens[this.at]!;
  }

  private take(): Token {
    return this.tokens[this.at++]!;
  }

  private isWord(t: Token, ...words: string[]): boolean {
    return t.kind === 'word' && words.includes(t.text.toLowerCase());
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
    let left = this.parseAnd(null);
    for (;;) {
      const t = this.peek();
      if (!((t.kind === 'op' && t.text === '||') || this.isWord(t, 'or'))) return left;
      this.take();
      left = { kind: 'or', left, right: this.parseAnd(t) };
    }
  }

  private parseAnd(after: Token | null): Node {
    let left = this.parseUnary(after);
    for (;;) {
      const t = this.peek();
      if (!((t.kind === 'op' && t.text === '&&') || this.isWord(t, 'and'))) return left;
      this.take();
      left = { kind: 'and', left, right: this.parseUnary(t) };
    }
  }

  /** `after` is the operator before this operand, for the error message. */
  private parseUnary(after: Token | null): Node {
    const t = this.peek();
    if ((t.kind === 'op' && t.text === '!') || this.isWord(t, 'not')) {
      this.take();
      return { kind: 'not', expr: this.parseUnary(t), pos: t.pos };
    }
    return this.parsePrimary(after);
  }

  private parsePrimary(after: Token | null): Node {
    const t = this.take();
    if (t.kind === '(') {
      const inner = this.parseOr();
      const close = this.take();
      if (close.kind !== ')') {
        throw new FilterSyntaxError(
          `expected ')' at ${close.pos} to close the '(' at ${t.pos}, found ${describe(close)}`,
          close.pos,
        );
      }
      return inner;
    }
    if (t.kind !== 'word' || this.isWord(t, 'and', 'or')) {
      const where = after ? ` after '${after.text}'` : '';
      throw new FilterSyntaxError(
        `expected a field, a protocol or '('${where} at ${t.pos}, found ${describe(t)}`,
        t.pos,
      );
    }
    const next = this.peek();
    if (next.kind === 'op' && SYMBOL_OPS.has(next.text)) {
      this.take();
      return this.comparison(t, next, next.text as RelOp);
    }
    if (next.kind === 'word') {
      const lower = next.text.toLowerCase();
      const op = WORD_OPS[lower];
      if (op !== undefined) {
        this.take();
        return this.comparison(t, next, op);
      }
      if (lower === 'in') {
        this.take();
        return { kind: 'in', field: t.text, fieldPos: t.pos, opPos: next.pos, items: this.parseSet(next) };
      }
    }
    return { kind: 'word', name: t.text, pos: t.pos };
  }

  private comparison(field: Token, opToken: Token, op: RelOp): Node {
    const value = this.parseValue(opToken);
    return { kind: 'cmp', field: field.text, fieldPos: field.pos, op, opPos: opToken.pos, value };
  }

  private parseValue(after: Token): Value {
    const t = this.peek();
    if (t.kind !== 'word' && t.kind !== 'string') {
      throw new FilterSyntaxError(
        `expected a value after '${after.text}' at ${t.pos}, found ${describe(t)}`,
        t.pos,
      );
    }
    this.take();
    return { text: t.text, quoted: t.kind === 'string', pos: t.pos };
  }

  private parseSet(inToken: Token): SetItem[] {
    const open = this.take();
    if (open.kind !== '{') {
      throw new FilterSyntaxError(
        `expected '{' after 'in' at ${open.pos}, found ${describe(open)}`,
        open.pos,
      );
    }
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
      if (t.kind === 'eof') {
        throw new FilterSyntaxError(
          `expected '}' at ${t.pos} to close the '{' at ${open.pos} (after '${inToken.text}')`,
          t.pos,
        );
      }
      if (t.kind === ',') {
        if (prev.kind === '{' || prev.kind === ',') {
          throw new FilterSyntaxError(`expected a value before ',' at ${t.pos}`, t.pos);
        }
        prev = this.take();
        continue;
      }
      const lo = this.parseValue(prev);
      const item: SetItem = { lo };
      if (this.peek().kind === '..') {
        const dots = this.take();
        item.hi = this.parseValue(dots);
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
  return new Parser(tokens).parseFilter();
}
