/**
 * The dissector on real packets (captured on lo with tshark: ping, ping -6, UDP to a closed port) and on
 * crafted ones with known values, plus truncated and garbage input, which must never throw.
 */
import { describe, expect, it } from 'vitest';
import { type FieldNode, dissect, fieldAt, hexToBytes } from './dissect.js';

// ping -c1 -p 41 -s 12 127.0.0.1 (request and reply), id 0x4b4f seq 1
const ECHO4_REQUEST = '4500002814bb4000400128187f0000017f000001080025284b4f0001414141414141414141414141';
const ECHO4_REPLY = '4500002814bc0000400168177f0000017f00000100002d284b4f0001414141414141414141414141';
// ping -6 -c1 -s 8 ::1
const ECHO6_REQUEST =
  '6003f4b100103a400000000000000000000000000000000100000000000000000000000000000001800028524b5000010001020304050607';
// UDP 127.0.0.1:52949 -> :9 answered by Port Unreachable, quoting the datagram
const UNREACH4 =
  '45c0003d14f000004001670e7f0000017f0000010303ec1d000000004500002103df4000401138eb7f0000017f000001ced50009000dfe2068656c6c6f';
// UDP [::1]:54469 -> :9 answered by ICMPv6 Port Unreachable
const UNREACH6 =
  '600fd40a003d3a40000000000000000000000000000000010000000000000000000000000000000101045c3800000000600b1822000d11400000000000000000000000000000000100000000000000000000000000000001d4c50009000d002068656c6c6f';

/** Finds a node by its path of labels, failing the test with the labels that exist instead. */
function at(nodes: FieldNode[], ...path: string[]): FieldNode {
  let list = nodes;
  let found: FieldNode | undefined;
  for (const label of path) {
    found = list.find((n) => n.label === label);
    if (!found) throw new Error(`no "${label}" among ${list.map((n) => n.label).join(', ')}`);
    list = found.children ?? [];
  }
  return found!;
}

function walk(nodes: FieldNode[], visit: (n: FieldNode) => void): void {
  for (const n of nodes) {
    visit(n);
    if (n.children) walk(n.children, visit);
  }
}

