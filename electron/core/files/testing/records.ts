/** Test support: record helpers (raw record bytes, expected tshark fields, a strict RFC 4180 parser). */
import { alignRecord, forEachRecord, OFF, REC_F_NOT_FIRST, type DecodedRecord } from '../../record.js';
import { secondsText } from '../text-write.js';

/** Each record of the batches as its own byte array (header, data and alignment padding). */
export function recordBytes(batches: ArrayBuffer[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const batch of batches) {
    forEachRecord(batch, (view, offset) => {
      const len = view.getUint32(offset + OFF.len, true);
      out.push(new Uint8Array(batch.slice(offset, offset + alignRecord(len))));
    });
  }
  return out;
}

export function setRecordField(record: Uint8Array, field: 'ifindex' | 'dir', value: number): Uint8Array {
  const copy = record.slice();
  const view = new DataView(copy.buffer);
  if (field === 'ifindex') view.setUint32(OFF.ifindex, value, true);
  else copy[OFF.dir] = value;
  return copy;
}

/** The tshark fields `expectedFields` describes, for comparing our records with tshark's dissection. */
export const TSHARK_FIELDS = [
  'frame.time_epoch',
  'ip.src',
  'ip.dst',
  'ipv6.src',
  'ipv6.dst',
  'icmp.type',
  'icmp.code',
  'icmpv6.type',
  'icmpv6.code',
  'icmp.ident',
  'icmp.seq',
  'icmpv6.echo.identifier',
  'icmpv6.echo.sequence_number',
  'ip.ttl',
  'ipv6.hlim',
];

/** One tshark row for `TSHARK_FIELDS` reduced to comparable values. */
export function normalizeTsharkRow(row: string[]): string {
  const [time, src4, dst4, src6, dst6, type4, code4, type6, code6, ttl, hlim] = [
    ...row.slice(0, 9),
    ...row.slice(13, 15),
  ];
  let [id4, seq4, id6, seq6] = row.slice(9, 13);
  const num = (s: string | undefined): string => (s === undefined || s === '' ? '' : String(Number(s)));
  // With occurrence=f an error's id/seq come from the echo it quotes; records only carry an echo's own.
  const echo = type4 ? ['0', '8'].includes(type4) : ['128', '129'].includes(type6 ?? '');
  if (!echo) [id4, seq4, id6, seq6] = ['', '', '', ''];
  return [
    time,
    src4 || src6,
    dst4 || dst6,
    num(type4 || type6),
    num(code4 || code6),
    num(id4 || id6),
    num(seq4 || seq6),
    num(ttl || hlim),
  ].join(' ');
}

/** tshark's display filter for what icmpcap records: ICMP and ICMPv6, later fragments included. */
export const TSHARK_ICMP_FILTER = 'icmp or icmpv6 or ip.proto == 1 or ipv6.fraghdr.nxt == 58';

export function expectedTsharkRow(r: DecodedRecord): string {
  // A later fragment has no ICMP header: tshark (not reassembling) shows no type or code for it.
  const notFirst = (r.flags & REC_F_NOT_FIRST) !== 0;
  return [
    secondsText(r.tsNs),
    r.src,
    r.dst,
    notFirst ? '' : String(r.type),
    notFirst ? '' : String(r.code),
    r.hasEcho ? String(r.id) : '',
    r.hasEcho ? String(r.seq) : '',
    String(r.ttl),
  ].join(' ');
}

/** RFC 4180: fields separated by commas, records by CRLF, quoted fields may hold quotes (doubled), commas
 * and line breaks. Throws on anything else, so a sloppy writer fails the test. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  let atFieldStart = true;
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        if (i < text.length && text[i] !== ',' && text[i] !== '\r')
          throw new Error(`text after a quote at ${i}`);
        continue;
      }
      field += c;
      i++;
      continue;
    }
    if (c === '"') {
      if (!atFieldStart) throw new Error(`quote inside an unquoted field at ${i}`);
      quoted = true;
      atFieldStart = false;
      i++;
    } else if (c === ',') {
      row.push(field);
      field = '';
      atFieldStart = true;
      i++;
    } else if (c === '\r') {
      if (text[i + 1] !== '\n') throw new Error(`CR without LF at ${i}`);
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      atFieldStart = true;
      i += 2;
    } else if (c === '\n') {
      throw new Error(`bare LF at ${i}`);
    } else {
      field += c;
      atFieldStart = false;
      i++;
    }
  }
  if (quoted) throw new Error('unterminated quoted field');
  if (!atFieldStart || row.length > 0) throw new Error('the last record does not end with CRLF');
  return rows;
}
