/**
 * Which local process an ICMP record belongs to, resolved when the record is ingested:
 * - a record that carries the sender's pid (the module's, REC_F_HAS_PID) names it;
 * - an outgoing echo request is looked up by socket: the ping socket whose local port is its echo
 *   identifier, else the one raw socket that could have sent it (protocol, bound and connected
 *   addresses); socket inode -> pid through /proc/PID/fd where this user may look (else the uid alone);
 * - an ICMP error aimed at this host inherits the process of the local flow it quotes: the echo it quotes
 *   (as above), or the UDP/TCP socket bound to the quoted source port;
 * - a reply inherits its request's process through echo matching (`echoMatched`).
 * Lookups are cached (by family and echo id, or by protocol and port), refreshed on a miss, bounded in
 * size and in rate, so a flood of unknown identifiers costs a few file reads a second, not one per packet.
 * Several candidate sockets, or none, leave the record "unknown": nothing is guessed.
 */
import { decodeError } from '../answers/flows.js';
import { AddressCache } from '../address-cache.js';
import { quotedFlowOf } from './quoted.js';
import { Direction, OFF, REC_F_HAS_ECHO, REC_F_HAS_PID, decodeRecord } from '../record.js';
import { pidsOfInodes, processInfo, type ProcessInfo } from './processes.js';
import { isUnspecified, readSockets, type SocketEntry, type SocketTable } from './sockets.js';
import { PROC_UNKNOWN, ProcColumn, ProcessTable } from './table.js';
import { ProcessSummary } from './summary.js';
import { LiveProcessSummary } from './summary-live.js';
import type { ProcessSummaryRow } from '../../common/contract.js';
import type { Ingestor } from '../ingest.js';
import { CHUNK_MASK, type RecordStore } from '../store.js';

/** How long a resolved (family, id) or port keeps its process after its last use. */
const HIT_TTL_MS = 5_000;
/** How long an identifier no socket was found for is not looked up again. */
const MISS_TTL_MS = 1_000;
const CACHE_MAX = 4096;
/** Socket-table lookups allowed per second (each reads a /proc/net file and may walk /proc/*\/fd). */
const LOOKUPS_PER_SECOND = 50;

interface Cached {
  proc: number;
  at: number;
}

/** How the lookups went: `resolved` found the process (pid), `uidOnly` only its owner, `missed` nothing. */
export interface AttributionStats {
  lookups: number;
  resolved: number;
  uidOnly: number;
  missed: number;
  limited: number;
}

const V4_ERRORS = new Set([3, 4, 5, 11, 12]);
const V6_ERRORS = new Set([1, 2, 3, 4]);

/** Whether a record of this family, type and direction can be attributed at ingest (cheap, per record). */
export function wantsProcess(family: number, type: number, dir: number, flags: number): boolean {
  if (flags & REC_F_HAS_PID) return true;
  if (dir === Direction.Out) return family === 6 ? type === 128 : type === 8;
  if (dir === Direction.In) return family === 6 ? V6_ERRORS.has(type) : V4_ERRORS.has(type);
  return false;
}

export class ProcAttribution {
  readonly processes = new ProcessTable();
  readonly column = new ProcColumn();
  /** The per-process summary the service answers `procs.summary` with, kept up to date as it is asked. */
  readonly summary = new LiveProcessSummary(this.column, this.processes);
  /** The text of an address an error quotes (looked up by its bytes; formatted once). */
  private readonly addressText = new AddressCache().text;
  readonly stats: AttributionStats = { lookups: 0, resolved: 0, uidOnly: 0, missed: 0, limited: 0 };
  /** Ports' answers by protocol, family, port and peer. */
  private readonly cache = new Map<string, Cached>();
  /** Echo identifiers' answers by family and identifier (`echoKey`): a number, no key string per record. */
  private readonly echoes = new Map<number, Cached>();
  /** The clock, read once a batch (beginBatch). */
  private t: number;
  private readonly byPid = new Map<number, Cached>();
  private windowStart = 0;
  private windowLookups = 0;
  private readonly root = process.getuid?.() === 0;

  constructor(private readonly now: () => number = () => performance.now()) {
    this.t = now();
  }

