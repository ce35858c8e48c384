/** The text of one captured packet on standard output: `capture` without -w, or with -P. */
import { promises as dns } from 'node:dns';
import type { Row } from '../../common/contract.js';
import { codeLabel, typeLabel } from '../../common/icmp.js';

export function rowLine(r: Row, name: (address: string) => string = (a) => a): string {
  const t = BigInt(r.tsNs);
  const time = `${t / 1_000_000_000n}.${(t % 1_000_000_000n).toString().padStart(9, '0')}`;
  const echo = r.id !== null ? ` id=${r.id} seq=${r.seq}` : '';
  const rtt = r.rttMs !== null ? ` rtt=${r.rttMs} ms` : '';
  const code = r.code ? ` (${codeLabel(r.family, r.type, r.code)})` : '';
  return (
    `${time} ${r.iface} ${r.dir} ${name(r.src)} > ${name(r.dst)}: ${typeLabel(r.family, r.type)}${code}` +
    `${echo} ttl=${r.ttl} len=${r.len}${rtt}`
  );
}

/**
 * -N: names for addresses as getnameinfo gives them (/etc/hosts, then DNS), looked up once each and for at
 * most a second; the address itself when there is none.
 */
export class NameCache {
  private readonly names = new Map<string, string>();

  async prime(addresses: Iterable<string>): Promise<void> {
    const wanted = [...new Set(addresses)].filter((a) => !this.names.has(a));
    await Promise.all(
      wanted.map(async (address) => {
        const timeout = new Promise<string>((resolve) => setTimeout(() => resolve(address), 1000).unref());
        const lookup = dns
          .lookupService(address, 0)
          .then((r) => r.hostname)
          .catch(() => address);
        this.names.set(address, await Promise.race([lookup, timeout]));
      }),
    );
  }

  name = (address: string): string => this.names.get(address) ?? address;
}