describe('dissect', () => {
  it('decodes an IPv4 echo request: header fields, checksums, id and seq, with byte ranges', () => {
    const tree = dissect(hexToBytes(ECHO4_REQUEST));
    expect(at(tree, 'Internet Protocol Version 4', 'Version').value).toBe('4');
    expect(at(tree, 'Internet Protocol Version 4', 'Header length').value).toBe('20 bytes (5)');
    expect(at(tree, 'Internet Protocol Version 4', 'Total length').value).toBe('40');
    expect(at(tree, 'Internet Protocol Version 4', 'Identification').value).toBe('5307 (0x14bb)');
    expect(at(tree, 'Internet Protocol Version 4', 'Flags', "Don't fragment").value).toBe('Set');
    expect(at(tree, 'Internet Protocol Version 4', 'Time to live')).toMatchObject({ value: '64', start: 8 });
    expect(at(tree, 'Internet Protocol Version 4', 'Protocol').value).toBe('ICMP (1)');
    expect(at(tree, 'Internet Protocol Version 4', 'Header checksum').value).toBe('0x2818 [correct]');
    expect(at(tree, 'Internet Protocol Version 4', 'Source address')).toMatchObject({
      value: '127.0.0.1',
      start: 12,
      length: 4,
    });
    const icmp = 'Internet Control Message Protocol';
    expect(at(tree, icmp, 'Type')).toMatchObject({ value: 'Echo Request (8)', start: 20, length: 1 });
    expect(at(tree, icmp, 'Checksum').value).toBe('0x2528 [correct]');
    expect(at(tree, icmp, 'Identifier')).toMatchObject({ value: '19279 (0x4b4f)', start: 24, length: 2 });
    expect(at(tree, icmp, 'Sequence number')).toMatchObject({ value: '1 (0x0001)', start: 26, length: 2 });
    expect(at(tree, icmp, 'Data')).toMatchObject({ value: '12 bytes', start: 28, length: 12 });
    expect(at(tree, icmp).truncated).toBeUndefined();
  });

  it('flags a wrong checksum as incorrect', () => {
    const bytes = hexToBytes(ECHO4_REPLY);
    expect(at(dissect(bytes), 'Internet Control Message Protocol', 'Checksum').value).toBe(
      '0x2d28 [correct]',
    );
    bytes[22] = 0;
    expect(at(dissect(bytes), 'Internet Control Message Protocol', 'Checksum').value).toMatch(/incorrect/);
  });

  it('decodes an IPv6 echo request with the pseudo-header checksum', () => {
    const tree = dissect(hexToBytes(ECHO6_REQUEST));
    const ip = 'Internet Protocol Version 6';
    expect(at(tree, ip, 'Version').value).toBe('6');
    expect(at(tree, ip, 'Flow label')).toMatchObject({ value: '0x3f4b1', start: 1, length: 3 });
    expect(at(tree, ip, 'Payload length').value).toBe('16');
    expect(at(tree, ip, 'Next header').value).toBe('ICMPv6 (58)');
    expect(at(tree, ip, 'Hop limit').value).toBe('64');
    expect(at(tree, ip, 'Source address')).toMatchObject({ value: '::1', start: 8, length: 16 });
    const icmp = 'Internet Control Message Protocol v6';
    expect(at(tree, icmp, 'Type').value).toBe('Echo Request (128)');
    expect(at(tree, icmp, 'Checksum').value).toBe('0x2852 [correct]');
    expect(at(tree, icmp, 'Identifier')).toMatchObject({ value: '19280 (0x4b50)', start: 44 });
  });

  it('decodes the datagram quoted in an IPv4 port unreachable: its IP header and UDP ports', () => {
    const tree = dissect(hexToBytes(UNREACH4));
    const icmp = 'Internet Control Message Protocol';
    expect(at(tree, icmp).value).toBe('Destination Unreachable, Port unreachable');
    expect(at(tree, 'Internet Protocol Version 4', 'Differentiated services', 'DSCP').value).toBe('48');
    const quote = at(tree, icmp, 'Quoted datagram');
    expect(quote.start).toBe(28);
    expect(at(quote.children!, 'Quoted IPv4 header', 'Protocol').value).toBe('UDP (17)');
    expect(at(quote.children!, 'Quoted IPv4 header', 'Header checksum').value).toBe('0x38eb [correct]');
    expect(at(quote.children!, 'Quoted UDP header', 'Source port')).toMatchObject({
      value: '52949',
      start: 48,
      length: 2,
    });
    expect(at(quote.children!, 'Quoted UDP header', 'Destination port').value).toBe('9');
  });

  it('decodes the datagram quoted in an ICMPv6 port unreachable', () => {
    const tree = dissect(hexToBytes(UNREACH6));
    const icmp = 'Internet Control Message Protocol v6';
    expect(at(tree, icmp, 'Code').value).toBe('Port unreachable (4)');
    expect(at(tree, icmp, 'Checksum').value).toBe('0x5c38 [correct]');
    const quote = at(tree, icmp, 'Quoted datagram').children!;
    expect(at(quote, 'Quoted IPv6 header', 'Next header').value).toBe('UDP (17)');
    expect(at(quote, 'Quoted UDP header', 'Source port')).toMatchObject({ value: '54469', start: 88 });
  });

  it('shows the MTU of a frag-needed, a packet-too-big and the quoted echo id/seq', () => {
    // IPv4 frag-needed (3/4) MTU 1400 quoting an ICMP echo request id 0x1234 seq 7.
    const inner4 = '4500005400004000400100000a0000010a000002' + '0800000012340007';
    const frag = hexToBytes('45000038000000004001000' + '00a0000020a000001' + '0304000000000578' + inner4);
    const tree4 = dissect(frag);
    expect(at(tree4, 'Internet Control Message Protocol', 'Next-hop MTU').value).toBe('1400');
    const q4 = at(tree4, 'Internet Control Message Protocol', 'Quoted datagram').children!;
    expect(at(q4, 'Quoted ICMP header', 'Identifier').value).toBe('4660 (0x1234)');
    expect(at(q4, 'Quoted ICMP header', 'Sequence number').value).toBe('7 (0x0007)');

    // ICMPv6 packet-too-big with MTU 1280 quoting an echo request.
    const addrs = '20010db8000000000000000000000001' + '20010db8000000000000000000000002';
    const inner6 = '6000000005003a40' + addrs + '8000000012340009';
    const ptb = hexToBytes('6000000000403a40' + addrs + '0200000000000500' + inner6);
    const tree6 = dissect(ptb);
    expect(at(tree6, 'Internet Protocol Version 6', 'Source address').value).toBe('2001:db8::1');
    expect(at(tree6, 'Internet Control Message Protocol v6', 'MTU')).toMatchObject({
      value: '1280',
      start: 44,
    });
    const q6 = at(tree6, 'Internet Control Message Protocol v6', 'Quoted datagram').children!;
    expect(at(q6, 'Quoted ICMPv6 header', 'Sequence number').value).toBe('9 (0x0009)');
  });

  it('decodes the pointer of a parameter problem and the gateway of a redirect', () => {
    const hdr = '450000240000000040010000c0000201c0000202';
    const quote = '4500001c000000004011000' + '0c0000202c0000203' + '0035003500080000';
    const param = dissect(hexToBytes(hdr + '0c0000001400000' + '0' + quote));
    expect(at(param, 'Internet Control Message Protocol', 'Pointer').value).toBe('20');
    const redirect = dissect(hexToBytes(hdr + '05010000c6336401' + quote));
    expect(at(redirect, 'Internet Control Message Protocol', 'Gateway address').value).toBe('198.51.100.1');
    expect(
      at(
        redirect,
        'Internet Control Message Protocol',
        'Quoted datagram',
        'Quoted UDP header',
        'Destination port',
      ).value,
    ).toBe('53');
  });

  it('decodes a neighbour solicitation: target address and source link-layer option', () => {
    const addrs = 'fe800000000000000000000000000001' + 'ff020000000000000000000100000002';
    const ns = hexToBytes(
      '6000000000203aff' +
        addrs +
        '87000000' +
        '00000000' +
        '20010db8000000000000000000000002' +
        '0101' +
        '0a0b0c0d0e0f',
    );
    const tree = dissect(ns);
    const icmp = 'Internet Control Message Protocol v6';
    expect(at(tree, icmp, 'Type').value).toBe('Neighbor Solicitation (135)');
    expect(at(tree, icmp, 'Target address')).toMatchObject({ value: '2001:db8::2', start: 48, length: 16 });
    expect(at(tree, icmp, 'Source link-layer address')).toMatchObject({
      value: '0a:0b:0c:0d:0e:0f',
      start: 64,
    });
  });

  it('marks truncation instead of throwing, at every cut of real packets', () => {
    for (const hex of [ECHO4_REQUEST, ECHO6_REQUEST, UNREACH4, UNREACH6]) {
      const full = hexToBytes(hex);
      for (let cut = 0; cut < full.length; cut++) {
        const tree = dissect(full.subarray(0, cut));
        expect(tree.length).toBeGreaterThan(0);
        let truncated = false;
        walk(tree, (n) => {
          truncated ||= n.truncated === true;
          expect(n.start + n.length).toBeLessThanOrEqual(Math.max(cut, n.start));
        });
        if (cut > 0) expect(truncated, `cut at ${cut} of ${hex.slice(0, 8)}`).toBe(true);
      }
    }
    const cut = dissect(hexToBytes(ECHO4_REQUEST).subarray(0, 25));
    expect(at(cut, 'Internet Control Message Protocol', 'Identifier')).toMatchObject({
      value: '[truncated]',
      truncated: true,
      start: 24,
      length: 1,
    });
  });

  it('survives garbage: random bytes, a bad version, a header length below 20', () => {
    let seed = 42;
    const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
    for (let i = 0; i < 2000; i++) {
      const bytes = Uint8Array.from({ length: rand() % 120 }, rand);
      if (i % 3 === 0 && bytes.length) bytes[0] = 0x45;
      if (i % 3 === 1 && bytes.length) bytes[0] = 0x60;
      expect(() => dissect(bytes)).not.toThrow();
    }
    expect(dissect(hexToBytes('1234'))[0]!.value).toMatch(/not an IPv4 or IPv6 header/);
    expect(dissect(new Uint8Array(0))[0]!.label).toBe('No data');
    const short = at(
      dissect(hexToBytes('4300001400000000400100000102030405060708')),
      'Internet Protocol Version 4',
    );
    expect(short.children!.some((c) => c.label === 'Invalid')).toBe(true);
  });

  it('finds the deepest field under a byte, for hex-dump hovering', () => {
    const tree = dissect(hexToBytes(UNREACH4));
    expect(fieldAt(tree, 13)!.label).toBe('Source address');
    expect(fieldAt(tree, 48)!.label).toBe('Source port');
    expect(fieldAt(tree, 20)!.label).toBe('Type');
    expect(fieldAt(tree, 500)).toBeNull();
  });
});

