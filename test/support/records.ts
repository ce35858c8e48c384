/** Builds batches in the record format (electron/core/record.ts) for tests of the service. */
import { OFF, RECORD_HEADER_SIZE, REC_F_HAS_ECHO, alignRecord } from '../../electron/core/record.js';

export interface RecordSpec {
  tsNs: bigint;
  family?: 4 | 6;
  src: string;
  dst: string;
  type: number;
  code?: number;
  id?: number;
  seq?: number;
  dir?: number;
  ifindex?: number;
  ttl?: number;
  payload?: number;
}

function addressBytes(text: string, family: 4 | 6): number[] {
  if (family === 4) return text.split('.').map(Number);
  const [head, tail] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t].map((g) =>
    parseInt(g, 16),
  );
  return groups.flatMap((g) => [g >> 8, g & 0xff]);
}

export function buildBatch(specs: RecordSpec[]): ArrayBuffer {
  const sizes = specs.map((s) => alignRecord(RECORD_HEADER_SIZE + (s.payload ?? 28)));
  const buf = new ArrayBuffer(sizes.reduce((a, b) => a + b, 0));
  const view = new DataView(buf);
  const bytes = new Uint8Array(buf);
  let o = 0;
  specs.forEach((s, k) => {
    const family = s.family ?? 4;
    const capLen = s.payload ?? 28;
    const echo = s.id !== undefined;
    view.setUint32(o + OFF.len, RECORD_HEADER_SIZE + capLen, true);
    view.setUint16(o + OFF.flags, echo ? REC_F_HAS_ECHO : 0, true);
    view.setUint8(o + OFF.hook, 255);
    view.setUint8(o + OFF.dir, s.dir ?? 0);
    view.setBigUint64(o + OFF.tsNs, s.tsNs, true);
    view.setUint32(o + OFF.ifindex, s.ifindex ?? 1, true);
    view.setUint32(o + OFF.origLen, capLen, true);
    view.setUint16(o + OFF.capLen, capLen, true);
    view.setUint8(o + OFF.family, family);
    view.setUint8(o + OFF.ttl, s.ttl ?? 64);
    view.setUint8(o + OFF.type, s.type);
    view.setUint8(o + OFF.code, s.code ?? 0);
    view.setUint16(o + OFF.id, s.id ?? 0, true);
    view.setUint16(o + OFF.seq, s.seq ?? 0, true);
    bytes.set(addressBytes(s.src, family), o + OFF.saddr);
    bytes.set(addressBytes(s.dst, family), o + OFF.daddr);
    o += sizes[k]!;
  });
  return buf;
}
