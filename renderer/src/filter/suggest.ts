/** Autocomplete for the filter bar: fields where a field can go, values after `field ==`, operators after a field. */
import { FIELD_ALIASES } from '@common/fields';
import {
  FIELDS,
  HOOK_NAMES_LIST,
  OPERATORS,
  TYPE_NAMES_4,
  TYPE_NAMES_6,
  type Token,
  tokenize,
} from './language';

export interface Suggestion {
  label: string;
  /** Text that replaces text[from, to). */
  insert: string;
  doc?: string;
}

export interface Suggestions {
  from: number;
  to: number;
  items: Suggestion[];
}

export interface SuggestContext {
  interfaces: string[];
  addresses: string[];
}

const WORDLIKE = new Set(['field', 'value', 'word', 'address', 'number']);
const MAX = 12;

function valuesFor(field: string, ctx: SuggestContext): Suggestion[] {
  const info = FIELDS.find((f) => f.name === (FIELD_ALIASES[field] ?? field));
  const v4 = field.startsWith('ip.');
  switch (info?.values) {
    case 'type4':
      return TYPE_NAMES_4.map((t) => ({ label: t, insert: t }));
    case 'type6':
      return TYPE_NAMES_6.map((t) => ({ label: t, insert: t }));
    case 'dir':
      return ['in', 'out', 'fwd'].map((d) => ({ label: d, insert: d }));
    case 'hook':
      return HOOK_NAMES_LIST.map((h) => ({ label: h, insert: h }));
    case 'iface':
      return ctx.interfaces.map((i) => ({ label: i, insert: i }));
    case 'address':
      return ctx.addresses.filter((a) => a.includes(':') !== v4).map((a) => ({ label: a, insert: a }));
    default:
      return [];
  }
}

export function suggest(text: string, caret: number, ctx: SuggestContext): Suggestions | null {
  const tokens = tokenize(text.slice(0, caret));
  let current: Token | undefined = tokens[tokens.length - 1];
  if (current && !WORDLIKE.has(current.kind)) current = undefined;
  const from = current ? current.start : caret;
  const prefix = current ? current.text : '';
  // The end of the word under the caret, so accepting replaces all of it.
  const rest = /^[\w.:-]*/.exec(text.slice(caret))![0];
  const to = caret + rest.length;
  const before = tokens.slice(0, current ? -1 : undefined).filter((t) => t.kind !== 'space');
  const prev = before[before.length - 1];

  let pool: Suggestion[];
  if (
    prev &&
    (prev.kind === 'operator' || (prev.kind === 'paren' && prev.text !== '(' && prev.text !== ')'))
  ) {
    // After `field ==` or inside `field in { a, b`: that field's values.
    let i = before.length - 1;
    while (i >= 0 && before[i]!.kind !== 'field') i--;
    pool = i >= 0 ? valuesFor(before[i]!.text, ctx) : [];
  } else if (prev && prev.kind === 'field' && !current) {
    pool = OPERATORS.map((o) => ({ label: o, insert: `${o} ` }));
  } else if (!prev || prev.kind === 'logic' || prev.text === '(') {
    pool = FIELDS.map((f) => ({ label: f.name, insert: f.name, doc: f.doc }));
  } else return null;

  const lower = prefix.toLowerCase();
  const items = pool
    .filter((s) => s.label.toLowerCase().startsWith(lower) && s.label !== prefix)
    .slice(0, MAX);
  return items.length ? { from, to, items } : null;
}