  /**
   * Attributes record `index` (at `o` in `view`), whose source and destination are `text[src]`, `text[dst]`
   * (read only on a cache miss: formatting or even fetching them for every outgoing echo costs more than the
   * rest of its ingest). Call `beginBatch` first: the cache's clock is read once a batch.
   */
  attribute(
    index: number,
    view: DataView,
    o: number,
    text: readonly string[],
    src: number,
    dst: number,
  ): void {
    const flags = view.getUint16(o + OFF.flags, true);
    const family = view.getUint8(o + OFF.family) === 6 ? 6 : 4;
    const dir = view.getUint8(o + OFF.dir);
    let proc = PROC_UNKNOWN;
    if (flags & REC_F_HAS_PID) {
      proc = this.forPid(view.getUint32(o + OFF.pid, true));
    } else if (dir === Direction.Out) {
      if (flags & REC_F_HAS_ECHO) {
        const id = view.getUint16(o + OFF.id, true);
        proc =
          this.fresh(this.echoes, echoKey(family, id)) ?? this.forEcho(family, id, text[src]!, text[dst]!);
      }
    } else if (dir === Direction.In) {
      proc = this.forError(view, o);
    }
    if (proc !== PROC_UNKNOWN) this.column.set(index, proc);
  }

  /** Reads the clock for the records of a batch (the cache's times are seconds; one read is enough). */
  beginBatch(): void {
    this.t = this.now();
  }

  /** Echo matching found `replyIndex` answers `requestIndex`: the reply goes to the same process. */
  echoMatched(requestIndex: number, replyIndex: number): void {
    const proc = this.column.get(requestIndex);
    if (proc !== PROC_UNKNOWN) this.column.set(replyIndex, proc);
  }

  processOf(index: number): ProcessInfo | null {
    return this.processes.get(this.column.get(index));
  }

  clear(): void {
    this.summary.clear();
    this.column.clear();
    this.processes.clear();
    this.cache.clear();
    this.echoes.clear();
    this.byPid.clear();
  }

  private forPid(pid: number): number {
    const t = this.t;
    const hit = this.byPid.get(pid);
    if (hit && t - hit.at < HIT_TTL_MS) return hit.proc;
    const proc = this.processes.intern(processInfo(pid));
    remember(this.byPid, pid, { proc, at: t });
    return proc;
  }

  private forError(view: DataView, o: number): number {
    // The usual shapes straight from the bytes; decodeError (every field of the packet) for the rest.
    const flow = quotedFlowOf(view, o);
    if (flow === undefined) return this.forDecodedError(view, o);
    if (flow === null) return PROC_UNKNOWN;
    const { family, bytes } = flow;
    const text = this.addressText;
    if ((flow.protocol === 'icmp' || flow.protocol === 'icmpv6') && flow.echoId !== null)
      return (
        this.fresh(this.echoes, echoKey(family, flow.echoId)) ??
        this.forEcho(family, flow.echoId, text(bytes, flow.srcAt, family), text(bytes, flow.dstAt, family))
      );
    if ((flow.protocol === 'udp' || flow.protocol === 'tcp') && flow.srcPort !== null)
      return this.forPort(
        flow.protocol,
        family,
        flow.srcPort,
        text(bytes, flow.srcAt, family),
        text(bytes, flow.dstAt, family),
        flow.dstPort,
      );
    return PROC_UNKNOWN;
  }

  /** An error of a shape quotedFlowOf does not read, decoded whole. */
  private forDecodedError(view: DataView, o: number): number {
    const record = decodeRecord(view, o);
    const flow = decodeError(record)?.flow;
    // Only errors about what this host sent: the quoted source is the address the error was sent to.
    if (!flow || flow.src !== record.dst) return PROC_UNKNOWN;
    if ((flow.protocol === 'icmp' || flow.protocol === 'icmpv6') && flow.echoId !== null)
      return (
        this.fresh(this.echoes, echoKey(flow.family, flow.echoId)) ??
        this.forEcho(flow.family, flow.echoId, flow.src, flow.dst)
      );
    if ((flow.protocol === 'udp' || flow.protocol === 'tcp') && flow.srcPort !== null)
      return this.forPort(flow.protocol, flow.family, flow.srcPort, flow.src, flow.dst, flow.dstPort);
    return PROC_UNKNOWN;
  }

  /** The process of an echo request with identifier `id` from `src` to `dst` (after `fresh` missed). */
  private forEcho(family: 4 | 6, id: number, src: string, dst: string): number {
    return this.lookup(this.echoes, echoKey(family, id), () => {
      const local = (s: SocketEntry): boolean => isUnspecified(s.local) || s.local === src;
      const ping = readSockets('icmp', family).filter((s) => s.localPort === id && local(s));
      if (ping.length > 0) return ping;
      const proto = family === 6 ? 58 : 1;
      return readSockets('raw', family).filter(
        (s) =>
          (s.localPort === proto || s.localPort === 255) &&
          local(s) &&
          (isUnspecified(s.remote) || s.remote === dst),
      );
    });
  }

