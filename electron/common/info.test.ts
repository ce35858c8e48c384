import { describe, expect, it } from 'vitest';
import { packetInfo } from './info.js';

function ipv4(
  opts: { proto: number; id: number; frag: number; src: number[]; dst: number[] },
  payload: number[],
) {
  const h = [
    0x45,
    0,
    0,
    20 + payload.length,
    opts.id >> 8,
    opts.id & 255,
    opts.frag >> 8,
    opts.frag & 255,
    64,
    opts.proto,
    0,
    0,
    ...opts.src,
    ...opts.dst,
  ];
  return Uint8Array.from([...h, ...payload]);
}
const A = [10, 0, 0, 2];
const B = [198, 51, 100, 7];

describe('packetInfo', () => {
  it('names a later fragment by offset and id, whatever its bytes look like', () => {
    const b = ipv4({ proto: 1, id: 0x6c6d, frag: 1480 / 8, src: A, dst: B }, [0, 0, 0, 0, 0, 0, 0, 0]);
    expect(packetInfo(b, { family: 4, type: 0, code: 0, ttl: 64 })).toBe('Fragment off=1480 id=0x6c6d');
    const more = ipv4({ proto: 1, id: 0x6c6d, frag: 0x2000 | (1480 / 8), src: A, dst: B }, [0, 0, 0, 0]);
    expect(packetInfo(more, { family: 4, type: 0, code: 0, ttl: 64 })).toBe(
      'Fragment off=1480 id=0x6c6d, more follow',
    );
  });

  it('quotes the datagram an ICMP error is about', () => {
    const inner = ipv4({ proto: 17, id: 1, frag: 0, src: A, dst: B }, [0x9c, 0x40, 0x82, 0x9a, 0, 8, 0, 0]);
    const b = ipv4({ proto: 1, id: 2, frag: 0, src: B, dst: A }, [3, 3, 0, 0, 0, 0, 0, 0, ...inner]);
    expect(packetInfo(b, { family: 4, type: 3, code: 3, ttl: 64 })).toBe(
      'Port unreachable for UDP 10.0.0.2:40000 → 198.51.100.7:33434',
    );
  });

  it('writes echo ids in hex, the sequence both ways round, and the matching', () => {
    const b = ipv4({ proto: 1, id: 3, frag: 0, src: A, dst: B }, [8, 0, 0, 0, 0x12, 0x81, 0, 1]);
    expect(packetInfo(b, { family: 4, type: 8, code: 0, ttl: 64, replyIn: 70 })).toBe(
      'Echo (ping) request id=0x1281, seq=1/256, ttl=64 (reply in 70)',
    );
    expect(packetInfo(b, { family: 4, type: 8, code: 0, ttl: 64, noResponse: true })).toBe(
      'Echo (ping) request id=0x1281, seq=1/256, ttl=64 (no response found!)',
    );
  });
});
