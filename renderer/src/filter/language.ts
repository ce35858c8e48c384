/**
 * What the renderer knows of the display-filter language, for highlighting and autocomplete only: the
 * service parses and validates (`filter.check`), so a mismatch here costs colour, never correctness.
 */
import { FIELD_ALIASES, FIELDS as REGISTRY, type FieldValues, PROTOCOLS } from '@common/fields';
import { ICMP4_TYPES, ICMP6_TYPES } from '@common/icmp';

const HOOK_NAMES = ['prerouting', 'local-in', 'forward', 'local-out', 'postrouting', 'none'];

export interface FieldInfo {
  name: string;
  doc: string;
  /** Which value list autocomplete offers after an operator. */
  values?: 'type4' | 'type6' | 'dir' | 'hook' | 'iface' | 'address';
}

const VALUES: Readonly<Record<FieldValues, FieldInfo['values']>> = {
  type4: 'type4',
  type6: 'type6',
  dir: 'dir',
  hook: 'hook',
  iface: 'iface',
  address4: 'address',
  address6: 'address',
};

/**
 * Completion and help come from the one field registry (electron/common/fields.ts), in Wireshark's
 * spelling; icmpcap's message kinds follow. The short names the filter still accepts (`rtt`, `dir`,
 * `iface`, `len`, `icmp.id`...) are highlighted as fields but not offered.
 */
export const FIELDS: readonly FieldInfo[] = [
  ...[...REGISTRY, ...PROTOCOLS].map((f) => ({
    name: f.name,
    doc: f.description,
    ...(f.values ? { values: VALUES[f.values] } : {}),
  })),
  { name: 'echo', doc: 'echo requests and replies (both families)' },
  { name: 'error', doc: 'ICMP error messages (both families)' },
  { name: 'nd', doc: 'neighbour and router discovery' },
];

export const FIELD_NAMES = new Set([...FIELDS.map((f) => f.name), ...Object.keys(FIELD_ALIASES), 'ttl']);
export const TYPE_NAMES_4 = Object.values(ICMP4_TYPES).map((t) => t.key);
export const TYPE_NAMES_6 = Object.values(ICMP6_TYPES).map((t) => t.key);
export const VALUE_WORDS = new Set([...TYPE_NAMES_4, ...TYPE_NAMES_6, 'in', 'out', 'fwd', ...HOOK_NAMES]);
export const HOOK_NAMES_LIST = HOOK_NAMES;
export const OPERATORS = [
  '==',
  '!=',
  '===',
  '!==',
  '<=',
  '>=',
  '<',
  '>',
  'in',
  'not in',
  'contains',
  'matches',
];

export type TokenKind =
  | 'field'
  | 'value'
  | 'number'
  | 'address'
  | 'string'
  | 'operator'
  | 'logic'
  | 'paren'
  | 'word'
  | 'space'
  | 'bad';

export interface Token {
  kind: TokenKind;
  text: string;
  start: number;
}

const PATTERNS: [TokenKind, RegExp][] = [
  ['space', /\s+/y],
  ['string', /"(?:[^"\\]|\\.)*"?/y],
  ['logic', /&&|\|\||!(?!=)|\b(?:and|or|not)\b/y],
  [
    'operator',
    /===|!==|==|!=|~=|<=|>=|<|>|~|\.\.|\b(?:in|eq|ne|lt|le|gt|ge|contains|matches|any_eq|all_ne|all_eq|any_ne)\b/y,
  ],
  ['paren', /[(){},]/y],
  // IPv6 (with optional CIDR) before IPv4 and numbers: anything with a colon and hex digits.
  ['address', /[0-9a-fA-F]*:[0-9a-fA-F:.]*(?:\/\d{1,3})?/y],
  ['address', /\d{1,3}(?:\.\d{1,3}){3}(?:\/\d{1,2})?/y],
  ['number', /\d+(?:\.\d+)?/y],
  ['word', /[A-Za-z_][\w.-]*/y],
];

export function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < text.length) {
    let matched = false;
    for (const [kind, re] of PATTERNS) {
      re.lastIndex = i;
      const m = re.exec(text);
      if (m && m[0].length > 0) {
        let k: TokenKind = kind;
        if (kind === 'word') k = FIELD_NAMES.has(m[0]) ? 'field' : VALUE_WORDS.has(m[0]) ? 'value' : 'word';
        out.push({ kind: k, text: m[0], start: i });
        i += m[0].length;
        matched = true;
        break;
      }
    }
    if (!matched) {
      out.push({ kind: 'bad', text: text[i]!, start: i });
      i++;
    }
  }
  return out;
}
