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

/** -N: reverse DNS names for addresses, looked up once each (at most a second), the address when none. */
export class NameCache {
  private readonly names = new Map<string, string>();

  async prime(addresses: Iterable<string>): Promise<void> {
    const wanted = [...new Set(addresses)].filter((a) => !this.names.has(a));
    await Promise.all(
      wanted.map(async (address) => {
        const timeout = new Promise<string[]>((resolve) => setTimeout(() => resolve([]), 1000).unref());
        const found = await Promise.race([dns.reverse(address).catch(() => [] as string[]), timeout]);
        this.names.set(address, found[0] ?? address);
      }),
    );
  }

  name = (address: string): string => this.names.get(address) ?? address;
}
