import { describe, expect, it } from 'vitest';
import { type FieldNode, dissect, filterForNode } from '../../common/dissect.js';
import { ALL_FIELD_NAMES } from '../../common/fields.js';
import { Evaluator } from '../filter/evaluate.js';
import { parseFilter } from '../filter/parse.js';
import { FieldSession, extractFields } from './extract.js';
import { echoTraffic, everyKind, recordOf } from './testing/corpus.js';

/**
 * The details tree speaks the registry: every node that names a field names one the registry has
 * (Wireshark's spelling), and "apply as filter" on it builds a filter that selects the very packet
 * it came from (evaluated on the fields the extractor reads from the same bytes, as the filter bar
 * does). Packets: every ICMP and ICMPv6 kind (echo, errors quoting UDP/TCP/ICMP, ND with options,
 * RA, redirects, fragments, extension headers) and echo traffic of both families.
 */
describe('the details tree names its fields from the registry', () => {
  const packets = [...everyKind(7), ...echoTraffic(3, 10, 4), ...echoTraffic(4, 10, 6)];
  const known = new Set(ALL_FIELD_NAMES);
  const session = new FieldSession();

  const walk = (nodes: FieldNode[], visit: (n: FieldNode) => void): void => {
    for (const n of nodes) {
      visit(n);
      if (n.children) walk(n.children, visit);
    }
  };

  it('names only registry fields, and names the fields people filter on', () => {
    const seen = new Set<string>();
    const unknown: string[] = [];
    for (const p of packets) {
      walk(dissect(p.data), (n) => {
        if (n.name === undefined) return;
        seen.add(n.name);
        if (!known.has(n.name)) unknown.push(`${n.name} (${n.label})`);
      });
    }
    expect(unknown).toEqual([]);
    for (const name of [
      'ip',
      'ipv6',
      'icmp',
      'icmpv6',
      'udp',
      'tcp',
      'ip.src',
      'ip.dst',
      'ip.ttl',
      'ip.id',
      'ip.flags.mf',
      'ip.frag_offset',
      'ipv6.hlim',
      'ipv6.nxt',
      'icmp.type',
      'icmp.code',
      'icmp.checksum',
      'icmp.ident',
      'icmp.seq',
      'icmp.mtu',
      'icmp.redir_gw',
      'icmpv6.type',
      'icmpv6.echo.identifier',
      'icmpv6.echo.sequence_number',
      'icmpv6.mtu',
      'icmpv6.nd.ns.target_address',
      'icmpv6.nd.na.flag',
      'icmpv6.nd.ra.flag',
      'icmpv6.nd.ra.router_lifetime',
      'icmpv6.opt',
      'icmpv6.opt.prefix',
      'udp.dstport',
      'tcp.srcport',
    ])
      expect(seen, name).toContain(name);
  });

  it('"apply as filter" on any named node selects the packet it came from', () => {
    const failures: string[] = [];
    let checked = 0;
    for (const p of packets) {
      const record = recordOf(p, 0);
      const fields = extractFields(record, session.context(record, 'eth0'));
      walk(dissect(p.data), (n) => {
        const text = filterForNode(n);
        if (text === null) return;
        checked++;
        let ok = false;
        try {
          ok = new Evaluator({}).node(parseFilter(text)!)(fields);
        } catch (err) {
          failures.push(`${text}: ${(err as Error).message}`);
          return;
        }
        if (!ok) failures.push(`${text} (${n.label}: ${n.value}) does not select its packet`);
      });
    }
    expect(failures.slice(0, 30)).toEqual([]);
    expect(checked).toBeGreaterThan(500);
  });
});
