// Types of the icmpcap native addon (native/index.js).
//
// Every source delivers batches in the record format of kernel/include/uapi/linux/icmpcap.h:
// records back to back, each at an 8-byte-aligned offset, each a 72-byte header followed by
// cap_len captured bytes starting at the IP header. Little-endian host order for the
// numeric fields (icmp_id and icmp_seq too); addresses in network order.

/** Version of the record/ring ABI this addon was built against (ICMPCAP_ABI_VERSION). */
export const ABI_VERSION: number;
/** Size of the fixed record header (ICMPCAP_RECORD_HDR_SIZE). */
export const RECORD_HEADER_SIZE: 72;
/**
 * Batches a session hands over that may wait in JavaScript at once (delivered and not yet returned by
 * Session.hold): past that its reader leaves records in the kernel ring.
 */
export const MAX_HELD_BATCHES: number;

export type SourceKind = 'module' | 'afpacket';

/**
 * What to capture, applied in the kernel: by the module as its filter attributes, by
 * AF_PACKET as a classic BPF program in icmpcap-helper. Fields are AND-ed; addresses are
 * OR-ed. Fragments that carry no ICMP header (non-first) pass the type and code tests.
 */
export interface CaptureFilterSpec {
  /** Absent or empty: both. */
  families?: (4 | 6)[];
  /** Absent: every ICMPv4 type. */
  typesV4?: number[];
  /** Absent: every ICMPv6 type. */
  typesV6?: number[];
  /** Absent: every code. */
  codes?: number[];
  /** Absent: all. AF_PACKET cannot tell forwarded packets apart: 'forward' alone matches nothing there. */
  directions?: ('in' | 'out' | 'forward')[];
  /** At most 16 rules, OR-ed; bits past prefixLength are ignored. */
  addresses?: { family: 4 | 6; address: string; prefixLength: number; side: 'any' | 'src' | 'dst' }[];
}

export interface OpenConfig {
  source: SourceKind;
  /** Interface names; empty or undefined = all interfaces of the network namespace. */
  interfaces?: string[];
  /** Bytes captured per packet from the IP header on (64..65535). Default 256. */
  snaplen?: number;
  /**
   * Kernel buffer size. afpacket: the TPACKET ring of each socket (64 KiB..1 GiB, default 4 MiB).
   * module: the data area of each per-CPU ring, rounded up to a power of two (4 KiB..64 MiB,
   * default: the module's, 1 MiB).
   */
  ringBytes?: number;
  /** Path of icmpcap-helper; default build/Release/icmpcap-helper next to the .node file. */
  helperPath?: string;
  /**
   * Kept for compatibility: afpacket always captures through icmpcap-helper, which alone
   * holds the packet socket (also when this process has CAP_NET_RAW).
   */
  useHelper?: boolean;
  /** Capture filter, applied in the kernel. Absent: every ICMP and ICMPv6 packet. */
  filter?: CaptureFilterSpec;
  netns?: never;
}

export interface BatchInfo {
  records: number;
  bytes: number;
}

export interface SessionStats {
  source: SourceKind;
  /** Records read from the kernel. */
  captured: number;
  /** Records queued for onBatch (they reach it unless the environment goes away first). */
  delivered: number;
  /** Packets the kernel dropped because our ring was full (PACKET_STATISTICS / ring counters). */
  droppedKernel: number;
  /**
   * Records lost in user space: left in a ring abandoned as corrupt, or in a batch that could
   * not be queued (the environment was going away). captured = delivered + droppedRing once
   * the session has stopped.
   */
  droppedRing: number;
  batches: number;
  /** Times the reader thread woke up; a measure of spinning (a few per batch at most). */
  wakeups: number;
  perCpu?: { cpu: number; captured: number; dropped: number }[];
}

export interface SessionEvent {
  type: 'error' | 'interface-gone' | 'overflow' | 'stopped' | 'info';
  message: string;
  ifindex?: number;
  ifname?: string;
  errno?: string;
}

