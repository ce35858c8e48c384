/**
 * The one field registry, as Wireshark's `hf_register_info`: every field icmpcap can show, filter on,
 * complete, export or print with `-T fields -e` is declared here once, named as Wireshark spells it.
 * No runtime imports: the renderer reads it for completion, help and the details tree's names; the
 * service's extractor (electron/core/fields/extract.ts) reads values for exactly these names and the
 * display-filter compiler (electron/core/filter) resolves names against it.
 *
 * Types follow Wireshark's ftypes, reduced to what ICMP capture needs. `display` is the base tshark
 * uses when it prints the field (`-T fields`: `hex` fields print as `0x` + zero-padded digits).
 */

export type FieldType =
  | 'none'
  | 'protocol'
  | 'bool'
  | 'uint8'
  | 'uint16'
  | 'uint24'
  | 'uint32'
  | 'int32'
  | 'framenum'
  | 'double'
  | 'abstime'
  | 'reltime'
  | 'ipv4'
  | 'ipv6'
  | 'ether'
  | 'bytes'
  | 'string';

export type FieldLayer = 'frame' | 'ip' | 'ipv6' | 'icmp' | 'icmpv6' | 'udp' | 'tcp' | 'icmpcap';

/** What value list autocomplete can offer after an operator. */
export type FieldValues = 'type4' | 'type6' | 'dir' | 'hook' | 'iface' | 'address4' | 'address6';

export interface FieldInfo {
  /** As Wireshark spells it (`icmpv6.echo.identifier`). */
  readonly name: string;
  readonly type: FieldType;
  /** One line, as Wireshark's field description (the details tree's label). */
  readonly description: string;
  readonly layer: FieldLayer;
  /** Display base for unsigned integers: how tshark prints the value. */
  readonly display?: 'dec' | 'hex' | 'dec_hex' | 'hex_dec';
  /** Bit mask within the containing byte/word for bit fields (documentation; the extractor shifts). */
  readonly values?: FieldValues;
  /** Set for icmpcap's own fields, which tshark does not know. */
  readonly own?: true;
  /** A field the filter compiler reads from the in-memory columns (fast); others need the bytes. */
  readonly columnar?: true;
}

/** Wireshark protocol names usable as bare words (`icmp`, `ipv6`). */
export const PROTOCOLS: readonly FieldInfo[] = [
  { name: 'frame', type: 'protocol', description: 'Frame', layer: 'frame', columnar: true },
  { name: 'ip', type: 'protocol', description: 'Internet Protocol Version 4', layer: 'ip', columnar: true },
  {
    name: 'ipv6',
    type: 'protocol',
    description: 'Internet Protocol Version 6',
    layer: 'ipv6',
    columnar: true,
  },
  {
    name: 'icmp',
    type: 'protocol',
    description: 'Internet Control Message Protocol (ICMPv4 only)',
    layer: 'icmp',
    columnar: true,
  },
  {
    name: 'icmpv6',
    type: 'protocol',
    description: 'Internet Control Message Protocol v6',
    layer: 'icmpv6',
    columnar: true,
  },
  { name: 'udp', type: 'protocol', description: 'User Datagram Protocol (quoted in errors)', layer: 'udp' },
  {
    name: 'tcp',
    type: 'protocol',
    description: 'Transmission Control Protocol (quoted in errors)',
    layer: 'tcp',
  },
  { name: 'icmpcap', type: 'protocol', description: 'icmpcap capture metadata', layer: 'icmpcap', own: true },
];

const f = (
  name: string,
  type: FieldType,
  description: string,
  extra: Partial<Omit<FieldInfo, 'name' | 'type' | 'description' | 'layer'>> = {},
): FieldInfo => ({
  name,
  type,
  description,
  layer: (name.split('.')[0] ?? 'frame') as FieldLayer,
  ...extra,
});

const C = { columnar: true } as const;

