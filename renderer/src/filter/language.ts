/**
 * What the renderer knows of the display-filter language, for highlighting and autocomplete only: the
 * service parses and validates (`filter.check`), so a mismatch here costs colour, never correctness.
 */
import { ICMP4_TYPES, ICMP6_TYPES } from '@common/icmp';

export interface FieldInfo {
  name: string;
  doc: string;
  /** Which value list autocomplete offers after an operator. */
  values?: 'type4' | 'type6' | 'dir' | 'iface' | 'address';
}

export const FIELDS: readonly FieldInfo[] = [
  { name: 'ip.src', doc: 'IPv4 source address or CIDR', values: 'address' },
  { name: 'ip.dst', doc: 'IPv4 destination address or CIDR', values: 'address' },
  { name: 'ip.addr', doc: 'IPv4 source or destination', values: 'address' },
  { name: 'ipv6.src', doc: 'IPv6 source address or CIDR', values: 'address' },
  { name: 'ipv6.dst', doc: 'IPv6 destination address or CIDR', values: 'address' },
  { name: 'ipv6.addr', doc: 'IPv6 source or destination', values: 'address' },
  { name: 'icmp.type', doc: 'ICMP type, number or name', values: 'type4' },
  { name: 'icmp.code', doc: 'ICMP code' },
  { name: 'icmp.id', doc: 'echo identifier' },
  { name: 'icmp.seq', doc: 'echo sequence number' },
  { name: 'icmpv6.type', doc: 'ICMPv6 type, number or name', values: 'type6' },
  { name: 'icmpv6.code', doc: 'ICMPv6 code' },
  { name: 'dir', doc: 'direction: in, out, fwd', values: 'dir' },
  { name: 'iface', doc: 'interface name', values: 'iface' },
  { name: 'len', doc: 'length in bytes' },
  { name: 'ttl', doc: 'TTL or hop limit' },
  { name: 'rtt', doc: 'round-trip time of replies, ms' },
  { name: 'ip.ttl', doc: 'IPv4 TTL' },
  { name: 'ipv6.hlim', doc: 'IPv6 hop limit' },
  { name: 'frame.number', doc: 'record number' },
  { name: 'frame.time_relative', doc: 'seconds since the first packet' },
  { name: 'echo', doc: 'echo requests and replies' },
  { name: 'error', doc: 'ICMP error messages' },
  { name: 'nd', doc: 'neighbour and router discovery' },
  { name: 'icmp', doc: 'any ICMP (IPv4) message' },
  { name: 'icmpv6', doc: 'any ICMPv6 message' },
  { name: 'ip', doc: 'any IPv4 packet' },
  { name: 'ipv6', doc: 'any IPv6 packet' },
];

export const FIELD_NAMES = new Set(FIELDS.map((f) => f.name));
export const TYPE_NAMES_4 = Object.values(ICMP4_TYPES).map((t) => t.key);
export const TYPE_NAMES_6 = Object.values(ICMP6_TYPES).map((t) => t.key);
export const VALUE_WORDS = new Set([...TYPE_NAMES_4, ...TYPE_NAMES_6, 'in', 'out', 'fwd']);
export const OPERATORS = ['==', '!=', '<=', '>=', '<', '>', 'in'];

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
  ['operator', /==|!=|<=|>=|<|>|\.\.|\b(?:in|eq|ne|lt|le|gt|ge)\b/y],
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