  /** The process of the UDP/TCP socket bound to local `port` that sent to `dst`:`dstPort`. */
  private forPort(
    table: SocketTable,
    family: 4 | 6,
    port: number,
    src: string,
    dst: string,
    dstPort: number | null,
  ): number {
    const key = `${table}${family}:${port}:${dst}:${dstPort}`;
    return (
      this.fresh(this.cache, key) ??
      this.lookup(this.cache, key, () => {
        const bound = readSockets(table, family).filter(
          (s) => s.localPort === port && (isUnspecified(s.local) || s.local === src),
        );
        const connected = bound.filter((s) => s.remote === dst && s.remotePort === dstPort);
        if (connected.length > 0) return connected;
        return bound.filter((s) => isUnspecified(s.remote));
      })
    );
  }

  /** The cached answer for `key` while it holds (a process for HIT_TTL_MS after its last use, none for
   * MISS_TTL_MS), else undefined: look it up. */
  private fresh<K>(map: Map<K, Cached>, key: K): number | undefined {
    const hit = map.get(key);
    if (hit === undefined) return undefined;
    const t = this.t;
    if (hit.proc !== PROC_UNKNOWN) {
      if (t - hit.at >= HIT_TTL_MS) return undefined;
      hit.at = t;
      return hit.proc;
    }
    return t - hit.at < MISS_TTL_MS ? PROC_UNKNOWN : undefined;
  }

  /** Looks `key` up in the sockets (at most LOOKUPS_PER_SECOND a second) and caches the answer. */
  private lookup<K>(map: Map<K, Cached>, key: K, candidates: () => SocketEntry[]): number {
    const t = this.t;
    if (t - this.windowStart >= 1000) {
      this.windowStart = t;
      this.windowLookups = 0;
    }
    if (this.windowLookups >= LOOKUPS_PER_SECOND) {
      this.stats.limited++;
      return PROC_UNKNOWN;
    }
    this.windowLookups++;
    this.stats.lookups++;
    const proc = this.resolve(candidates());
    remember(map, key, { proc, at: t });
    return proc;
  }

  /** One socket: its process (or its owner's uid); none or several: unknown. */
  private resolve(sockets: SocketEntry[]): number {
    if (sockets.length !== 1) {
      this.stats.missed++;
      return PROC_UNKNOWN;
    }
    const socket = sockets[0]!;
    const wanted = new Set([socket.inode]);
    let pid = pidsOfInodes(wanted, socket.uid).get(socket.inode);
    // A process may hold a socket another uid created (made before a setuid); root can look everywhere.
    if (pid === undefined && this.root) pid = pidsOfInodes(wanted, null).get(socket.inode);
    if (pid === undefined) {
      this.stats.uidOnly++;
      return this.processes.intern({ pid: null, name: null, uid: socket.uid, cgroup: null });
    }
    this.stats.resolved++;
    return this.processes.intern(processInfo(pid, socket.uid));
  }
}

/** An echo identifier's key in the cache: family and identifier as one number. */
function echoKey(family: 4 | 6, id: number): number {
  return family === 6 ? 65536 + id : id;
}

function remember<K>(map: Map<K, Cached>, key: K, value: Cached): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > CACHE_MAX) map.delete(map.keys().next().value as K);
}

/** The per-process summary of the records in the index (only the chunks that hold attributed records). */
/**
 * The per-process summary recounted over every live record at once (the reference LiveProcessSummary is
 * checked against; the service answers with `attribution.summary`, which never recounts a full chunk).
 */
export function processSummary(
  store: RecordStore,
  ingestor: Ingestor,
  attribution: ProcAttribution,
): ProcessSummaryRow[] {
  const summary = new ProcessSummary();
  const base = store.baseNs ?? 0n;
  const addresses = ingestor.addresses.text;
  attribution.column.forEachKnown(store.firstIndex, store.length, (index, proc) => {
    const c = store.chunkOf(index);
    const i = index & CHUNK_MASK;
    const meta = c.meta[i]!;
    const dir = (meta >>> 16) & 3;
    summary.add({
      proc: attribution.processes.get(proc),
      dir,
      family: meta >>> 24 === 6 ? 6 : 4,
      type: meta & 0xff,
      peer: addresses[dir === Direction.Out ? c.dst[i]! : c.src[i]!]!,
      tsNs: base + BigInt(c.tsRel[i]!),
    });
  });
  return summary.rows();
}
