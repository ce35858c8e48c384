/**
 * A live pcapng stream of capture batches (for Wireshark's extcap FIFO): one Section Header Block, an
 * Interface Description Block per capture interface as it first appears (named as the host names it),
 * then one Enhanced Packet Block per record with its direction in `epb_flags` and, when the record
 * knows the sending process (the module's LOCAL_OUT records), an `opt_comment` naming it.
 *
 * Also the capture filter (CaptureFilterSpec, shared with `icmpcap capture -f` and the UI): the sources
 * apply it in the kernel, and it is applied again on each record's header, so fragments and packets the
 * kernel filter lets through when in doubt are judged the same way whatever the source.
 */
import { readFileSync } from 'node:fs';
import type { CaptureFilterSpec } from '../../../native/index.js';
import { typesForKey } from '../../common/icmp.js';
import { BLOCK, EPB_FLAG_INBOUND, EPB_FLAG_OUTBOUND, OPT, pad4 } from '../files/pcapng-format.js';
import { interfaceDescriptionBlock, sectionHeaderBlock } from '../files/pcapng-write.js';
import { type AddressTerm, parseAddressTerm, termMatches } from '../filter/address.js';
import { Direction, OFF, RECORD_HEADER_SIZE, REC_F_HAS_PID, REC_F_PAD, alignRecord } from '../record.js';

export type { CaptureFilterSpec };

/**
 * Parses the text fields of the extcap dialog into a filter spec. `types`: names or numbers
 * (`echo-request, unreachable, 3`); `hosts`: `[src|dst] ADDRESS[/PREFIX]`, comma-separated (OR-ed).
 * Throws an Error that says what is wrong.
 */
export function filterSpec(opts: {
  families?: string;
  types?: string;
  directions?: string;
  hosts?: string;
}): CaptureFilterSpec {
  const spec: CaptureFilterSpec = {};
  const list = (text: string | undefined): string[] =>
    (text ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  const families = list(opts.families);
  if (families.length) {
    spec.families = families.map((f) => {
      if (f === 'ipv4' || f === '4') return 4;
      if (f === 'ipv6' || f === '6') return 6;
      throw new Error(`families: ${f} is neither ipv4 nor ipv6`);
    });
  }
  const types = list(opts.types);
  if (types.length) {
    spec.typesV4 = [];
    spec.typesV6 = [];
    for (const t of types) {
      if (/^\d+$/.test(t) && Number(t) < 256) {
        spec.typesV4.push(Number(t));
        spec.typesV6.push(Number(t));
        continue;
      }
      const { v4, v6 } = typesForKey(t);
      if (v4 === undefined && v6 === undefined)
        throw new Error(`types: ${t} is not an ICMP type name (e.g. echo-request) or number 0-255`);
      if (v4 !== undefined) spec.typesV4.push(v4);
      if (v6 !== undefined) spec.typesV6.push(v6);
    }
  }
  const directions = list(opts.directions);
  if (directions.length) {
    spec.directions = directions.map((d) => {
      if (d === 'in' || d === 'out' || d === 'forward') return d;
      throw new Error(`directions: ${d} is not in, out or forward`);
    });
  }
  const hosts = list(opts.hosts);
  if (hosts.length) {
    spec.addresses = hosts.map((h) => {
      const m = /^(?:(src|dst)\s+)?(\S+)$/.exec(h);
      const term = m ? parseAddressTerm(m[2]!) : null;
      if (!m || term === null || 'error' in term)
        throw new Error(
          `hosts: ${JSON.stringify(h)} is not [src|dst] ADDRESS[/PREFIX]${term && 'error' in term ? ` (${term.error})` : ''}`,
        );
      return {
        family: term.family,
        address: m[2]!.split('/')[0]!,
        prefixLength: term.prefix,
        side: (m[1] ?? 'any') as 'src' | 'dst' | 'any',
      };
    });
  }
  return spec;
}

/** Per-record test of a filter spec on the record header (fields AND-ed, addresses OR-ed). */
export function recordFilter(spec: CaptureFilterSpec): ((view: DataView, at: number) => boolean) | null {
  const families = spec.families?.length ? new Set(spec.families) : null;
  const v4 = spec.typesV4 ? new Set(spec.typesV4) : null;
  const v6 = spec.typesV6 ? new Set(spec.typesV6) : null;
  const codes = spec.codes?.length ? new Set(spec.codes) : null;
  const dirs = spec.directions?.length
    ? new Set<number>(
        spec.directions.map((d) =>
          d === 'in' ? Direction.In : d === 'out' ? Direction.Out : Direction.Forward,
        ),
      )
    : null;
  const terms: (AddressTerm & { side: 'any' | 'src' | 'dst' })[] = [];
  for (const a of spec.addresses ?? []) {
    const t = parseAddressTerm(`${a.address}/${a.prefixLength}`);
    if (t && !('error' in t)) terms.push({ ...t, side: a.side });
  }
  if (!families && !v4 && !v6 && !codes && !dirs && terms.length === 0) return null;
  return (view, at) => {
    const family = view.getUint8(at + OFF.family) === 6 ? 6 : 4;
    if (families && !families.has(family)) return false;
    const types = family === 6 ? v6 : v4;
    if (types && !types.has(view.getUint8(at + OFF.type))) return false;
    if (codes && !codes.has(view.getUint8(at + OFF.code))) return false;
    if (dirs && !dirs.has(view.getUint8(at + OFF.dir))) return false;
    if (terms.length === 0) return true;
    const bytes = new Uint8Array(view.buffer, view.byteOffset + at);
    const src = bytes.subarray(OFF.saddr, OFF.saddr + 16);
    const dst = bytes.subarray(OFF.daddr, OFF.daddr + 16);
    return terms.some(
      (t) =>
        t.family === family &&
        ((t.side !== 'dst' && termMatches(t, src)) || (t.side !== 'src' && termMatches(t, dst))),
    );
  };
}

/** The name of a running process, for packet comments (null when it is gone or unreadable). */
function processName(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return null;
  }
}