export interface Session {
  /**
   * Starts the reader thread. onBatch receives a V8-owned ArrayBuffer of whole records.
   * After an 'error' or the last 'interface-gone' the session ends by itself; 'stopped' is
   * always the last event, after the last batch.
   */
  start(onBatch: (batch: ArrayBuffer, info: BatchInfo) => void, onEvent: (ev: SessionEvent) => void): void;
  /** Idempotent; joins the reader thread; remaining records are flushed first. */
  stop(): void;
  stats(): SessionStats;
  /**
   * How many delivered batches the consumer still holds, not yet worked in. They count against
   * the bounded queue to JavaScript (MAX_HELD_BATCHES), so a consumer behind the capture makes the
   * reader leave records in the kernel ring (where a full ring drops and counts them) instead of
   * receiving batches faster than it can take them in. 0 when it has caught up. Throws a
   * TypeError for anything but a whole number of 0 or more.
   */
  hold(batches: number): void;
  /** Releases fd, mapping, thread; idempotent; also done by the finalizer. */
  close(): void;
}

/** Throws a NativeError (code = the errno name; message: the operation and what went wrong). */
export function open(config: OpenConfig): Session;

export interface InterfaceInfo {
  index: number;
  name: string;
  up: boolean;
  running: boolean;
  loopback: boolean;
  mtu: number;
  addresses: { family: 4 | 6; address: string; prefixLength: number }[];
}

/** rtnetlink snapshot of the interfaces of this network namespace, sorted by index. */
export function interfaces(): InterfaceInfo[];

export function watchInterfaces(
  onChange: (ev: { type: 'added' | 'removed' | 'changed'; iface: InterfaceInfo }) => void,
): { close(): void };

/** The kernel's route to one destination, as `ip route get` shows it. */
export interface RouteAnswer {
  /**
   * The route's MTU (RTAX_MTU): the route's own (`ip route add ... mtu N`) or a cached path-MTU
   * exception's (`cache expires ... mtu N`); null: none, the interface's MTU applies.
   */
  mtu: number | null;
  /** The interface the route leaves by; null: none. */
  dev: string | null;
  /** The next hop (RTA_GATEWAY or RTA_VIA); null: the destination is on link (or local). */
  gateway: string | null;
  /** The preferred source address (RTA_PREFSRC); null: none. */
  source: string | null;
}

/**
 * `ip route get DESTINATION` in process (one RTM_GETROUTE request, answered within 1 s), in this
 * process's network namespace: no child process, so no fork of a large process. destination: IPv4
 * or IPv6 text without a zone; anything else throws a TypeError (code 'EINVAL'). Throws a
 * NativeError with the kernel's errno otherwise (code 'ENETUNREACH': no route; 'EHOSTUNREACH',
 * 'EACCES', 'EINVAL': an unreachable, prohibit or blackhole route), op 'route get DESTINATION'.
 */
export function routeGet(destination: string): RouteAnswer;

/** An IPv4 unicast route of the main table. */
export interface Route4 {
  /** The network; '0.0.0.0' for the default route. */
  dst: string;
  prefixLength: number;
  /** The next hop; null: on link, or several next hops (as `ip route` shows them, without a gateway). */
  gateway: string | null;
}

/**
 * The unicast routes of the IPv4 main table (`ip -4 route show table main`, types other than unicast
 * left out), in the kernel's order, through rtnetlink in process. Throws a NativeError.
 */
export function routesV4(): Route4[];

/**
 * What a failure is, for the advice (electron/core/advice.ts): 'module-missing',
 * 'module-permission', 'module-abi', 'module-no-addr-rules', 'helper-missing', 'helper-group',
 * 'helper-not-executable', 'helper-no-capability', 'helper-no-reply', 'helper-version',
 * 'helper-failed', 'no-such-interface', 'no-af-packet', 'too-many-files'.
 */
export type FailureKind = string;

/**
 * What open() and the other calls throw: the message names the operation and the errno and
 * says what went wrong; what to do is electron/core/advice.ts's (from kind and the context).
 */
export interface NativeError extends Error {
  /** The errno name ('EPERM', 'ENODEV', ...); 'EINVAL' for bad arguments. */
  code: string;
  errno?: number;
  /** The failing operation ('open /dev/icmpcap', 'helper socket(AF_PACKET)', ...). */
  op?: string;
  kind?: FailureKind;
  helperPath?: string;
  group?: string;
  device?: string;
}