describe('dissect: fragments', () => {
  it('shows a later IPv4 fragment as fragment data, never as an ICMP message', () => {
    const bytes = hexToBytes(ECHO4_REQUEST);
    bytes[6] = 0x20; // more fragments
    bytes[7] = 0xb9; // offset 185 * 8
    const tree = dissect(bytes);
    expect(tree.map((n) => n.label)).toEqual(['Internet Protocol Version 4', 'Fragment data']);
    expect(tree[1]!.value).toMatch(/no ICMP header in this fragment/);
  });

  it('decodes a first IPv4 fragment without calling its checksum incorrect', () => {
    const bytes = hexToBytes(ECHO4_REQUEST);
    bytes[6] = 0x20; // more fragments, offset 0
    const tree = dissect(bytes);
    const checksum = at(tree, 'Internet Control Message Protocol', 'Checksum');
    expect(checksum.value).not.toMatch(/incorrect/);
    expect(at(tree, 'Internet Control Message Protocol').value).toBe('Echo Request');
  });

  it('shows a later IPv6 fragment as fragment data', () => {
    const echo = hexToBytes(ECHO6_REQUEST);
    const bytes = new Uint8Array(echo.length + 8);
    bytes.set(echo.subarray(0, 40));
    bytes[6] = 44; // a Fragment header follows
    bytes.set([58, 0, 0x05, 0x01, 0, 0, 0, 42], 40); // offset 160, more fragments
    bytes.set(echo.subarray(40), 48);
    const tree = dissect(bytes);
    expect(tree.map((n) => n.label)).toEqual(['Internet Protocol Version 6', 'Fragment data']);
  });
});
