/**
 * Decodes captured bytes (from the IP header on) into a tree of labelled fields with their byte ranges,
 * for the details pane and its hex dump. Pure and defensive: any input, however short or garbled, gives
 * a tree; fields past the captured bytes are marked truncated instead of throwing.
 */
import { formatIpv6 } from './address.js';
import { fieldInfo } from './fields.js';
import { codeLabel, isErrorWithQuote, typeLabel } from './icmp.js';

export interface FieldNode {
  label: string;
  value: string;
  /**
   * The field as Wireshark names it (`icmp.type`), a name of the registry (common/fields.ts): the
   * details tree shows it with the registry's description and builds "apply as filter" from it.
   * Absent for nodes that are no single field (markers, data, parts Wireshark does not name).
   */
  name?: string;
  /** The value as a filter literal (`8`, `10.0.0.1`, `0x02`); absent for protocols and options. */
  filterValue?: string;
  /** Byte offset from the start of the outer IP header. */
  start: number;
  length: number;
  children?: FieldNode[];
  /** The field (or part of it) lies beyond the captured bytes. */
  truncated?: boolean;
}

const PROTOCOLS: Record<number, string> = {
  0: 'IPv6 Hop-by-Hop',
  1: 'ICMP',
  6: 'TCP',
  17: 'UDP',
  43: 'IPv6 Routing',
  44: 'IPv6 Fragment',
  50: 'ESP',
  51: 'AH',
  58: 'ICMPv6',
  59: 'No Next Header',
  60: 'IPv6 Destination Options',
};

const ND_OPTIONS: Record<number, string> = {
  1: 'Source link-layer address',
  2: 'Target link-layer address',
  3: 'Prefix information',
  4: 'Redirected header',
  5: 'MTU',
  25: 'Recursive DNS server',
};

/** Bounds-checked reads over the captured bytes; every field goes through `field`. */
class Reader {
  constructor(readonly bytes: Uint8Array) {}

  has(start: number, length: number): boolean {
    return start >= 0 && length >= 0 && start + length <= this.bytes.length;
  }

  u8(at: number): number {
    return this.bytes[at] ?? 0;
  }

  u16(at: number): number {
    return (this.u8(at) << 8) | this.u8(at + 1);
  }

  u32(at: number): number {
    return ((this.u8(at) << 24) | (this.u8(at + 1) << 16) | (this.u8(at + 2) << 8) | this.u8(at + 3)) >>> 0;
  }

  /** A leaf field, or a truncated marker when its bytes were not captured. */
  field(label: string, start: number, length: number, format: () => string): FieldNode {
    if (this.has(start, length)) return { label, value: format(), start, length };
    return {
      label,
      value: '[truncated]',
      start,
      length: Math.max(0, Math.min(length, this.bytes.length - start)),
      truncated: true,
    };
  }

  ipv4(at: number): string {
    return [0, 1, 2, 3].map((i) => this.u8(at + i)).join('.');
  }

  ipv6(at: number): string {
    const bytes = new Uint8Array(16);
    for (let i = 0; i < 16; i++) bytes[i] = this.u8(at + i);
    return formatIpv6(bytes);
  }

  hex(start: number, length: number): string {
    const end = Math.min(this.bytes.length, start + length);
    let s = '';
    for (let i = start; i < end; i++) s += this.u8(i).toString(16).padStart(2, '0');
    return s;
  }

  mac(start: number, length: number): string {
    const parts: string[] = [];
    for (let i = start; i < Math.min(this.bytes.length, start + length); i++)
      parts.push(this.u8(i).toString(16).padStart(2, '0'));
    return parts.join(':');
  }
}

const hex16 = (v: number) => `0x${v.toString(16).padStart(4, '0')}`;
const hex8 = (v: number) => `0x${v.toString(16).padStart(2, '0')}`;
const numHex = (v: number) => `${v} (${hex16(v)})`;

