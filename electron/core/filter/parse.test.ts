import { describe, expect, it } from 'vitest';
import { checkFilter } from './compile.js';
import { type Entity, FilterSyntaxError, type Node, parseFilter, tokenize } from './parse.js';

/** The AST as compact text, to compare shapes. */
function ent(e: Entity): string {
  switch (e.kind) {
    case 'literal':
      return e.quoted === 'string' ? `"${e.text}"` : e.quoted === 'char' ? `'${e.text}'` : e.text;
    case 'field':
      return `${e.name}#${e.layers!.map((l) => `${l.start}:${l.length ?? ''}`).join(',')}`;
    case 'ref':
      return `\${${e.name}}`;
    case 'call':
      return `${e.name}(${e.args.map(ent).join(',')})`;
    case 'arith':
      return `{${ent(e.left)} ${e.op} ${ent(e.right)}}`;
    case 'neg':
      return `-${ent(e.expr)}`;
    case 'slice':
      return `${ent(e.expr)}[${e.ranges.map((r) => `${r.start}:${r.length ?? ''}${r.end !== undefined ? `-${r.end}` : ''}`).join(',')}]`;
  }
}

function show(node: Node | null): string {
  if (node === null) return 'null';
  switch (node.kind) {
    case 'and':
    case 'or':
    case 'xor':
      return `(${show(node.left)} ${node.kind} ${show(node.right)})`;
    case 'not':
      return `!${show(node.expr)}`;
    case 'test':
      return ent(node.expr);
    case 'cmp':
      return `[${node.quantifier ? `${node.quantifier} ` : ''}${ent(node.left)} ${node.op} ${ent(node.right)}]`;
    case 'in':
      return `[${ent(node.left)} ${node.negated ? 'not in' : 'in'} ${node.items.map((i) => (i.hi ? `${ent(i.lo)}..${ent(i.hi)}` : ent(i.lo))).join(',')}]`;
  }
}

