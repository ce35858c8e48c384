/**
 * The sockets of this network namespace that can send ICMP, or whose traffic an ICMP error can quote, read
 * from the kernel's socket tables in /proc/net (what `ss` falls back to when sock_diag cannot answer):
 * - ping sockets (SOCK_DGRAM IPPROTO_ICMP/ICMPV6): /proc/net/icmp, icmp6. Linux has no sock_diag handler
 *   for them at all; their local "port" is the echo identifier the kernel puts in every request.
 * - raw sockets: /proc/net/raw, raw6 ("port" = the protocol); sock_diag answers for them only where
 *   CONFIG_INET_RAW_DIAG is built, which not every kernel has.
 * - UDP and TCP sockets: /proc/net/udp, udp6, tcp, tcp6, for the datagrams ICMP errors quote.
 * Every one of these files is readable by any user and shows the reader's own network namespace, so the
 * unprivileged capture service reads them itself; each row gives the owner's uid and the socket inode.
 */
import { readFileSync } from 'node:fs';

export type SocketTable = 'icmp' | 'raw' | 'udp' | 'tcp';

export interface SocketEntry {
  family: 4 | 6;
  /** Local address as text (`0.0.0.0` / `::` when unbound). */
  local: string;
  localPort: number;
  remote: string;
  remotePort: number;
  uid: number;
  inode: number;
}

/** An address column of /proc/net/*: 32-bit words in host (little-endian) byte order, in hex. */
export function procNetAddress(hex: string, family: 4 | 6): string {
  if (family === 4) {
    const w = parseInt(hex, 16) >>> 0;
    return `${w & 255}.${(w >>> 8) & 255}.${(w >>> 16) & 255}.${w >>> 24}`;
  }
  const groups: string[] = [];
  for (let k = 0; k < 4; k++) {
    const w = parseInt(hex.slice(k * 8, k * 8 + 8), 16) >>> 0;
    const b = [w & 255, (w >>> 8) & 255, (w >>> 16) & 255, w >>> 24];
    groups.push(((b[0]! << 8) | b[1]!).toString(16), ((b[2]! << 8) | b[3]!).toString(16));
  }
  return compressIpv6(groups);
}

/** RFC 5952 text of eight hex groups (the longest run of two or more zero groups becomes `::`). */
function compressIpv6(groups: string[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** Parses one /proc/net/{icmp,raw,udp,tcp}[6] file's text. */
export function parseSocketTable(text: string, family: 4 | 6): SocketEntry[] {
  const out: SocketEntry[] = [];
  const lines = text.split('\n');
  for (let k = 1; k < lines.length; k++) {
    const cols = lines[k]!.trim().split(/\s+/);
    if (cols.length < 10) continue;
    const [localHex, localPort] = cols[1]!.split(':');
    const [remoteHex, remotePort] = cols[2]!.split(':');
    if (!localHex || !localPort || !remoteHex || !remotePort) continue;
    out.push({
      family,
      local: procNetAddress(localHex, family),
      localPort: parseInt(localPort, 16),
      remote: procNetAddress(remoteHex, family),
      remotePort: parseInt(remotePort, 16),
      uid: Number(cols[7]),
      inode: Number(cols[9]),
    });
  }
  return out;
}

/** The sockets of one table and family in this network namespace; empty when the file cannot be read. */
export function readSockets(table: SocketTable, family: 4 | 6, root = '/proc/net'): SocketEntry[] {
  let text: string;
  try {
    text = readFileSync(`${root}/${table}${family === 6 ? '6' : ''}`, 'utf8');
  } catch {
    return [];
  }
  return parseSocketTable(text, family);
}

export const isUnspecified = (address: string): boolean => address === '0.0.0.0' || address === '::';