/** One's-complement sum, as in RFC 1071. */
function onesSum(bytes: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial;
  for (let i = start; i < end; i += 2) sum += (bytes[i]! << 8) | (i + 1 < end ? bytes[i + 1]! : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

function checksumNote(ok: boolean | null): string {
  return ok === null ? '' : ok ? ' [correct]' : ' [incorrect]';
}

function truncatedMarker(r: Reader, at: number, what: string): FieldNode {
  return {
    label: 'Truncated',
    value: `${what}: captured bytes end at offset ${r.bytes.length}`,
    start: Math.min(at, r.bytes.length),
    length: 0,
    truncated: true,
  };
}

interface IpHeader {
  node: FieldNode;
  version: 4 | 6;
  /** Offset of the payload (after options or extension headers). */
  payloadAt: number;
  /** The protocol (v4) or final next header (v6) of the payload. */
  protocol: number;
  src: string;
  dst: string;
  /** Payload length the header declares (may exceed what was captured). */
  payloadLength: number;
  /** Offsets of the source and destination addresses, for the ICMPv6 pseudo-header. */
  addrAt: number;
  /** An IP fragment: the first holds the start of the message (its checksum covers other fragments too). */
  fragment?: 'first' | 'later';
}

function dissectIpv4(r: Reader, at: number, label: string): IpHeader | FieldNode {
  const b0 = r.u8(at);
  const ihl = (b0 & 0x0f) * 4;
  const children: FieldNode[] = [
    r.field('Version', at, 1, () => String(b0 >> 4)),
    r.field('Header length', at, 1, () => `${ihl} bytes (${b0 & 0x0f})`),
  ];
  const tos = r.u8(at + 1);
  const dsfield = r.field('Differentiated services', at + 1, 1, () => hex8(tos));
  if (!dsfield.truncated)
    dsfield.children = [
      { label: 'DSCP', value: String(tos >> 2), start: at + 1, length: 1 },
      { label: 'ECN', value: String(tos & 3), start: at + 1, length: 1 },
    ];
  children.push(dsfield);
  const totalLength = r.u16(at + 2);
  children.push(r.field('Total length', at + 2, 2, () => String(totalLength)));
  children.push(r.field('Identification', at + 4, 2, () => numHex(r.u16(at + 4))));
  const flagsWord = r.u16(at + 6);
  const flags = r.field('Flags', at + 6, 1, () => hex8(flagsWord >> 13));
  if (!flags.truncated)
    flags.children = [
      { label: 'Reserved bit', value: String((flagsWord >> 15) & 1), start: at + 6, length: 1 },
      { label: "Don't fragment", value: (flagsWord >> 14) & 1 ? 'Set' : 'Not set', start: at + 6, length: 1 },
      { label: 'More fragments', value: (flagsWord >> 13) & 1 ? 'Set' : 'Not set', start: at + 6, length: 1 },
    ];
  children.push(flags);
  children.push(r.field('Fragment offset', at + 6, 2, () => `${(flagsWord & 0x1fff) * 8} bytes`));
  children.push(r.field('Time to live', at + 8, 1, () => String(r.u8(at + 8))));
  const protocol = r.u8(at + 9);
  children.push(r.field('Protocol', at + 9, 1, () => `${PROTOCOLS[protocol] ?? 'Unknown'} (${protocol})`));
  const headerComplete = ihl >= 20 && r.has(at, ihl);
  children.push(
    r.field('Header checksum', at + 10, 2, () => {
      const ok = headerComplete ? onesSum(r.bytes, at, at + ihl) === 0xffff : null;
      return hex16(r.u16(at + 10)) + checksumNote(ok);
    }),
  );
  children.push(r.field('Source address', at + 12, 4, () => r.ipv4(at + 12)));
  children.push(r.field('Destination address', at + 16, 4, () => r.ipv4(at + 16)));
  if (ihl > 20) children.push(r.field('Options', at + 20, ihl - 20, () => `${ihl - 20} bytes`));
  const truncated = !r.has(at, 20);
  const src = r.has(at + 12, 4) ? r.ipv4(at + 12) : '?';
  const dst = r.has(at + 16, 4) ? r.ipv4(at + 16) : '?';
  const node: FieldNode = {
    label,
    value: `${src} → ${dst}`,
    start: at,
    length: Math.max(0, Math.min(Math.max(ihl, 20), r.bytes.length - at)),
    children,
  };
  if (truncated) {
    node.truncated = true;
    children.push(truncatedMarker(r, at + 20, 'IPv4 header'));
    return node;
  }
  if (ihl < 20) {
    children.push({
      label: 'Invalid',
      value: `header length ${ihl} is below 20 bytes`,
      start: at,
      length: 1,
    });
    return node;
  }
  return {
    node,
    version: 4,
    payloadAt: at + ihl,
    protocol,
    src,
    dst,
    payloadLength: Math.max(0, totalLength - ihl),
    addrAt: at + 12,
    ...(flagsWord & 0x3fff ? { fragment: flagsWord & 0x1fff ? ('later' as const) : ('first' as const) } : {}),
  };
}

const EXTENSION_HEADERS = new Set([0, 43, 44, 60]);

function dissectIpv6(r: Reader, at: number, label: string): IpHeader | FieldNode {
  const word = r.u32(at);
  const children: FieldNode[] = [
    r.field('Version', at, 1, () => String(word >>> 28)),
    r.field('Traffic class', at, 2, () => {
      const tc = (word >>> 20) & 0xff;
      return `${hex8(tc)} (DSCP ${tc >> 2}, ECN ${tc & 3})`;
    }),
    r.field('Flow label', at + 1, 3, () => `0x${(word & 0xfffff).toString(16).padStart(5, '0')}`),
  ];
  const payloadLength = r.u16(at + 4);
  children.push(r.field('Payload length', at + 4, 2, () => String(payloadLength)));
  let next = r.u8(at + 6);
  children.push(r.field('Next header', at + 6, 1, () => `${PROTOCOLS[next] ?? 'Unknown'} (${next})`));
  children.push(r.field('Hop limit', at + 7, 1, () => String(r.u8(at + 7))));
  children.push(r.field('Source address', at + 8, 16, () => r.ipv6(at + 8)));
  children.push(r.field('Destination address', at + 24, 16, () => r.ipv6(at + 24)));
  const src = r.has(at + 8, 16) ? r.ipv6(at + 8) : '?';
  const dst = r.has(at + 24, 16) ? r.ipv6(at + 24) : '?';
  const node: FieldNode = {
    label,
    value: `${src} → ${dst}`,
    start: at,
    length: Math.max(0, Math.min(40, r.bytes.length - at)),
    children,
  };
  if (!r.has(at, 40)) {
    node.truncated = true;
    children.push(truncatedMarker(r, at + 40, 'IPv6 header'));
    return node;
  }
  let p = at + 40;
  let fragment: IpHeader['fragment'];
  for (let hops = 0; EXTENSION_HEADERS.has(next) && hops < 8; hops++) {
    if (!r.has(p, 2)) {
      children.push(truncatedMarker(r, p, 'extension header'));
      node.truncated = true;
      return node;
    }
    const len = next === 44 ? 8 : (r.u8(p + 1) + 1) * 8;
    const name = PROTOCOLS[next]!;
    const following = r.u8(p);
    children.push({
      ...r.field(name, p, len, () => `${len} bytes`),
      children: [
        {
          label: 'Next header',
          value: `${PROTOCOLS[following] ?? 'Unknown'} (${following})`,
          start: p,
          length: 1,
        },
      ],
    });
    next = following;
    p += len;
    if (name === 'IPv6 Fragment') {
      fragment = r.u16(p - 6) & 0xfff8 ? 'later' : 'first';
      // The rest of a later fragment is the middle of the datagram, not another header.
      if (fragment === 'later') break;
    }
  }
  node.length = Math.max(0, Math.min(p - at, r.bytes.length - at));
  return {
    node,
    version: 6,
    payloadAt: p,
    protocol: next,
    src,
    dst,
    payloadLength: Math.max(0, payloadLength - (p - at - 40)),
    addrAt: at + 8,
    ...(fragment ? { fragment } : {}),
  };
}

function dissectIp(r: Reader, at: number, label: (v: number) => string): IpHeader | FieldNode {
  if (!r.has(at, 1)) return truncatedMarker(r, at, 'IP header');
  const version = r.u8(at) >> 4;
  if (version === 4) return dissectIpv4(r, at, label(4));
  if (version === 6) return dissectIpv6(r, at, label(6));
  return {
    label: 'Unknown data',
    value: `not an IPv4 or IPv6 header (version ${version})`,
    start: at,
    length: r.bytes.length - at,
  };
}

function isHeader(x: IpHeader | FieldNode): x is IpHeader {
  return 'payloadAt' in x;
}

/** The 8 quoted bytes of the transport header inside an ICMP error. */
function dissectQuotedTransport(r: Reader, ip: IpHeader): FieldNode | null {
  const at = ip.payloadAt;
  const n = (label: string, children: FieldNode[]): FieldNode => ({
    label,
    value: '',
    start: at,
    length: Math.max(0, Math.min(8, r.bytes.length - at)),
    children,
  });
  switch (ip.protocol) {
    case 6:
      return n('Quoted TCP header', [
        r.field('Source port', at, 2, () => String(r.u16(at))),
        r.field('Destination port', at + 2, 2, () => String(r.u16(at + 2))),
        r.field('Sequence number', at + 4, 4, () => String(r.u32(at + 4))),
      ]);
    case 17:
      return n('Quoted UDP header', [
        r.field('Source port', at, 2, () => String(r.u16(at))),
        r.field('Destination port', at + 2, 2, () => String(r.u16(at + 2))),
        r.field('Length', at + 4, 2, () => String(r.u16(at + 4))),
        r.field('Checksum', at + 6, 2, () => hex16(r.u16(at + 6))),
      ]);
    case 1:
    case 58: {
      const v = ip.protocol === 1 ? 4 : 6;
      const type = r.u8(at);
      const code = r.u8(at + 1);
      return n(v === 4 ? 'Quoted ICMP header' : 'Quoted ICMPv6 header', [
        r.field('Type', at, 1, () => `${typeLabel(v, type)} (${type})`),
        r.field('Code', at + 1, 1, () => `${codeLabel(v, type, code)} (${code})`),
        r.field('Checksum', at + 2, 2, () => hex16(r.u16(at + 2))),
        r.field('Identifier', at + 4, 2, () => numHex(r.u16(at + 4))),
        r.field('Sequence number', at + 6, 2, () => numHex(r.u16(at + 6))),
      ]);
    }
    default:
      return r.has(at, 1) ? n('Quoted transport bytes', [r.field('Data', at, 8, () => r.hex(at, 8))]) : null;
  }
}

function dissectQuote(r: Reader, at: number): FieldNode {
  const inner = dissectIp(r, at, (v) => (v === 4 ? 'Quoted IPv4 header' : 'Quoted IPv6 header'));
  const children: FieldNode[] = [];
  if (isHeader(inner)) {
    children.push(inner.node);
    const transport = dissectQuotedTransport(r, inner);
    if (transport) children.push(transport);
    else children.push(truncatedMarker(r, inner.payloadAt, 'quoted transport header'));
  } else children.push(inner);
  const node: FieldNode = {
    label: 'Quoted datagram',
    value: isHeader(inner)
      ? `${inner.src} → ${inner.dst} (${PROTOCOLS[inner.protocol] ?? inner.protocol})`
      : '',
    start: at,
    length: Math.max(0, r.bytes.length - at),
    children,
  };
  if (!isHeader(inner) || inner.node.truncated) node.truncated = true;
  return node;
}

function dissectNdOptions(r: Reader, at: number, end: number): FieldNode[] {
  const out: FieldNode[] = [];
  let p = at;
  while (p < end) {
    if (!r.has(p, 2)) {
      out.push(truncatedMarker(r, p, 'ND option'));
      break;
    }
    const type = r.u8(p);
    const len = r.u8(p + 1) * 8;
    if (len === 0) {
      out.push({ label: 'Invalid option', value: 'length 0', start: p, length: 2 });
      break;
    }
    const name = ND_OPTIONS[type] ?? `Option ${type}`;
    const children: FieldNode[] = [
      { label: 'Type', value: `${name} (${type})`, start: p, length: 1 },
      { label: 'Length', value: `${len} bytes (${len / 8})`, start: p + 1, length: 1 },
    ];
    let value = '';
    if (type === 1 || type === 2) {
      value = r.mac(p + 2, len - 2);
      children.push(r.field('Link-layer address', p + 2, len - 2, () => value));
    } else if (type === 5) {
      value = String(r.u32(p + 4));
      children.push(r.field('MTU', p + 4, 4, () => value));
    } else if (type === 3) {
      value = `${r.ipv6(p + 16)}/${r.u8(p + 2)}`;
      children.push(r.field('Prefix length', p + 2, 1, () => String(r.u8(p + 2))));
      children.push(r.field('Valid lifetime', p + 4, 4, () => `${r.u32(p + 4)} s`));
      children.push(r.field('Preferred lifetime', p + 8, 4, () => `${r.u32(p + 8)} s`));
      children.push(r.field('Prefix', p + 16, 16, () => r.ipv6(p + 16)));
    }
    const node = r.field(name, p, len, () => value);
    node.children = children;
    out.push(node);
    p += len;
  }
  return out;
}

function dissectIcmp(r: Reader, ip: IpHeader): FieldNode {
  const at = ip.payloadAt;
  const v = ip.version;
  const type = r.u8(at);
  const code = r.u8(at + 1);
  const end = Math.min(r.bytes.length, at + ip.payloadLength);
  const complete = r.has(at, ip.payloadLength) && ip.payloadLength >= 4;
  const children: FieldNode[] = [
    r.field('Type', at, 1, () => `${typeLabel(v, type)} (${type})`),
    r.field('Code', at + 1, 1, () => `${codeLabel(v, type, code)} (${code})`),
    r.field('Checksum', at + 2, 2, () => {
      let ok: boolean | null = null;
      if (complete && !ip.fragment) {
        const payloadEnd = at + ip.payloadLength;
        if (v === 4) ok = onesSum(r.bytes, at, payloadEnd) === 0xffff;
        else {
          // The ICMPv6 checksum covers a pseudo-header: addresses, upper-layer length, next header 58.
          const pseudo = onesSum(r.bytes, ip.addrAt, ip.addrAt + 32, ip.payloadLength + 58);
          ok = onesSum(r.bytes, at, payloadEnd, pseudo) === 0xffff;
        }
      }
      return hex16(r.u16(at + 2)) + checksumNote(ok);
    }),
  ];
  const idSeq = () => {
    children.push(r.field('Identifier', at + 4, 2, () => numHex(r.u16(at + 4))));
    children.push(r.field('Sequence number', at + 6, 2, () => numHex(r.u16(at + 6))));
  };
  const rest = (label: string) => children.push(r.field(label, at + 4, 4, () => hex8(r.u32(at + 4))));
  const data = (from: number) => {
    const declared = at + ip.payloadLength - from;
    const captured = Math.max(0, end - from);
    if (declared <= 0) return;
    const node: FieldNode = { label: 'Data', value: `${declared} bytes`, start: from, length: captured };
    if (captured < declared) {
      node.value = `${declared} bytes (${captured} captured)`;
      node.truncated = true;
    }
    children.push(node);
  };
  let quote = false;
  if (v === 4) {
    if (type === 0 || type === 8 || type === 13 || type === 14) {
      idSeq();
      data(at + 8);
    } else if (type === 3 && code === 4) {
      children.push(r.field('Unused', at + 4, 2, () => hex16(r.u16(at + 4))));
      children.push(r.field('Next-hop MTU', at + 6, 2, () => String(r.u16(at + 6))));
      quote = true;
    } else if (type === 12) {
      children.push(r.field('Pointer', at + 4, 1, () => String(r.u8(at + 4))));
      children.push(r.field('Unused', at + 5, 3, () => r.hex(at + 5, 3)));
      quote = true;
    } else if (type === 5) {
      children.push(r.field('Gateway address', at + 4, 4, () => r.ipv4(at + 4)));
      quote = true;
    } else if (isErrorWithQuote(4, type)) {
      rest('Unused');
      quote = true;
    } else {
      rest('Rest of header');
      data(at + 8);
    }
  } else {
    if (type === 128 || type === 129) {
      idSeq();
      data(at + 8);
    } else if (type === 2) {
      children.push(r.field('MTU', at + 4, 4, () => String(r.u32(at + 4))));
      quote = true;
    } else if (type === 4) {
      children.push(r.field('Pointer', at + 4, 4, () => String(r.u32(at + 4))));
      quote = true;
    } else if (type === 1 || type === 3) {
      rest('Unused');
      quote = true;
    } else if (type === 133) {
      rest('Reserved');
      children.push(...dissectNdOptions(r, at + 8, end));
    } else if (type === 134) {
      children.push(r.field('Cur hop limit', at + 4, 1, () => String(r.u8(at + 4))));
      children.push(r.field('Flags', at + 5, 1, () => hex8(r.u8(at + 5))));
      children.push(r.field('Router lifetime', at + 6, 2, () => `${r.u16(at + 6)} s`));
      children.push(r.field('Reachable time', at + 8, 4, () => `${r.u32(at + 8)} ms`));
      children.push(r.field('Retrans timer', at + 12, 4, () => `${r.u32(at + 12)} ms`));
      children.push(...dissectNdOptions(r, at + 16, end));
    } else if (type === 135 || type === 136) {
      if (type === 136) {
        const f = r.u8(at + 4);
        children.push(
          r.field(
            'Flags',
            at + 4,
            4,
            () =>
              [f & 0x80 ? 'Router' : '', f & 0x40 ? 'Solicited' : '', f & 0x20 ? 'Override' : '']
                .filter(Boolean)
                .join(', ') || 'none',
          ),
        );
      } else rest('Reserved');
      children.push(r.field('Target address', at + 8, 16, () => r.ipv6(at + 8)));
      children.push(...dissectNdOptions(r, at + 24, end));
    } else if (type === 137) {
      rest('Reserved');
      children.push(r.field('Target address', at + 8, 16, () => r.ipv6(at + 8)));
      children.push(r.field('Destination address', at + 24, 16, () => r.ipv6(at + 24)));
      children.push(...dissectNdOptions(r, at + 40, end));
    } else {
      rest('Rest of header');
      data(at + 8);
    }
  }
  if (quote) {
    if (r.has(at + 8, 1)) children.push(dissectQuote(r, at + 8));
    else if (r.has(at, 8)) children.push(truncatedMarker(r, at + 8, 'quoted datagram'));
  }
  const node: FieldNode = {
    label: v === 4 ? 'Internet Control Message Protocol' : 'Internet Control Message Protocol v6',
    // Codes are named only where they mean something (not the 0 of an echo).
    value: `${typeLabel(v, type)}${r.has(at + 1, 1) && codeLabel(v, type, code) !== String(code) ? `, ${codeLabel(v, type, code)}` : ''}`,
    start: at,
    length: Math.max(0, r.bytes.length - at),
    children,
  };
  if (children.some((c) => c.truncated)) node.truncated = true;
  else if (r.bytes.length < at + ip.payloadLength) {
    node.truncated = true;
    children.push(truncatedMarker(r, r.bytes.length, `${ip.payloadLength} bytes of ICMP message`));
  }
  return node;
}

export function dissect(bytes: Uint8Array): FieldNode[] {
  const tree = dissectTree(bytes);
  nameFields(tree, null, new Reader(bytes));
  return tree;
}

function dissectTree(bytes: Uint8Array): FieldNode[] {
  if (bytes.length === 0) return [{ label: 'No data', value: 'no bytes were captured', start: 0, length: 0 }];
  const r = new Reader(bytes);
  try {
    const ip = dissectIp(r, 0, (v) =>
      v === 4 ? 'Internet Protocol Version 4' : 'Internet Protocol Version 6',
    );
    if (!isHeader(ip)) return [ip];
    const out: FieldNode[] = [ip.node];
    const icmp = (ip.version === 4 && ip.protocol === 1) || (ip.version === 6 && ip.protocol === 58);
    if (!r.has(ip.payloadAt, 1)) out.push(truncatedMarker(r, ip.payloadAt, 'payload'));
    else if (ip.fragment === 'later') {
      // A later fragment carries the middle of a datagram: decoding it as an ICMP header would mislabel it.
      const len = bytes.length - ip.payloadAt;
      out.push({
        label: 'Fragment data',
        value: `${len} bytes of a fragmented ${PROTOCOLS[ip.protocol] ?? `protocol ${ip.protocol}`} datagram (no ICMP header in this fragment)`,
        start: ip.payloadAt,
        length: len,
      });
    } else if (icmp) out.push(dissectIcmp(r, ip));
    else {
      const len = bytes.length - ip.payloadAt;
      out.push({
        label: PROTOCOLS[ip.protocol] ?? `Protocol ${ip.protocol}`,
        value: `${len} bytes`,
        start: ip.payloadAt,
        length: len,
      });
    }
    return out;
  } catch (err) {
    // Every read is bounds-checked; this is a last line of defence so the pane never breaks.
    return [{ label: 'Undecodable', value: String(err), start: 0, length: bytes.length, truncated: true }];
  }
}

/** The deepest field covering a byte, for highlighting the tree from the hex dump. */
export function fieldAt(nodes: FieldNode[], offset: number): FieldNode | null {
  for (const n of nodes) {
    if (offset >= n.start && offset < n.start + n.length) {
      return (n.children && fieldAt(n.children, offset)) ?? n;
    }
  }
  return null;
}

export function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++) {
    const v = parseInt(hex.substr(i * 2, 2), 16);
    out[i] = Number.isNaN(v) ? 0 : v;
  }
  return out;
}