function errorOf(text: string): { message: string; position: number } {
  try {
    checkFilter(text);
  } catch (err) {
    if (err instanceof FilterSyntaxError) return { message: err.message, position: err.position };
    throw err;
  }
  return { message: 'no error', position: -1 };
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
    ['ip.src == 1.2.3.4', '[ip.src any_eq 1.2.3.4]'],
    ['ip.src eq 1.2.3.4', '[ip.src any_eq 1.2.3.4]'],
    ['ttl ne 5', '[ttl all_ne 5]'],
    ['ttl === 5', '[ttl all_eq 5]'],
    ['ttl !== 5', '[ttl any_ne 5]'],
    ['ttl ~= 5', '[ttl any_ne 5]'],
    ['ttl all_eq 5', '[ttl all_eq 5]'],
    ['ttl lt 5', '[ttl lt 5]'],
    ['ttl GE 5', '[ttl ge 5]'],
    ['ttl<5', '[ttl lt 5]'],
    ['ttl<=5', '[ttl le 5]'],
    ['ttl>5', '[ttl gt 5]'],
    ['ttl>=5', '[ttl ge 5]'],
    ['ttl!=5', '[ttl all_ne 5]'],
    ['a && b || c', '((a and b) or c)'],
    ['a || b && c', '(a or (b and c))'],
    ['a or b and c', '(a or (b and c))'],
    ['a or b xor c and d', '(a or (b xor (c and d)))'],
    ['(a || b) && c', '((a or b) and c)'],
    ['!a && b', '(!a and b)'],
    ['not a and not b', '(!a and !b)'],
    ['!!a', '!!a'],
    ['a && b && c', '((a and b) and c)'],
    ['icmp.type in {1 2,3 4..6}', '[icmp.type in 1,2,3,4..6]'],
    ['icmp.seq not in {1..5}', '[icmp.seq not in 1..5]'],
    ['iface == "eth0"', '[iface any_eq "eth0"]'],
    ['dir in {in out}', '[dir in in,out]'],
    ['all ip.ttl > 1', '[all ip.ttl gt 1]'],
    ['any ip.addr != 1.1.1.1', '[any ip.addr all_ne 1.1.1.1]'],
    ['icmp.type & 8', '{icmp.type & 8}'],
    ['icmp.type & 0x08 == 8', '[{icmp.type & 0x08} any_eq 8]'],
    ['a + b * c == 1', '[{a + {b * c}} any_eq 1]'],
    ['{a + b} * c == 1', '[{{a + b} * c} any_eq 1]'],
    ['ip.ttl -1 == 63', '[{ip.ttl - 1} any_eq 63]'],
    ['ip.ttl == -1', '[ip.ttl any_eq -1]'],
    ['udp.srcport-1 == 5', '[udp.srcport-1 any_eq 5]'],
    ['icmp[0:4] == 08:00:00:00', '[icmp[0:4] any_eq 08:00:00:00]'],
    ['frame[-4:] == 0.1.2.3', '[frame[-4:] any_eq 0.1.2.3]'],
    ['frame[1-3,9] == 1', '[frame[1:3,9:1] any_eq 1]'],
    ['ip.src#2 == 1.2.3.4', '[ip.src#2:1 any_eq 1.2.3.4]'],
    ['ip.src#[2-3] == 1.2.3.4', '[ip.src#2:2 any_eq 1.2.3.4]'],
    ['len(ip.src) == 4', '[len(ip.src) any_eq 4]'],
    ['max(ip.ttl, 1) == 64', '[max(ip.ttl,1) any_eq 64]'],
    ['ip.ttl > ${ip.ttl}', '[ip.ttl gt ${ip.ttl}]'],
    ["icmp.type == '\\x08'", "[icmp.type any_eq '\x08']"],
    ['a contains "x"', '[a contains "x"]'],
    ['a matches "x"', '[a matches "x"]'],
    ['a ~ "x"', '[a matches "x"]'],
    [
      'ip.addr == 10.0.0.0/8 && icmp.type == echo-request',
      '([ip.addr any_eq 10.0.0.0/8] and [icmp.type any_eq echo-request])',
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
    ['icmp | ip', 5, /use '\|\|'/],
    ['ttl == 5 $', 9, /unexpected character '\$' at 9/],
    ['iface == "eth0', 9, /unterminated string starting at 9/],
    ['iface == "a\\q"', 11, /unknown escape/],
    ['ttl in 5', 7, /expected '\{' after 'in' at 7/],
    ['ttl in {}', 8, /empty set/],
    ['ttl in {1 2', 11, /expected '\}' at 11 to close the '\{' at 7/],
    ['ttl in {,1}', 8, /expected a value before ',' at 8/],
    ['ttl in {1..}', 11, /expected a value after '\.\.' at 11/],
    // meaning errors point at the offending part too
    ['foo == 1', 0, /unknown field 'foo' at 0/],
    ['ip.scr == 1.2.3.4', 0, /unknown field 'ip.scr' at 0 \(did you mean 'ip.src'\?\)/],
    ['icmp && bogus', 8, /unknown field or protocol 'bogus' at 8/],
    ['ip.src == 1.2.3', 10, /expected an IPv4 address or prefix for ip.src, found '1.2.3' at 10/],
    ['ip.src == fe80::1', 10, /'fe80::1' is an IPv6 address but ip.src is IPv4; use ipv6.src at 10/],
    ['ipv6.dst == 1.2.3.4', 12, /is an IPv4 address but ipv6.dst is IPv6; use ip.dst at 12/],
    ['ip.addr == 10.0.0.0/33', 11, /bad prefix length '\/33': an IPv4 prefix is \/0 to \/32 at 11/],
    ['ipv6.addr == ::/129', 13, /an IPv6 prefix is \/0 to \/128/],
    ['icmp.type == banana', 13, /unknown ICMP type 'banana' at 13/],
    [
      'icmpv6.type == source-quench',
      15,
      /unknown ICMPv6 type 'source-quench' \(it is an ICMPv4 type; use icmp.type\) at 15/,
    ],
    ['icmp.type == 256', 13, /icmp.type is 0 to 255, not 256 at 13/],
    ['ttl == 300', 7, /ttl is 0 to 255, not 300 at 7/],
    ['icmp.seq == 70000', 12, /icmp.seq is 0 to 65535/],
    ['ttl == abc', 7, /expected a whole number for ip.ttl, found 'abc' at 7/],
    ['ttl == 1.5', 7, /expected a whole number for ip.ttl, found '1.5' at 7/],
    ['icmp.type == 128', -1, /no error/],
    ['rtt > fast', 6, /expected a number for icmpcap.rtt, found 'fast' at 6/],
    ['len == "5"', 7, /expected a whole number for frame.len, found '5' at 7/],
    ['icmp.type == echo-reques', 13, /unknown ICMP type 'echo-reques' at 13/],
    ['icmp.type == packet-too-big', 13, /it is an ICMPv6 type; use icmpv6.type/],
    ['ip.src matches "("', 7, /'matches' takes a string on the left \(use string\(ip.src\)\) at 7/],
    ['ip.src_host matches "("', 20, /invalid regular expression at 20/],
    ['len(ip.ttl) == 1', 0, /len\(\) takes a string, bytes or address, not int at 0/],
    ['frobnicate(ip.ttl) == 1', 0, /unknown function 'frobnicate' at 0/],
    ['icmp[0:] == 08', -1, /no error/],
    ['ip.src#x == 1.2.3.4', 6, /expected a layer number after '#'/],
    ["icmp.type == 'ab'", 13, /unterminated character constant starting at 13/],
    ['dir == sideways', 7, /expected a direction \(in, out, fwd, unknown\) at 7, found 'sideways'/],
    [
      'hook == output',
      8,
      /expected a hook \(prerouting, local-in, forward, local-out, postrouting, none\) at 8/,
    ],
    ['hook in {1..3}', 9, /a range needs numbers/],
  ];
  for (const [text, position, message] of cases) {
    it(`${JSON.stringify(text)} -> ${position}`, () => {
      const err = errorOf(text);
      expect(err.message).toMatch(message);
      expect(err.position).toBe(position);
    });
  }
});