export interface SourceAvailability {
  source: SourceKind;
  available: boolean;
  /** 'helper' for afpacket (always through icmpcap-helper), 'direct' for the module. */
  via?: 'direct' | 'helper';
  reason?: string;
  kind?: FailureKind;
  helperPath?: string;
  group?: string;
  device?: string;
  /** The advice; filled in by electron/core (advice.ts), never by the addon. */
  fix?: string;
}

export function probe(options?: { helperPath?: string }): SourceAvailability[];

/**
 * Why encodeSpoolBlocks stopped (its return value): 0 every record is encoded; 1 the record at result[0] has
 * an ifindex not in `interfaces` (result[3]: the ifindex); 2 the record at result[0] is shorter than 8 bytes
 * or runs past the batch (result[3]: its length); 3 72 + cap_len is not its length (result[3]: its cap_len);
 * 4 its block does not fit in `out` (result[3]: the block's size); 5 `offsets` has no room for it.
 */
export type SpoolEncodeStatus = 0 | 1 | 2 | 3 | 4 | 5;

/**
 * The capture spool's pcapng Enhanced Packet Blocks (little-endian, epb_flags for in/out) of the records of
 * batch[byteOffset, byteOffset + byteLength) (pad records skipped), written into `out` from `outAt`; stops at
 * the first record it cannot encode and says why. `interfaces`: (ifindex, interface id) pairs sorted by
 * ifindex. offsets[offsetsAt + i] (unless null) gets fileBase + the i-th block's offset in `out`. `result`
 * (4 or more) gets [where it stopped in the batch (relative to byteOffset), where the next block goes in
 * `out`, records encoded, detail]. Throws a TypeError on arguments out of range; never touches memory outside
 * what it was given. With `out` null nothing is written: the layout only (the offsets, the count, and in
 * result[1] where the blocks would end, from `outAt`), with the same checks (never status 4), so that
 * encodeSpoolRuns of the same records and table then writes exactly that many bytes.
 */
export function encodeSpoolBlocks(
  batch: ArrayBuffer,
  byteOffset: number,
  byteLength: number,
  out: Uint8Array | null,
  outAt: number,
  interfaces: Uint32Array,
  offsets: Float64Array | null,
  offsetsAt: number,
  fileBase: number,
  result: Float64Array,
): SpoolEncodeStatus;

/** Records of a batch whose spool blocks encodeSpoolRuns writes: `length` bytes into out[outAt...]. */
export interface SpoolRun {
  batch: ArrayBuffer;
  byteOffset: number;
  byteLength: number;
  /** (ifindex, interface id) pairs sorted by ifindex, as encodeSpoolBlocks takes them. */
  interfaces: Uint32Array;
  out: Uint8Array;
  outAt: number;
  /** The bytes their layout (encodeSpoolBlocks with out null) said. */
  length: number;
}

/**
 * Encodes each run's blocks (as encodeSpoolBlocks) in libuv's thread pool, then calls `done` on the loop,
 * with an Error if a run did not come out as long as its layout said (a bug). Until then the runs' batches,
 * tables and bytes of `out` belong to the pool: nothing may write them, nor read those bytes of `out`.
 * Throws a TypeError on a malformed run (nothing is queued then).
 */
export function encodeSpoolRuns(runs: SpoolRun[], done: (err?: Error) => void): void;

/**
 * Advises the kernel to back the view's bytes with transparent huge pages (madvise MADV_HUGEPAGE over the part
 * of them aligned to a huge page), before they are first touched: one fault then maps 2 MiB, not 4 KiB. Where
 * a page fault is dear (a virtual machine whose host keeps shadow page tables: about 2.7 us a 4 KiB page on
 * this project's machines) a large array's first touch costs hundreds of times less. Returns the bytes
 * advised: 0 when the view holds no whole aligned huge page or the kernel has none to give (THP disabled).
 * Throws a TypeError unless given one typed array.
 */
export function adviseHugePages(view: ArrayBufferView): number;

/** Default path of icmpcap-helper (build/Release next to the addon). */
export function defaultHelperPath(): string;
