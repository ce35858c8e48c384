/** Test and benchmark support: well-formed IPv4/IPv6 ICMP packets built byte by byte. */

export interface EchoOptions {
  src?: number[];
  dst?: number[];
  type?: number;
  code?: number;
  id?: number;
  seq?: number;
  ttl?: number;
  payload?: number;
}

function checksum(bytes: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial;
  for (let i = start; i < end; i += 2) sum += (bytes[i]! << 8) | (bytes[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function icmpBody(type: number, code: number, id: number, seq: number, payload: number): Uint8Array {
  const body = new Uint8Array(8 + payload);
  body[0] = type;
  body[1] = code;
  body[4] = id >> 8;
  body[5] = id & 0xff;
  body[6] = seq >> 8;
  body[7] = seq & 0xff;
  for (let i = 0; i < payload; i++) body[8 + i] = (0x10 + i) & 0xff;
  return body;
}

/** IPv4 + ICMP; `options` are appended to the 20-byte header (a multiple of 4 bytes). */
export function ipv4Icmp(o: EchoOptions = {}, options: number[] = []): Uint8Array {
  const body = icmpBody(o.type ?? 8, o.code ?? 0, o.id ?? 0x1234, o.seq ?? 1, o.payload ?? 56);
  const ihl = 20 + options.length;
  const packet = new Uint8Array(ihl + body.length);
  packet[0] = 0x40 | (ihl / 4);
  packet[2] = packet.length >> 8;
  packet[3] = packet.length & 0xff;
  packet[6] = 0x40; // DF
  packet[8] = o.ttl ?? 64;
  packet[9] = 1;
  packet.set(o.src ?? [192, 0, 2, 1], 12);
  packet.set(o.dst ?? [198, 51, 100, 7], 16);
  packet.set(options, 20);
  const ipSum = checksum(packet, 0, ihl);
  packet[10] = ipSum >> 8;
  packet[11] = ipSum & 0xff;
  packet.set(body, ihl);
  const icmpSum = checksum(packet, ihl, packet.length);
  packet[ihl + 2] = icmpSum >> 8;
  packet[ihl + 3] = icmpSum & 0xff;
  return packet;
}

export const V6_SRC = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
export const V6_DST = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

/** IPv6 + extension headers (`[nextHeaderType, bytes]`, bytes[0] is patched to chain) + ICMPv6. */
export function ipv6Icmp(o: EchoOptions = {}, extensions: [number, number[]][] = []): Uint8Array {
  const body = icmpBody(o.type ?? 128, o.code ?? 0, o.id ?? 0x4321, o.seq ?? 7, o.payload ?? 56);
  const extLength = extensions.reduce((n, [, bytes]) => n + bytes.length, 0);
  const packet = new Uint8Array(40 + extLength + body.length);
  packet[0] = 0x60;
  const payloadLength = extLength + body.length;
  packet[4] = payloadLength >> 8;
  packet[5] = payloadLength & 0xff;
  packet[6] = extensions[0]?.[0] ?? 58;
  packet[7] = o.ttl ?? 64;
  packet.set(o.src ?? V6_SRC, 8);
  packet.set(o.dst ?? V6_DST, 24);
  let at = 40;
  extensions.forEach(([, bytes], i) => {
    packet.set(bytes, at);
    packet[at] = extensions[i + 1]?.[0] ?? 58;
    at += bytes.length;
  });
  packet.set(body, at);
  // Pseudo-header checksum: addresses, upper-layer length, next header 58.
  let sum = 0;
  for (let i = 8; i < 40; i += 2) sum += (packet[i]! << 8) | packet[i + 1]!;
  sum += body.length + 58;
  const icmpSum = checksum(packet, at, packet.length, sum);
  packet[at + 2] = icmpSum >> 8;
  packet[at + 3] = icmpSum & 0xff;
  return packet;
}

/** An ICMP error (time exceeded, unreachable...) quoting `quoted` as real routers do. */
export function ipv4Error(type: number, code: number, quoted: Uint8Array, o: EchoOptions = {}): Uint8Array {
  const packet = ipv4Icmp({ ...o, type, code, id: 0, seq: 0, payload: 0 });
  const out = new Uint8Array(packet.length + Math.min(quoted.length, 28 + 64));
  out.set(packet);
  out.set(quoted.subarray(0, out.length - packet.length), packet.length);
  out[2] = out.length >> 8;
  out[3] = out.length & 0xff;
  return out;
}