export class PcapngStream {
  private readonly interfaceIds = new Map<number, number>();
  private readonly comments = new Map<number, string>();
  private readonly encoder = new TextEncoder();
  private started = false;

  constructor(
    private readonly write: (bytes: Uint8Array) => void,
    private readonly opts: {
      application: string;
      os?: string;
      snaplen: number;
      ifname: (ifindex: number) => string;
      filter?: ((view: DataView, at: number) => boolean) | null;
    },
  ) {}

  /** Writes the section header (also done by the first batch). */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.write(
      sectionHeaderBlock({
        application: this.opts.application,
        ...(this.opts.os ? { os: this.opts.os } : {}),
      }),
    );
  }

  /** Writes the records of one batch; returns how many passed the filter. */
  append(batch: ArrayBuffer): number {
    this.start();
    const view = new DataView(batch);
    const parts: Uint8Array[] = [];
    let written = 0;
    for (let at = 0; at + 8 <= batch.byteLength;) {
      const len = view.getUint32(at + OFF.len, true);
      const flags = view.getUint16(at + OFF.flags, true);
      if (len < 8 || at + len > batch.byteLength) throw new Error(`bad record length ${len} at byte ${at}`);
      if (
        !(flags & REC_F_PAD) &&
        len >= RECORD_HEADER_SIZE &&
        (!this.opts.filter || this.opts.filter(view, at))
      ) {
        const ifindex = view.getUint32(at + OFF.ifindex, true);
        let id = this.interfaceIds.get(ifindex);
        if (id === undefined) {
          id = this.interfaceIds.size;
          this.interfaceIds.set(ifindex, id);
          parts.push(
            interfaceDescriptionBlock({ name: this.opts.ifname(ifindex), snaplen: this.opts.snaplen }),
          );
        }
        const pid = flags & REC_F_HAS_PID ? view.getUint32(at + OFF.pid, true) : 0;
        parts.push(this.packetBlock(view, at, id, pid > 0 ? this.comment(pid) : null));
        written++;
      }
      at += alignRecord(len);
    }
    if (parts.length) this.write(Buffer.concat(parts));
    return written;
  }

  private comment(pid: number): string {
    let text = this.comments.get(pid);
    if (text === undefined) {
      const name = processName(pid);
      text = name ? `process ${name} (pid ${pid})` : `pid ${pid}`;
      if (this.comments.size > 4096) this.comments.clear();
      this.comments.set(pid, text);
    }
    return text;
  }

  private packetBlock(view: DataView, at: number, interfaceId: number, comment: string | null): Uint8Array {
    const capLen = view.getUint16(at + OFF.capLen, true);
    const dir = view.getUint8(at + OFF.dir);
    const epbFlags = dir === Direction.In ? EPB_FLAG_INBOUND : dir === Direction.Out ? EPB_FLAG_OUTBOUND : 0;
    const text = comment === null ? null : this.encoder.encode(comment);
    const optionBytes = (text ? 4 + pad4(text.length) : 0) + (epbFlags ? 8 : 0);
    const total = 32 + pad4(capLen) + (optionBytes ? optionBytes + 4 : 0);
    const out = new Uint8Array(total);
    const v = new DataView(out.buffer);
    v.setUint32(0, BLOCK.ENHANCED_PACKET, true);
    v.setUint32(4, total, true);
    v.setUint32(8, interfaceId, true);
    // if_tsresol is nanoseconds: the 64-bit timestamp goes high word first.
    v.setUint32(12, view.getUint32(at + OFF.tsNs + 4, true), true);
    v.setUint32(16, view.getUint32(at + OFF.tsNs, true), true);
    v.setUint32(20, capLen, true);
    v.setUint32(24, view.getUint32(at + OFF.origLen, true), true);
    out.set(new Uint8Array(view.buffer, view.byteOffset + at + OFF.data, capLen), 28);
    let p = 28 + pad4(capLen);
    if (text) {
      v.setUint16(p, OPT.COMMENT, true);
      v.setUint16(p + 2, text.length, true);
      out.set(text, p + 4);
      p += 4 + pad4(text.length);
    }
    if (epbFlags) {
      v.setUint16(p, OPT.EPB_FLAGS, true);
      v.setUint16(p + 2, 4, true);
      v.setUint32(p + 4, epbFlags, true);
      p += 8;
    }
    if (optionBytes) p += 4; // opt_endofopt (zeros)
    v.setUint32(p, total, true);
    return out;
  }
}
