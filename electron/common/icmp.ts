/**
 * ICMP and ICMPv6 type and code names, shared by the service (filters, exports) and the renderer.
 * Names follow IANA's registries; the short names are the ones the display filter accepts
 * (`icmp.type == echo-request`).
 */

export type IpVersion = 4 | 6;

interface TypeInfo {
  /** Short, filterable name (`echo-request`). */
  readonly key: string;
  /** Human label shown in tables (`Echo Request`). */
  readonly label: string;
  /** What kind of message this is, for colouring and charts. */
  readonly kind: MessageKind;
  readonly codes?: Readonly<Record<number, string>>;
}

export type MessageKind = 'echo' | 'error' | 'nd' | 'other';

const UNREACH4_CODES: Record<number, string> = {
  0: 'Net unreachable',
  1: 'Host unreachable',
  2: 'Protocol unreachable',
  3: 'Port unreachable',
  4: 'Fragmentation needed',
  5: 'Source route failed',
  6: 'Destination network unknown',
  7: 'Destination host unknown',
  8: 'Source host isolated',
  9: 'Network administratively prohibited',
  10: 'Host administratively prohibited',
  11: 'Network unreachable for TOS',
  12: 'Host unreachable for TOS',
  13: 'Communication administratively prohibited',
  14: 'Host precedence violation',
  15: 'Precedence cutoff in effect',
};

export const ICMP4_TYPES: Readonly<Record<number, TypeInfo>> = {
  0: { key: 'echo-reply', label: 'Echo Reply', kind: 'echo' },
  3: { key: 'unreachable', label: 'Destination Unreachable', kind: 'error', codes: UNREACH4_CODES },
  4: { key: 'source-quench', label: 'Source Quench', kind: 'error' },
  5: {
    key: 'redirect',
    label: 'Redirect',
    kind: 'other',
    codes: { 0: 'For network', 1: 'For host', 2: 'For TOS and network', 3: 'For TOS and host' },
  },
  8: { key: 'echo-request', label: 'Echo Request', kind: 'echo' },
  9: { key: 'router-advertisement', label: 'Router Advertisement', kind: 'nd' },
  10: { key: 'router-solicitation', label: 'Router Solicitation', kind: 'nd' },
  11: {
    key: 'time-exceeded',
    label: 'Time Exceeded',
    kind: 'error',
    codes: { 0: 'TTL exceeded in transit', 1: 'Fragment reassembly time exceeded' },
  },
  12: {
    key: 'parameter-problem',
    label: 'Parameter Problem',
    kind: 'error',
    codes: { 0: 'Pointer indicates the error', 1: 'Missing a required option', 2: 'Bad length' },
  },
  13: { key: 'timestamp-request', label: 'Timestamp Request', kind: 'other' },
  14: { key: 'timestamp-reply', label: 'Timestamp Reply', kind: 'other' },
  42: { key: 'extended-echo-request', label: 'Extended Echo Request', kind: 'echo' },
  43: { key: 'extended-echo-reply', label: 'Extended Echo Reply', kind: 'echo' },
};

export const ICMP6_TYPES: Readonly<Record<number, TypeInfo>> = {
  1: {
    key: 'unreachable',
    label: 'Destination Unreachable',
    kind: 'error',
    codes: {
      0: 'No route to destination',
      1: 'Administratively prohibited',
      2: 'Beyond scope of source address',
      3: 'Address unreachable',
      4: 'Port unreachable',
      5: 'Source address failed policy',
      6: 'Reject route to destination',
    },
  },
  2: { key: 'packet-too-big', label: 'Packet Too Big', kind: 'error' },
  3: {
    key: 'time-exceeded',
    label: 'Time Exceeded',
    kind: 'error',
    codes: { 0: 'Hop limit exceeded in transit', 1: 'Fragment reassembly time exceeded' },
  },
  4: {
    key: 'parameter-problem',
    label: 'Parameter Problem',
    kind: 'error',
    codes: {
      0: 'Erroneous header field',
      1: 'Unrecognized Next Header',
      2: 'Unrecognized IPv6 option',
    },
  },
  128: { key: 'echo-request', label: 'Echo Request', kind: 'echo' },
  129: { key: 'echo-reply', label: 'Echo Reply', kind: 'echo' },
  130: { key: 'mld-query', label: 'Multicast Listener Query', kind: 'nd' },
  131: { key: 'mld-report', label: 'Multicast Listener Report', kind: 'nd' },
  132: { key: 'mld-done', label: 'Multicast Listener Done', kind: 'nd' },
  133: { key: 'router-solicitation', label: 'Router Solicitation', kind: 'nd' },
  134: { key: 'router-advertisement', label: 'Router Advertisement', kind: 'nd' },
  135: { key: 'neighbor-solicitation', label: 'Neighbor Solicitation', kind: 'nd' },
  136: { key: 'neighbor-advertisement', label: 'Neighbor Advertisement', kind: 'nd' },
  137: { key: 'redirect', label: 'Redirect', kind: 'nd' },
  143: { key: 'mldv2-report', label: 'Multicast Listener Report v2', kind: 'nd' },
  160: { key: 'extended-echo-request', label: 'Extended Echo Request', kind: 'echo' },
  161: { key: 'extended-echo-reply', label: 'Extended Echo Reply', kind: 'echo' },
};

function table(version: IpVersion): Readonly<Record<number, TypeInfo>> {
  return version === 6 ? ICMP6_TYPES : ICMP4_TYPES;
}

export function typeLabel(version: IpVersion, type: number): string {
  return table(version)[type]?.label ?? `Type ${type}`;
}

export function typeKey(version: IpVersion, type: number): string | undefined {
  return table(version)[type]?.key;
}

export function codeLabel(version: IpVersion, type: number, code: number): string {
  return table(version)[type]?.codes?.[code] ?? String(code);
}

export function messageKind(version: IpVersion, type: number): MessageKind {
  return table(version)[type]?.kind ?? 'other';
}

/** The type numbers a short name stands for in each IP version (`echo-request` -> v4 8, v6 128). */
export function typesForKey(key: string): { v4?: number; v6?: number } {
  const find = (t: Readonly<Record<number, TypeInfo>>): number | undefined => {
    for (const [num, info] of Object.entries(t)) if (info.key === key) return Number(num);
    return undefined;
  };
  return { v4: find(ICMP4_TYPES), v6: find(ICMP6_TYPES) };
}

export function isEchoRequest(version: IpVersion, type: number): boolean {
  return version === 6 ? type === 128 : type === 8;
}

export function isEchoReply(version: IpVersion, type: number): boolean {
  return version === 6 ? type === 129 : type === 0;
}

/** ICMP error messages quote the offending datagram after an 8-byte ICMP header. */
export function isErrorWithQuote(version: IpVersion, type: number): boolean {
  return messageKind(version, type) === 'error' || (version === 4 && type === 5);
}