export const FIELDS: readonly FieldInfo[] = [
  // frame
  f('frame.number', 'framenum', 'Frame Number', C),
  f('frame.len', 'uint32', 'Frame length on the wire', C),
  f('frame.cap_len', 'uint32', 'Frame length stored into the capture file', C),
  f('frame.time', 'abstime', 'Arrival Time'),
  f('frame.time_epoch', 'abstime', 'Epoch Time (seconds since 1970-01-01 UTC)'),
  f('frame.time_relative', 'reltime', 'Time since reference or first frame', C),
  f('frame.time_delta', 'reltime', 'Time delta from previous captured frame'),
  f('frame.interface_name', 'string', 'Interface name', { values: 'iface', columnar: true }),
  f('frame.interface_id', 'uint32', 'Interface id'),
  // IPv4 (every occurrence: the outer header and the one an ICMP error quotes)
  f('ip.version', 'uint8', 'Version'),
  f('ip.hdr_len', 'uint8', 'Header Length'),
  f('ip.dsfield', 'uint8', 'Differentiated Services Field', { display: 'hex' }),
  f('ip.dsfield.dscp', 'uint8', 'Differentiated Services Codepoint'),
  f('ip.dsfield.ecn', 'uint8', 'Explicit Congestion Notification'),
  f('ip.len', 'uint16', 'Total Length'),
  f('ip.id', 'uint16', 'Identification', { display: 'hex_dec' }),
  f('ip.flags', 'uint8', 'Flags', { display: 'hex' }),
  f('ip.flags.rb', 'bool', 'Reserved bit'),
  f('ip.flags.df', 'bool', "Don't fragment"),
  f('ip.flags.mf', 'bool', 'More fragments'),
  f('ip.frag_offset', 'uint16', 'Fragment Offset (8-byte units)'),
  f('ip.ttl', 'uint8', 'Time to Live', C),
  f('ip.proto', 'uint8', 'Protocol'),
  f('ip.checksum', 'uint16', 'Header Checksum', { display: 'hex' }),
  f('ip.checksum.status', 'uint8', 'Header checksum status (2: unverified, as Wireshark by default)'),
  f('ip.src', 'ipv4', 'Source Address', { values: 'address4', columnar: true }),
  f('ip.dst', 'ipv4', 'Destination Address', { values: 'address4', columnar: true }),
  f('ip.addr', 'ipv4', 'Source or Destination Address', { values: 'address4', columnar: true }),
  f('ip.src_host', 'string', 'Source Host'),
  f('ip.dst_host', 'string', 'Destination Host'),
  f('ip.host', 'string', 'Source or Destination Host'),
  // IPv6
  f('ipv6.version', 'uint8', 'Version'),
  f('ipv6.tclass', 'uint32', 'Traffic Class', { display: 'hex' }),
  f('ipv6.tclass.dscp', 'uint32', 'Differentiated Services Codepoint'),
  f('ipv6.tclass.ecn', 'uint32', 'Explicit Congestion Notification'),
  f('ipv6.flow', 'uint24', 'Flow Label', { display: 'hex' }),
  f('ipv6.plen', 'uint16', 'Payload Length'),
  f('ipv6.nxt', 'uint8', 'Next Header'),
  f('ipv6.hlim', 'uint8', 'Hop Limit', C),
  f('ipv6.src', 'ipv6', 'Source Address', { values: 'address6', columnar: true }),
  f('ipv6.dst', 'ipv6', 'Destination Address', { values: 'address6', columnar: true }),
  f('ipv6.addr', 'ipv6', 'Source or Destination Address', { values: 'address6', columnar: true }),
  f('ipv6.src_host', 'string', 'Source Host'),
  f('ipv6.dst_host', 'string', 'Destination Host'),
  f('ipv6.host', 'string', 'Source or Destination Host'),
  f('ipv6.fraghdr.offset', 'uint16', 'Fragment Offset (8-byte units)'),
  f('ipv6.fraghdr.more', 'bool', 'More Fragments'),
  f('ipv6.fraghdr.ident', 'uint32', 'Identification', { display: 'hex' }),
  // ICMPv4 (icmp.* is ICMPv4 only, as in Wireshark)
  f('icmp.type', 'uint8', 'Type', { values: 'type4', columnar: true }),
  f('icmp.code', 'uint8', 'Code', C),
  f('icmp.checksum', 'uint16', 'Checksum', { display: 'hex' }),
  f('icmp.checksum.status', 'uint8', 'Checksum Status (0: bad, 1: good, 2: unverified)'),
  f('icmp.ident', 'uint16', 'Identifier (BE)', { display: 'dec_hex', columnar: true }),
  f('icmp.ident_le', 'uint16', 'Identifier (LE)', { display: 'dec_hex' }),
  f('icmp.seq', 'uint16', 'Sequence Number (BE)', { display: 'dec_hex', columnar: true }),
  f('icmp.seq_le', 'uint16', 'Sequence Number (LE)', { display: 'dec_hex' }),
  f('icmp.mtu', 'uint16', 'MTU of next hop'),
  f('icmp.pointer', 'uint32', 'Pointer'),
  f('icmp.redir_gw', 'ipv4', 'Gateway Address'),
  f('icmp.length', 'uint8', 'Length of original datagram (RFC 4884, 32-bit words)'),
  f('icmp.length.original_datagram', 'uint8', 'Length of original datagram (bytes)'),
  f('icmp.ext', 'none', 'ICMP Multi-Part Extensions (RFC 4884)'),
  f('icmp.ext.version', 'uint8', 'Extension version'),
  f('icmp.ext.checksum', 'uint16', 'Extension checksum', { display: 'hex' }),
  f('icmp.ext.length', 'uint16', 'Extension object length'),
  f('icmp.ext.class', 'uint8', 'Extension object class'),
  f('icmp.ext.ctype', 'uint8', 'Extension object C-Type'),
  f('icmp.mpls.label', 'uint24', 'MPLS label (RFC 4950)'),
  f('icmp.mpls.exp', 'uint8', 'MPLS traffic class'),
  f('icmp.mpls.s', 'bool', 'MPLS bottom of stack'),
  f('icmp.mpls.ttl', 'uint8', 'MPLS TTL'),
  f('icmp.int_info.role', 'uint8', 'Interface role (RFC 5837)'),
  f('icmp.int_info.index', 'uint32', 'Interface index'),
  f('icmp.int_info.ipv4', 'ipv4', 'Interface IPv4 address'),
  f('icmp.int_info.ipv6', 'ipv6', 'Interface IPv6 address'),
  f('icmp.int_info.name', 'string', 'Interface name'),
  f('icmp.int_info.mtu', 'uint32', 'Interface MTU'),
  f('icmp.resp_in', 'framenum', 'Response frame'),
  f('icmp.resp_to', 'framenum', 'Request frame'),
  f('icmp.no_resp', 'none', 'No response seen'),
  f('icmp.resptime', 'double', 'Response time (ms)'),
  // ICMPv6
  f('icmpv6.type', 'uint8', 'Type', { values: 'type6', columnar: true }),
  f('icmpv6.code', 'uint8', 'Code', C),
  f('icmpv6.checksum', 'uint16', 'Checksum', { display: 'hex' }),
  f('icmpv6.checksum.status', 'uint8', 'Checksum Status (0: bad, 1: good, 2: unverified)'),
  f('icmpv6.echo.identifier', 'uint16', 'Identifier', { display: 'hex', columnar: true }),
  f('icmpv6.echo.sequence_number', 'uint16', 'Sequence', { columnar: true }),
  f('icmpv6.mtu', 'uint32', 'MTU'),
  f('icmpv6.pointer', 'uint32', 'Pointer'),
  f('icmpv6.length', 'uint8', 'Length of original datagram (RFC 4884, 64-bit words)'),
  f('icmpv6.nd.ns.target_address', 'ipv6', 'Target Address (Neighbor Solicitation)'),
  f('icmpv6.nd.na.target_address', 'ipv6', 'Target Address (Neighbor Advertisement)'),
  f('icmpv6.nd.na.flag', 'uint32', 'Neighbor Advertisement Flags', { display: 'hex' }),
  f('icmpv6.nd.na.flag.r', 'bool', 'Router'),
  f('icmpv6.nd.na.flag.s', 'bool', 'Solicited'),
  f('icmpv6.nd.na.flag.o', 'bool', 'Override'),
  f('icmpv6.nd.ra.cur_hop_limit', 'uint8', 'Cur hop limit'),
  f('icmpv6.nd.ra.flag', 'uint8', 'Router Advertisement Flags', { display: 'hex' }),
  f('icmpv6.nd.ra.flag.m', 'bool', 'Managed address configuration'),
  f('icmpv6.nd.ra.flag.o', 'bool', 'Other configuration'),
  f('icmpv6.nd.ra.flag.h', 'bool', 'Home Agent'),
  f('icmpv6.nd.ra.router_lifetime', 'uint16', 'Router lifetime (s)'),
  f('icmpv6.nd.ra.reachable_time', 'uint32', 'Reachable time (ms)'),
  f('icmpv6.nd.ra.retrans_timer', 'uint32', 'Retrans timer (ms)'),
  f('icmpv6.nd.rd.target_address', 'ipv6', 'Target Address (Redirect)'),
  f('icmpv6.rd.na.destination_address', 'ipv6', 'Destination Address (Redirect)'),
  f('icmpv6.opt', 'none', 'ICMPv6 Option'),
  f('icmpv6.opt.type', 'uint8', 'Option Type'),
  f('icmpv6.opt.length', 'uint8', 'Option Length (8-byte units)'),
  f('icmpv6.opt.linkaddr', 'bytes', 'Link-layer address'),
  f('icmpv6.opt.src_linkaddr', 'bytes', 'Source Link-layer address'),
  f('icmpv6.opt.target_linkaddr', 'bytes', 'Target Link-layer address'),
  f('icmpv6.opt.prefix.length', 'uint8', 'Prefix Length'),
  f('icmpv6.opt.prefix.flag', 'uint8', 'Prefix Flags', { display: 'hex' }),
  f('icmpv6.opt.prefix.flag.l', 'bool', 'On-link flag (L)'),
  f('icmpv6.opt.prefix.flag.a', 'bool', 'Autonomous address-configuration flag (A)'),
  f('icmpv6.opt.prefix.valid_lifetime', 'uint32', 'Valid Lifetime'),
  f('icmpv6.opt.prefix.preferred_lifetime', 'uint32', 'Preferred Lifetime'),
  f('icmpv6.opt.prefix', 'ipv6', 'Prefix'),
  f('icmpv6.opt.mtu', 'uint32', 'MTU (option)'),
  f('icmpv6.opt.rdnss.lifetime', 'uint32', 'RDNSS lifetime'),
  f('icmpv6.opt.rdnss', 'ipv6', 'Recursive DNS servers'),
  f('icmpv6.resp_in', 'framenum', 'Response In'),
  f('icmpv6.resp_to', 'framenum', 'Response To'),
  f('icmpv6.no_resp', 'none', 'No response seen'),
  f('icmpv6.resptime', 'double', 'Response Time (ms)'),
  // Transport headers quoted inside ICMP errors
  f('udp.srcport', 'uint16', 'Source Port'),
  f('udp.dstport', 'uint16', 'Destination Port'),
  f('udp.port', 'uint16', 'Source or Destination Port'),
  f('udp.length', 'uint16', 'Length'),
  f('tcp.srcport', 'uint16', 'Source Port'),
  f('tcp.dstport', 'uint16', 'Destination Port'),
  f('tcp.port', 'uint16', 'Source or Destination Port'),
  f('tcp.seq_raw', 'uint32', 'Sequence Number (raw)'),
  // icmpcap's own (tshark does not know these)
  f(
    'icmpcap.hook',
    'string',
    'Netfilter hook that saw the packet (prerouting, local-in, forward, local-out, postrouting, none)',
    {
      own: true,
      values: 'hook',
      columnar: true,
    },
  ),
  f('icmpcap.dir', 'string', 'Direction (in, out, fwd, unknown)', {
    own: true,
    values: 'dir',
    columnar: true,
  }),
  f('icmpcap.rtt', 'double', 'Round-trip time of a reply matched to its request within the timeout (ms)', {
    own: true,
    columnar: true,
  }),
  f('icmpcap.peer.addr', 'string', 'The peer: the remote end of an echo exchange, else the source', {
    own: true,
  }),
  f('icmpcap.peer.requester', 'string', 'Echo requester (the request source, the reply destination)', {
    own: true,
  }),
  f('icmpcap.peer.responder', 'string', 'Echo responder (the reply source)', { own: true }),
  f('icmpcap.proc.pid', 'uint32', 'Local process that sent the packet or the request it answers (pid)', {
    own: true,
  }),
  f('icmpcap.proc.name', 'string', 'Command name of that process (/proc/PID/comm)', { own: true }),
  f('icmpcap.proc.uid', 'uint32', 'User id owning that process or its socket', { own: true }),
  f('icmpcap.proc.cgroup', 'string', 'Control group (container, service) of that process', { own: true }),
];

const BY_NAME: ReadonlyMap<string, FieldInfo> = new Map([...PROTOCOLS, ...FIELDS].map((x) => [x.name, x]));

/** A field or protocol by its Wireshark name, or undefined. */
export function fieldInfo(name: string): FieldInfo | undefined {
  return BY_NAME.get(name);
}

/**
 * Short names accepted as aliases of registry fields (the filter bar has taken them since the first
 * release; completion shows the Wireshark name).
 */
export const FIELD_ALIASES: Readonly<Record<string, string>> = {
  'icmp.id': 'icmp.ident',
  'icmpv6.echo.id': 'icmpv6.echo.identifier',
  'icmpv6.echo.seq': 'icmpv6.echo.sequence_number',
  len: 'frame.len',
  iface: 'frame.interface_name',
  dir: 'icmpcap.dir',
  hook: 'icmpcap.hook',
  rtt: 'icmpcap.rtt',
};

/** Every name completion should offer: registry fields and protocols, Wireshark spelling. */
export const ALL_FIELD_NAMES: readonly string[] = [...PROTOCOLS, ...FIELDS].map((x) => x.name);