/** The protocol a node's children belong to, by its label (top level and quoted headers). */
const LAYER_OF: Readonly<Record<string, string>> = {
  'Internet Protocol Version 4': 'ip',
  'Internet Protocol Version 6': 'ipv6',
  'Internet Control Message Protocol': 'icmp',
  'Internet Control Message Protocol v6': 'icmpv6',
  'Quoted IPv4 header': 'ip',
  'Quoted IPv6 header': 'ipv6',
  'Quoted ICMP header': 'icmp',
  'Quoted ICMPv6 header': 'icmpv6',
  'Quoted UDP header': 'udp',
  'Quoted TCP header': 'tcp',
};

/** Registry names of the tree's fields, by layer and label (`layer/label`). */
const FIELD_NAMES: Readonly<Record<string, string>> = {
  'ip/Version': 'ip.version',
  'ip/Header length': 'ip.hdr_len',
  'ip/Differentiated services': 'ip.dsfield',
  'ip/DSCP': 'ip.dsfield.dscp',
  'ip/ECN': 'ip.dsfield.ecn',
  'ip/Total length': 'ip.len',
  'ip/Identification': 'ip.id',
  'ip/Flags': 'ip.flags',
  'ip/Reserved bit': 'ip.flags.rb',
  "ip/Don't fragment": 'ip.flags.df',
  'ip/More fragments': 'ip.flags.mf',
  'ip/Fragment offset': 'ip.frag_offset',
  'ip/Time to live': 'ip.ttl',
  'ip/Protocol': 'ip.proto',
  'ip/Header checksum': 'ip.checksum',
  'ip/Source address': 'ip.src',
  'ip/Destination address': 'ip.dst',
  'ipv6/Version': 'ipv6.version',
  'ipv6/Traffic class': 'ipv6.tclass',
  'ipv6/Flow label': 'ipv6.flow',
  'ipv6/Payload length': 'ipv6.plen',
  'ipv6/Next header': 'ipv6.nxt',
  'ipv6/Hop limit': 'ipv6.hlim',
  'ipv6/Source address': 'ipv6.src',
  'ipv6/Destination address': 'ipv6.dst',
  'icmp/Type': 'icmp.type',
  'icmp/Code': 'icmp.code',
  'icmp/Checksum': 'icmp.checksum',
  'icmp/Identifier': 'icmp.ident',
  'icmp/Sequence number': 'icmp.seq',
  'icmp/Next-hop MTU': 'icmp.mtu',
  'icmp/Pointer': 'icmp.pointer',
  'icmp/Gateway address': 'icmp.redir_gw',
  'icmpv6/Type': 'icmpv6.type',
  'icmpv6/Code': 'icmpv6.code',
  'icmpv6/Checksum': 'icmpv6.checksum',
  'icmpv6/Identifier': 'icmpv6.echo.identifier',
  'icmpv6/Sequence number': 'icmpv6.echo.sequence_number',
  'icmpv6/MTU': 'icmpv6.mtu',
  'icmpv6/Pointer': 'icmpv6.pointer',
  'icmpv6/Cur hop limit': 'icmpv6.nd.ra.cur_hop_limit',
  'icmpv6/Router lifetime': 'icmpv6.nd.ra.router_lifetime',
  'icmpv6/Reachable time': 'icmpv6.nd.ra.reachable_time',
  'icmpv6/Retrans timer': 'icmpv6.nd.ra.retrans_timer',
  'icmpv6-134/Flags': 'icmpv6.nd.ra.flag',
  'icmpv6-136/Flags': 'icmpv6.nd.na.flag',
  'icmpv6-135/Target address': 'icmpv6.nd.ns.target_address',
  'icmpv6-136/Target address': 'icmpv6.nd.na.target_address',
  'icmpv6-137/Target address': 'icmpv6.nd.rd.target_address',
  'icmpv6-137/Destination address': 'icmpv6.rd.na.destination_address',
  'udp/Source port': 'udp.srcport',
  'udp/Destination port': 'udp.dstport',
  'udp/Length': 'udp.length',
  'tcp/Source port': 'tcp.srcport',
  'tcp/Destination port': 'tcp.dstport',
  'tcp/Sequence number': 'tcp.seq_raw',
  'opt/Type': 'icmpv6.opt.type',
  'opt/Length': 'icmpv6.opt.length',
  'opt-1/Link-layer address': 'icmpv6.opt.src_linkaddr',
  'opt-2/Link-layer address': 'icmpv6.opt.target_linkaddr',
  'opt/MTU': 'icmpv6.opt.mtu',
  'opt/Prefix length': 'icmpv6.opt.prefix.length',
  'opt/Valid lifetime': 'icmpv6.opt.prefix.valid_lifetime',
  'opt/Preferred lifetime': 'icmpv6.opt.prefix.preferred_lifetime',
  'opt/Prefix': 'icmpv6.opt.prefix',
};

