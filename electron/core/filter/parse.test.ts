import { describe, expect, it } from 'vitest';
import { checkFilter } from './compile.js';
import { FilterSyntaxError, type Node, parseFilter, tokenize } from './parse.js';

/** The AST as compact text, to compare shapes. */
function show(node: Node | null): string {
  if (node === null) return 'null';
  switch (node.kind) {
    case 'and':
    case 'or':
      return `(${show(node.left)} ${node.kind} ${show(node.right)})`;
    case 'not':
      return `!${show(node.expr)}`;
    case 'word':
      return node.name;
    case 'cmp':
      return `[${node.field} ${node.op} ${node.value.quoted ? `"${node.value.text}"` : node.value.text}]`;
    case 'in':
      return `[${node.field} in ${node.items.map((i) => (i.hi ? `${i.lo.text}..${i.hi.text}` : i.lo.text)).join(',')}]`;
  }
}

function errorOf(text: string): { message: string; position: number } {
  try {
    checkFilter(text);
  } catch (err) {
    if (err instanceof FilterSyntaxError) return { message: err.message, position: err.position };
    throw err;
  }
  throw new Error(`no error for ${text}`);
}

describe('tokenizer', () => {
  it('keeps addresses, prefixes and names as single words', () => {
    const words = tokenize('ip.addr==10.0.0.0/8 fe80::1/64 echo-request ::ffff:1.2.3.4')
      .filter((t) => t.kind === 'word')
      .map((t) => t.text);
    expect(words).toEqual(['ip.addr', '10.0.0.0/8', 'fe80::1/64', 'echo-request', '::ffff:1.2.3.4']);
  });

  it('splits ranges and records positions', () => {
    const tokens = tokenize('{1..5}');
    expect(tokens.map((t) => [t.kind, t.text, t.pos])).toEqual([
      ['{', '{', 0],
      ['word', '1', 1],
      ['..', '..', 2],
      ['word', '5', 4],
      ['}', '}', 5],
      ['eof', '', 6],
    ]);
  });

  it('reads strings with escapes', () => {
    const [t] = tokenize('"a\\"b\\\\c"');
    expect(t).toMatchObject({ kind: 'string', text: 'a"b\\c', pos: 0 });
  });
});

describe('parser', () => {
  const cases: [string, string][] = [
    ['', 'null'],
    ['   ', 'null'],
    ['icmp', 'icmp'],
    ['ip.src == 1.2.3.4', '[ip.src == 1.2.3.4]'],
    ['ip.src eq 1.2.3.4', '[ip.src == 1.2.3.4]'],
    ['ttl ne 5', '[ttl != 5]'],
    ['ttl lt 5', '[ttl < 5]'],
    ['ttl le 5', '[ttl <= 5]'],
    ['ttl gt 5', '[ttl > 5]'],
    ['ttl ge 5', '[ttl >= 5]'],
    ['ttl GE 5', '[ttl >= 5]'],
    ['ttl<5', '[ttl < 5]'],
    ['ttl<=5', '[ttl <= 5]'],
    ['ttl>5', '[ttl > 5]'],
    ['ttl>=5', '[ttl >= 5]'],
    ['ttl!=5', '[ttl != 5]'],
    ['a && b || c', '((a and b) or c)'],
    ['a || b && c', '(a or (b and c))'],
    ['a or b and c', '(a or (b and c))'],
    ['(a || b) && c', '((a or b) and c)'],
    ['!a && b', '(!a and b)'],
    ['not a and not b', '(!a and !b)'],
    ['!!a', '!!a'],
    ['! (a or b)', '!(a or b)'],
    ['a && b && c', '((a and b) and c)'],
    ['icmp.type in {1 2,3 4..6}', '[icmp.type in 1,2,3,4..6]'],
    ['icmp.seq in {1..5}', '[icmp.seq in 1..5]'],
    ['iface == "eth0"', '[iface == "eth0"]'],
    ['dir == in', '[dir == in]'],
    ['dir in {in out}', '[dir in in,out]'],
    [
      'ip.addr == 10.0.0.0/8 && icmp.type == echo-request',
      '([ip.addr == 10.0.0.0/8] and [icmp.type == echo-request])',
    ],
  ];
  for (const [text, shape] of cases) {
    it(`parses ${JSON.stringify(text)}`, () => expect(show(parseFilter(text))).toBe(shape));
  }
});

describe('errors say what was expected and where', () => {
  const cases: [string, number, RegExp][] = [
    ['ip.src ==', 9, /expected a value after '==' at 9, found the end of the filter/],
    ['ip.src == && icmp', 10, /expected a value after '==' at 10, found '&&'/],
    ['icmp &&', 7, /expected a field, a protocol or '\(' after '&&' at 7/],
    ['|| icmp', 0, /expected a field, a protocol or '\(' at 0/],
    ['icmp || or', 8, /expected a field, a protocol or '\(' after '\|\|' at 8, found 'or'/],
    ['and', 0, /expected a field, a protocol or '\(' at 0, found 'and'/],
    ['!', 1, /after '!' at 1/],
    ['(icmp', 5, /expected '\)' at 5 to close the '\(' at 0/],
    ['(icmp ttl', 6, /expected '\)' at 6 to close the '\(' at 0, found 'ttl'/],
    ['icmp)', 4, /unexpected '\)' at 4/],
    ['icmp ipv6', 5, /unexpected 'ipv6' at 5 \(join tests with '&&' or '\|\|'\)/],
    ['ttl = 5', 4, /unexpected '=' at 4: compare with '=='/],
    ['icmp & ip', 5, /use '&&'/],
    ['icmp | ip', 5, /use '\|\|'/],
    ['ttl == 5 $', 9, /unexpected character '\$' at 9/],
    ['iface == "eth0', 9, /unterminated string starting at 9/],
    ['iface == "a\\n"', 11, /unknown escape/],
    ['ttl in 5', 7, /expected '\{' after 'in' at 7/],
    ['ttl in {}', 8, /empty set/],
    ['ttl in {1 2', 11, /expected '\}' at 11 to close the '\{' at 7/],
    ['ttl in {,1}', 8, /expected a value before ',' at 8/],
    ['ttl in {1..}', 11, /expected a value after '\.\.' at 11/],
    // meaning errors point at the offending part too
    ['foo == 1', 0, /unknown field 'foo' at 0/],
    ['ip.scr == 1.2.3.4', 0, /unknown field 'ip.scr' at 0 \(did you mean 'ip.src'\?\)/],
    ['icmp && bogus', 8, /unknown field or protocol 'bogus' at 8/],
    ['icmp == 1', 0, /'icmp' is a protocol or kind and has no value to compare at 0/],
    ['ip.src == 1.2.3', 10, /expected an IPv4 address or prefix for ip.src at 10, found '1.2.3'/],
    ['ip.src == fe80::1', 10, /'fe80::1' is an IPv6 address but ip.src is IPv4 at 10; use ipv6.src/],
    ['ipv6.dst == 1.2.3.4', 12, /is an IPv4 address but ipv6.dst is IPv6 at 12; use ip.dst/],
    ['ip.addr == 10.0.0.0/33', 11, /bad prefix length '\/33': an IPv4 prefix is \/0 to \/32 at 11/],
    ['ipv6.addr == ::/129', 13, /an IPv6 prefix is \/0 to \/128/],
    ['ip.src > 1.2.3.4', 7, /ip.src compares with == or != \(or 'in'\), not '>' at 7/],
    ['ip.src in {1.2.3.4..1.2.3.9}', 11, /a range needs numbers/],
    ['icmp.type == banana', 13, /unknown ICMP type 'banana' at 13/],
    [
      'icmpv6.type == source-quench',
      15,
      /unknown ICMPv6 type 'source-quench' at 15 \(it is an ICMPv4 type\)/,
    ],
    ['icmp.type == 256', 13, /icmp.type is 0 to 255, not 256 at 13/],
    ['ttl == 300', 7, /ttl is 0 to 255, not 300 at 7/],
    ['icmp.seq == 70000', 12, /icmp.seq is 0 to 65535/],
    ['ttl == abc', 7, /expected a whole number for ttl at 7, found 'abc'/],
    ['ttl == 1.5', 7, /expected a whole number for ttl at 7/],
    ['rtt > fast', 6, /expected a number for rtt at 6/],
    ['len == "5"', 7, /expected a whole number for len at 7/],
    ['ttl in {9..3}', 8, /empty range 9..3 at 8/],
    ['dir == sideways', 7, /expected a direction \(in, out, fwd, unknown\) at 7, found 'sideways'/],
    ['dir < in', 4, /dir compares with == or !=/],
    [
      'hook == output',
      8,
      /expected a hook \(prerouting, local-in, forward, local-out, postrouting, none\) at 8/,
    ],
    ['hook in {1..3}', 9, /a range needs numbers/],
    ['iface > "a"', 6, /iface compares with == or !=/],
  ];
  for (const [text, position, message] of cases) {
    it(`${JSON.stringify(text)} -> ${position}`, () => {
      const err = errorOf(text);
      expect(err.message).toMatch(message);
      expect(err.position).toBe(position);
    });
  }
});