/** Values that are not the field's whole bytes as a number (bit fields, units). */
function bitValue(name: string, r: Reader, at: number): string | undefined {
  const b = r.u8(at);
  switch (name) {
    case 'ip.version':
    case 'ipv6.version':
      return String(b >> 4);
    case 'ip.hdr_len':
      return String((b & 15) * 4);
    case 'ip.dsfield.dscp':
      return String(b >> 2);
    case 'ip.dsfield.ecn':
      return String(b & 3);
    case 'ip.flags':
      return `0x${(b >> 5).toString(16).padStart(2, '0')}`;
    case 'ip.flags.rb':
      return String((b >> 7) & 1);
    case 'ip.flags.df':
      return String((b >> 6) & 1);
    case 'ip.flags.mf':
      return String((b >> 5) & 1);
    case 'ip.frag_offset':
      return String(r.u16(at) & 0x1fff);
    case 'ipv6.tclass':
      return String((r.u16(at) >> 4) & 0xff);
    case 'ipv6.flow':
      return String(r.u32(at - 1) & 0xfffff);
    default:
      return undefined;
  }
}

/**
 * Gives every node that shows one field its registry name and its value as a filter literal, from
 * the layer it sits in (an ICMP error's quoted headers are named as Wireshark names them: ip.*, icmp.*).
 */
function nameFields(nodes: FieldNode[], layer: string | null, r: Reader): void {
  for (const n of nodes) {
    const own = LAYER_OF[n.label];
    if (own !== undefined) {
      n.name = own;
      if (n.children) nameFields(n.children, own === 'icmpv6' ? `icmpv6-${r.u8(n.start)}` : own, r);
      continue;
    }
    if (layer?.startsWith('icmpv6') && n.children && ND_OPTION_LABELS.has(n.label)) {
      // An ND option: its fields are icmpv6.opt.*; the option itself is icmpv6.opt.
      n.name = 'icmpv6.opt';
      nameFields(n.children, `opt-${r.u8(n.start)}`, r);
      continue;
    }
    if (layer === 'ipv6' && n.children && n.label.startsWith('IPv6 ')) {
      // An extension header: its fields are not the IPv6 header's (Wireshark: ipv6.hopopts.*, ...).
      nameFields(n.children, null, r);
      continue;
    }
    if (layer !== null && !n.truncated) {
      const base = layer.split('-')[0]!;
      const name = FIELD_NAMES[`${layer}/${n.label}`] ?? FIELD_NAMES[`${base}/${n.label}`];
      // Wireshark reads a quoted TCP sequence number only from a whole 20-byte header.
      if (name !== undefined && !(name === 'tcp.seq_raw' && !r.has(n.start - 4, 20))) {
        n.name = name;
        const info = fieldInfo(name);
        const v =
          bitValue(name, r, n.start) ??
          (info?.type === 'ipv4'
            ? r.ipv4(n.start)
            : info?.type === 'ipv6'
              ? r.ipv6(n.start)
              : info?.type === 'ether' || info?.type === 'bytes'
                ? r.mac(n.start, n.length)
                : wholeNumber(r, n.start, n.length));
        if (v !== undefined) n.filterValue = v;
      }
    }
    if (n.children) nameFields(n.children, layer, r);
  }
}

const ND_OPTION_LABELS = new Set(Object.values(ND_OPTIONS));

function wholeNumber(r: Reader, at: number, length: number): string | undefined {
  if (length < 1 || length > 4) return undefined;
  let v = 0;
  for (let i = 0; i < length; i++) v = v * 256 + r.u8(at + i);
  return String(v);
}

/**
 * The display filter that selects packets with this node's value (right-click "apply as filter"):
 * `icmp.type == 8`, `ip.src == 10.0.0.1`, or the bare name for protocols and options. Null for nodes
 * without a registry name.
 */
export function filterForNode(n: FieldNode): string | null {
  if (n.name === undefined) return null;
  if (n.filterValue === undefined) return n.name;
  const info = fieldInfo(n.name);
  const v = info?.type === 'string' ? JSON.stringify(n.filterValue) : n.filterValue;
  return `${n.name} == ${v}`;
}
