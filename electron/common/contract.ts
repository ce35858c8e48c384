/**
 * The one contract between the renderer and the capture service. Electron IPC (electron/main +
 * electron/preload) and the WebSocket server (browser mode) both carry exactly these requests and
 * events; the renderer cannot tell them apart. Every request is validated with these schemas where it
 * enters the service, whatever the transport.
 */
import { z } from 'zod';
import type { CaptureFilterSpec } from './capture-filter.js';
import { EXPORT_FORMATS, SORT_COLUMNS, type SortColumn } from './constants.js';
import { InsightRequestSchemas, type InsightEvents, type InsightResults } from './insights.js';

export { EXPORT_FORMATS, SORT_COLUMNS, type ExportFormat, type SortColumn } from './constants.js';

export const SourceKindSchema = z.enum(['module', 'afpacket']);
export type SourceKind = z.infer<typeof SourceKindSchema>;

const InterfaceName = z
  .string()
  .min(1)
  .max(15)
  .regex(/^[^\s/:]+$/, 'an interface name has no spaces, slashes or colons');

/**
 * A ring-buffer limit (as dumpcap's ring of files): keep about the newest `records` records and/or the
 * records of the last `seconds` of capture time; older ones are dropped in units of about 1/8 of the
 * limit (electron/core/ring.ts). Record numbers keep counting.
 */
export const RingLimitSchema = z
  .object({
    /** At least 2 chunks of 65536; at most 2^31 - 2^17. */
    records: z
      .number()
      .int()
      .min(2 * 65536)
      .max(2 ** 31 - 2 ** 17)
      .optional(),
    /** Capture time, at least 10 s. */
    seconds: z.number().min(10).max(1e9).optional(),
  })
  .strict();
export type RingLimit = z.infer<typeof RingLimitSchema>;

/** electron/common/capture-filter.ts, validated: the kernel-side filter of a capture (`capture -f`). */
export const CaptureFilterSpecSchema = z
  .object({
    families: z
      .array(z.union([z.literal(4), z.literal(6)]))
      .max(2)
      .optional(),
    typesV4: z.array(z.number().int().min(0).max(255)).max(256).optional(),
    typesV6: z.array(z.number().int().min(0).max(255)).max(256).optional(),
    codes: z.array(z.number().int().min(0).max(255)).max(256).optional(),
    directions: z
      .array(z.enum(['in', 'out', 'forward']))
      .max(3)
      .optional(),
    addresses: z
      .array(
        z
          .object({
            family: z.union([z.literal(4), z.literal(6)]),
            address: z.string().min(2).max(64),
            prefixLength: z.number().int().min(0).max(128),
            side: z.enum(['any', 'src', 'dst']),
          })
          .strict(),
      )
      .max(64)
      .optional(),
  })
  .strict() satisfies z.ZodType<CaptureFilterSpec>;

export const StartParamsSchema = z
  .object({
    source: z.union([SourceKindSchema, z.literal('auto')]).default('auto'),
    interfaces: z.array(InterfaceName).max(64).default([]),
    snaplen: z.number().int().min(64).max(65535).default(256),
    /** Ring-buffer limit (default: none, the capture grows until stopped). */
    limit: RingLimitSchema.optional(),
    /** Filter applied in the kernel (default: every ICMP and ICMPv6 packet). */
    filter: CaptureFilterSpecSchema.optional(),
    /**
     * The kernel buffer (tshark's -B, in bytes here): all of the capture's kernel rings together, split over the
     * module's per-CPU rings or AF_PACKET's sockets (electron/core/kernel-buffer.ts). Default: chosen for the
     * source. What a source takes depends on the machine: outside it, capture.start fails with 'bad-request'.
     */
    bufferBytes: z
      .number()
      .int()
      .min(2 ** 20)
      .max(2 ** 40)
      .optional(),
  })
  .strict();
export type StartParams = z.input<typeof StartParamsSchema>;

export const RowsParamsSchema = z
  .object({
    start: z.number().int().min(0),
    count: z.number().int().min(0).max(2000),
  })
  .strict();

export const FilterParamsSchema = z.object({ filter: z.string().max(4096) }).strict();

export const SortColumnSchema = z.enum(SORT_COLUMNS);
export const SortParamsSchema = z
  .object({ column: SortColumnSchema.nullable(), descending: z.boolean().default(false) })
  .strict();

/** Record numbers are below 2^32 (store.ts MAX_RECORDS): the bound keeps requests within wire.ts's limit. */
const RecordNo = z
  .number()
  .int()
  .min(1)
  .max(2 ** 32);
export const RecordParamsSchema = z.object({ no: RecordNo }).strict();

export const ExportFormatSchema = z.enum(EXPORT_FORMATS);
const FilePath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => p.startsWith('/') && !p.includes('\0'), 'give an absolute path');
export const ExportParamsSchema = z
  .object({
    format: ExportFormatSchema,
    /** all records, the current filtered and sorted view, or the listed record numbers */
    scope: z.enum(['all', 'view', 'selected']),
    nos: z.array(RecordNo).max(1_000_000).optional(),
    path: FilePath,
    /** Replace the file when it exists (the UI asks first); without it an existing file is an error 'file-exists'. */
    overwrite: z.boolean().optional(),
  })
  .strict()
  .refine((p) => p.scope !== 'selected' || (p.nos !== undefined && p.nos.length > 0), {
    message: 'scope "selected" needs the record numbers in "nos"',
    path: ['nos'],
  });
export const OpenFileParamsSchema = z.object({ path: FilePath }).strict();
export const JobParamsSchema = z.object({ id: z.number().int().min(1) }).strict();
export const PeerSeriesParamsSchema = z
  .object({
    /** Flows (`requester>responder`, PeerStats.flow) or peer addresses. */
    peers: z.array(z.string().min(1).max(130)).min(1).max(16),
    maxPoints: z.number().int().min(2).max(10_000).default(2000),
  })
  .strict();

const SpoolId = z
  .string()
  .regex(/^(\d{8}-\d{6}-\d+|latest)$/, 'a spool id as spool.list gives it (or "latest")');
/** Opens a leftover spool as the current capture (as a file is opened); no path crosses the contract. */
export const SpoolOpenParamsSchema = z.object({ id: SpoolId }).strict();
export const SpoolCleanParamsSchema = z.object({ id: SpoolId.optional() }).strict();

const Empty = z.object({}).strict().default({});

/** Request name -> params schema. The result types are in `Results`. */
export const RequestSchemas = {
  hello: Empty,
  'capture.start': StartParamsSchema,
  'capture.stop': Empty,
  'capture.pause': Empty,
  'capture.resume': Empty,
  'capture.clear': Empty,
  'view.setFilter': FilterParamsSchema,
  'view.setSort': SortParamsSchema,
  /** Stops a sort under way (view.setSort rejects); the view keeps the order it had. */
  'view.cancelSort': Empty,
  'view.rows': RowsParamsSchema,
  'view.positionOf': RecordParamsSchema,
  'filter.check': FilterParamsSchema,
  'record.details': RecordParamsSchema,
  'stats.get': Empty,
  'stats.peerSeries': PeerSeriesParamsSchema,
  'file.open': OpenFileParamsSchema,
  'export.start': ExportParamsSchema,
  'job.cancel': JobParamsSchema,
  'interfaces.list': Empty,
  'sources.probe': Empty,
  /** Captures left behind by icmpcap processes that ended without cleaning up (crash, kill -9). */
  'spool.list': Empty,
  /** Opens one of them as the current capture (a job, kind 'open'); then export it as any capture. */
  'spool.open': SpoolOpenParamsSchema,
  /** Removes one of them, or all. */
  'spool.clean': SpoolCleanParamsSchema,
  /** Problems, Paths, Neighbours and Alerts (./insights.ts). */
  ...InsightRequestSchemas,
  /** Which local processes sent or received ICMP in this capture (live captures only). */
  'procs.summary': Empty,
} as const;

/**
 * A file name in the capture folder (browser mode): one plain name, no folders, nothing hidden.
 */
const FolderFileName = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[^/\0]+$/, 'a file name in the capture folder, without folders')
  .refine((n) => !n.startsWith('.'), 'a file name in the capture folder, without folders');

/**
 * Where a page opens a file from. A page never names a path on the service's machine: in the Electron
 * window the user picks one in the native dialog (or a recent one); in a browser, the user uploads it or
 * picks it in the one capture folder the service was given (`icmpcap serve --captures DIR`).
 */
export const OpenRequestSchema = z.discriminatedUnion('from', [
  z.object({ from: z.literal('dialog') }).strict(),
  z.object({ from: z.literal('recent'), key: z.string().min(1).max(64) }).strict(),
  z.object({ from: z.literal('folder'), name: FolderFileName }).strict(),
  z.object({ from: z.literal('upload'), upload: z.string().regex(/^[A-Za-z0-9_-]{16,64}$/) }).strict(),
]);
export type OpenRequest = z.infer<typeof OpenRequestSchema>;

/**
 * An export as a page asks for it: no path. The Electron window asks where in the native save dialog;
 * a browser gets the file as a download (GET /download/<job id> with the token in the header).
 */
export const ExportRequestSchema = z
  .object({
    format: ExportFormatSchema,
    scope: z.enum(['all', 'view', 'selected']),
    nos: z.array(RecordNo).max(1_000_000).optional(),
  })
  .strict()
  .refine((p) => p.scope !== 'selected' || (p.nos !== undefined && p.nos.length > 0), {
    message: 'scope "selected" needs the record numbers in "nos"',
    path: ['nos'],
  });
export type ExportRequest = z.infer<typeof ExportRequestSchema>;

/**
 * Remote agents (electron/core/remote): other `icmpcap serve` hosts the local service connects to on the
 * page's behalf (a page cannot trust a self-signed certificate). The token goes in once, with hosts.add,
 * and never comes back to a page.
 */
export const HostIdSchema = z.string().regex(/^h[0-9]{1,6}$/, 'a host id as hosts.list gives it');
export const HostsAddParamsSchema = z
  .object({
    /** https://HOST:PORT/ (http:// only for a loopback agent, or with allowInsecure). */
    url: z.string().min(8).max(2048),
    token: z
      .string()
      .min(16)
      .max(256)
      .regex(/^[A-Za-z0-9_-]+$/, 'a token as `icmpcap serve` prints it (after #token=)'),
    name: z
      .string()
      .min(1)
      .max(64)
      .refine(
        (n) => ![...n].some((c) => c < ' ' || c === '<' || c === '>'),
        'a name without control characters or angle brackets',
      )
      .optional(),
    /** Plain http:// to an agent beyond loopback: the token and the capture travel unencrypted. */
    allowInsecure: z.boolean().optional(),
  })
  .strict();
export type HostsAddParams = z.input<typeof HostsAddParamsSchema>;
export const HostRefParamsSchema = z.object({ host: HostIdSchema }).strict();
/** Accepts a changed certificate: the fingerprint the host presents now, as the refusal showed it. */
export const HostsTrustParamsSchema = z
  .object({ host: HostIdSchema, fingerprint: z.string().regex(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/) })
  .strict();
/** One request to a remote host's own service (the same contract, minus files: those stay on that host). */
export const HostsRequestParamsSchema = z
  .object({ host: HostIdSchema, method: z.string().min(1).max(64), params: z.unknown().optional() })
  .strict();

export const HostsRequestSchemas = {
  'hosts.list': Empty,
  'hosts.add': HostsAddParamsSchema,
  'hosts.remove': HostRefParamsSchema,
  'hosts.trust': HostsTrustParamsSchema,
  'hosts.request': HostsRequestParamsSchema,
} as const;
export type HostsRequestName = keyof typeof HostsRequestSchemas;

export function isHostsRequestName(name: unknown): name is HostsRequestName {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(HostsRequestSchemas, name);
}

/** A remote host as a page sees it: never its token. */
export interface HostInfo {
  id: string;
  name: string;
  /** The agent's address, without token. */
  url: string;
  /**
   * connecting: first attempt; connected; unreachable: lost or never reached, retrying with backoff;
   * refused: it will not retry by itself (changed certificate, wrong token): `message` says what to do.
   */
  state: 'connecting' | 'connected' | 'unreachable' | 'refused';
  /** When the host was last lost (ms since the epoch), while it is not connected; null otherwise. */
  unreachableSinceMs: number | null;
  /** When unreachable: when the next attempt starts. */
  retryAtMs: number | null;
  /** Why it is not connected, and what to do. */
  message: string | null;
  /** The pinned SHA-256 certificate fingerprint (https), else null. */
  fingerprint: string | null;
  /** A changed certificate: the fingerprint the host presents now (accept it with hosts.trust). */
  presentedFingerprint?: string;
  /** The remote service's version, once connected. */
  version?: string;
  /** Connections made so far: a reconnect raises it (pages reload that host's view). */
  generation: number;
}

/** An event of a remote host's service, relayed. */
export interface HostEvent {
  host: string;
  event: EventName;
  data: unknown;
}

/**
 * The requests a page (renderer) sends, over either transport. The same as the service's, except that
 * file requests never carry a path (the transports turn them into paths: electron/main/dialogs.ts,
 * electron/core/web/page-files.ts), and `files.list` says how this page picks files.
 */
export const PageRequestSchemas = {
  ...RequestSchemas,
  'export.start': ExportRequestSchema,
  'file.open': OpenRequestSchema,
  'files.list': Empty,
  ...HostsRequestSchemas,
} as const;
export type PageRequestName = keyof typeof PageRequestSchemas;
export type PageRequestParams<M extends PageRequestName> = z.input<(typeof PageRequestSchemas)[M]>;

export function isPageRequestName(name: unknown): name is PageRequestName {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(PageRequestSchemas, name);
}

/** How this page picks files, and what it can pick from. */
export interface FileChoices {
  /** 'dialog': the Electron window's native dialogs; 'browser': downloads, uploads, the capture folder. */
  mode: 'dialog' | 'browser';
  /** Capture files in the service's capture folder, newest first (browser mode with --captures), or null. */
  folder: { name: string; bytes: number; modifiedMs: number }[] | null;
  /** Recently opened files, newest first (Electron). */
  recent: { key: string; name: string; folder: string }[];
  /** The folder the next dialog starts in (Electron). */
  lastFolder: string | null;
  /** The largest upload the service takes, in bytes (browser mode). */
  maxUploadBytes: number | null;
}

export type RequestName = keyof typeof RequestSchemas;
export type RequestParams<M extends RequestName> = z.input<(typeof RequestSchemas)[M]>;
export const REQUEST_NAMES = Object.keys(RequestSchemas) as RequestName[];

export function isRequestName(name: unknown): name is RequestName {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(RequestSchemas, name);
}

export interface SourceAvailability {
  source: SourceKind;
  available: boolean;
  via?: 'direct' | 'helper';
  reason?: string;
  fix?: string;
}

export interface InterfaceInfo {
  index: number;
  name: string;
  up: boolean;
  running: boolean;
  loopback: boolean;
  mtu: number;
  addresses: { family: 4 | 6; address: string; prefixLength: number }[];
}

export type CaptureStateName = 'idle' | 'starting' | 'running' | 'paused' | 'stopped' | 'error';

export interface CaptureState {
  state: CaptureStateName;
  /** 'file' when the records come from an opened capture file. */
  source?: SourceKind | 'file';
  /** The opened file, when source is 'file'. */
  file?: string;
  interfaces: string[];
  startedAtMs?: number;
  stoppedAtMs?: number;
  /** What went wrong and what to do, when state is 'error' or a capture ended by itself. */
  message?: string;
  /** The ring-buffer limit of this capture ("keeping the newest N"), when it has one. */
  limit?: RingLimit;
  /** Records dropped by the limit so far (the first live record is number evicted + 1). */
  evicted?: number;
}

/**
 * What the table flags on a record the dissector cannot fully decode (it is still exported byte for byte):
 * an IP fragment; a later fragment (no ICMP header: type and code are 0 and mean nothing); a packet that
 * ends before a whole ICMP header; fewer bytes captured than sent (snap length); a wrong ICMP checksum.
 */
export const RECORD_FLAGS = ['fragment', 'not-first', 'short', 'truncated', 'bad-checksum'] as const;
export type RecordFlag = (typeof RECORD_FLAGS)[number];

/** One row of the table, as the renderer shows it. Times are ns since the epoch, as strings (64-bit). */
export interface Row {
  no: number;
  tsNs: string;
  dir: 'in' | 'out' | 'fwd' | '?';
  iface: string;
  family: 4 | 6;
  src: string;
  dst: string;
  type: number;
  code: number;
  id: number | null;
  seq: number | null;
  ttl: number;
  len: number;
  rttMs: number | null;
  /** Present when the record has any (RECORD_FLAGS order). */
  flags?: RecordFlag[];
  /** An echo request that got no reply within the timeout (Wireshark's "no response found"). */
  noResponse?: true;
  /** Echo request: the record number of its reply (Wireshark's "reply in"). */
  replyIn?: number;
  /** Echo reply: the record number of its request ("request in"). */
  requestIn?: number;
  /** One-line summary, as Wireshark's Info column (electron/common/info.ts). */
  info?: string;
  /** The local process the record belongs to, when known (fields unknown to it are null). */
  proc?: RowProcess;
}

export interface RowProcess {
  pid: number | null;
  name: string | null;
  uid: number | null;
  cgroup: string | null;
}

export interface Counts {
  /** Live records (with a ring-buffer limit, those not yet dropped). */
  total: number;
  /** Records dropped by the ring-buffer limit so far (0 without one; absent from older services). */
  evicted?: number;
  view: number;
  /** The filter the view applies ('' for none). */
  filter: string;
  /** The sort the view applies (column null: record order). */
  sort: { column: SortColumn | null; descending: boolean };
  /** Records per second over the last second. */
  rate: number;
  droppedKernel: number;
  droppedRing: number;
  firstTsNs: string | null;
}

export interface RowsResult {
  start: number;
  rows: Row[];
  view: number;
}

export interface FilterResult {
  view: number;
  /** The filter as applied ('' for none). */
  filter: string;
  /** How long applying it took, in ms. */
  ms: number;
}

export interface FilterCheck {
  ok: true;
  /** Set when the filter reads packet bytes record by record (slower than the index): why. */
  slow?: string;
}

/** A sort the service is applying (view.setSort): at its start, then as it goes, and fraction 1 at its end. */
export interface SortProgress {
  column: SortColumn | null;
  descending: boolean;
  /** 0 at the start, 1 when done (or stopped: replaced, cancelled). */
  fraction: number;
}

/** A filter the service is applying: what makes it slow (if anything) and how far it has got. */
export interface FilterProgress {
  filter: string;
  /** 0 at the start, 1 when done. */
  fraction: number;
  slow?: string;
}

export interface ViewResult {
  view: number;
}

export interface PositionResult {
  /** Position of the record in the current view (0-based), or null when the filter hides it. */
  position: number | null;
}

export interface RecordDetails {
  row: Row;
  /** Captured bytes from the IP header on, hex encoded (two characters a byte). */
  bytesHex: string;
  origLen: number;
  capLen: number;
  /** Where it was seen: prerouting, local-in, forward, local-out, postrouting, or none (AF_PACKET, file). */
  hook: string;
  /** Full-precision timestamp, ns since the epoch. */
  tsNs: string;
}

/** Echo statistics of one peer: requests matched to replies by addresses, id and sequence. */
export interface PeerStats {
  /** The flow: `requester>responder` (one entry per pair; stats.peerSeries takes it). */
  flow: string;
  /** The remote address. */
  peer: string;
  /** The local address that talked to it (or the requester, when direction is unknown). */
  local: string;
  family: 4 | 6;
  /** 'out' when we pinged the peer, 'in' when the peer pinged us. */
  role: 'out' | 'in' | 'unknown';
  requests: number;
  replies: number;
  /** Requests with no reply within the timeout. */
  lost: number;
  /** lost / (requests whose timeout has passed), 0..1. */
  loss: number;
  duplicates: number;
  /** Replies that came after the timeout (counted as lost too, as ping does). */
  late: number;
  rttMinMs: number | null;
  rttAvgMs: number | null;
  rttMaxMs: number | null;
  rttP95Ms: number | null;
  /** Mean absolute difference of consecutive RTTs (RFC 3550 style), ms. */
  jitterMs: number | null;
  lastSeenNs: string;
  /** The last RTTs (ms), oldest first, for a sparkline. */
  spark: number[];
}

export type MessageKindName = 'echo' | 'error' | 'nd' | 'other';

export interface Aggregates {
  total: number;
  /** Records per second over the last second. */
  rate: number;
  droppedKernel: number;
  droppedRing: number;
  byKind: Record<MessageKindName, number>;
  byDir: { in: number; out: number; fwd: number; unknown: number };
  byTypeCode: { family: 4 | 6; type: number; code: number; count: number }[];
  /** Top addresses by packets (as source or destination). */
  topTalkers: { address: string; packets: number; bytes: number }[];
  /** Peers with echo traffic, most requests first (at most 200). */
  peers: PeerStats[];
  /** Packets per second by kind, one point a second, the last 300 seconds. tSec is seconds since the epoch. */
  series: { tSec: number[] } & Record<MessageKindName, number[]>;
  /**
   * Peers no longer listed, summed: with a ring-buffer limit, those whose records all left it (and that can
   * no longer be answered); beyond 10,000 peers, the least recently seen. Absent when there are none.
   */
  evictedPeers?: {
    peers: number;
    requests: number;
    replies: number;
    lost: number;
    duplicates: number;
    late: number;
  };
}

export interface PeerSeries {
  peer: string;
  /** Reply times (ms since the epoch) and RTTs (ms). */
  tMs: number[];
  rttMs: number[];
  /** When the flow's last (up to 512) lost requests were sent, ms since the epoch, oldest first. */
  lostTMs?: number[];
}

export interface JobStarted {
  id: number;
}

/** The user closed the native dialog without choosing (Electron). */
export interface DialogCancelled {
  id: null;
}

export interface Job {
  id: number;
  kind: 'export' | 'open';
  state: 'running' | 'done' | 'cancelled' | 'error';
  /** Records (export) or bytes (open) done so far, and the total when known. */
  done: number;
  total: number | null;
  /** What the job wrote or read. */
  path: string;
  /** On 'done': a summary (records written, records read and skipped). On 'error': what went wrong and what to do. */
  message?: string;
}

/** A capture left behind by an icmpcap process that did not end cleanly (see `icmpcap spool`). */
export interface LeftoverSpoolInfo {
  id: string;
  startedAtMs: number;
  packets: number;
  bytes: number;
}

export interface Hello {
  version: string;
  transport: 'ipc' | 'websocket';
  state: CaptureState;
  counts: Counts;
  sources: SourceAvailability[];
  interfaces: InterfaceInfo[];
  /**
   * The jobs running and the last few to finish (their latest state): a page that was disconnected when one
   * ended learns its end here. Absent from an agent of an older version.
   */
  jobs?: Job[];
}

export interface Results extends InsightResults {
  hello: Hello;
  'capture.start': CaptureState;
  'capture.stop': CaptureState;
  'capture.pause': CaptureState;
  'capture.resume': CaptureState;
  'capture.clear': Counts;
  'view.setFilter': FilterResult;
  'view.setSort': ViewResult;
  'view.cancelSort': { cancelled: boolean };
  'view.rows': RowsResult;
  'view.positionOf': PositionResult;
  'filter.check': FilterCheck;
  'record.details': RecordDetails;
  'stats.get': Aggregates;
  'stats.peerSeries': PeerSeries[];
  'file.open': JobStarted | DialogCancelled;
  'export.start': JobStarted | DialogCancelled;
  'files.list': FileChoices;
  'job.cancel': Job;
  'interfaces.list': InterfaceInfo[];
  'sources.probe': SourceAvailability[];
  'spool.list': LeftoverSpoolInfo[];
  'spool.open': JobStarted;
  'spool.clean': { removed: string[] };
  'procs.summary': ProcessSummaryRow[];
  'hosts.list': HostInfo[];
  'hosts.add': HostInfo;
  'hosts.remove': { removed: string };
  'hosts.trust': HostInfo;
  'hosts.request': unknown;
}

/** One local process's ICMP in the capture; the line with pid, name and uid all null is "unknown". */
export interface ProcessSummaryRow extends RowProcess {
  sent: number;
  received: number;
  requests: number;
  replies: number;
  errors: number;
  /** Distinct remote addresses. */
  peers: number;
  firstNs: string;
  lastNs: string;
}

export interface Events extends InsightEvents {
  state: CaptureState;
  counts: Counts;
  /** Pushed about twice a second while anything changes. */
  aggregates: Aggregates;
  /** Progress and end of exports and file opens. */
  job: Job;
  /** The interfaces changed (one came, went, or changed state or addresses). */
  interfaces: InterfaceInfo[];
  /** The remote hosts changed (added, removed, connected, lost). */
  hosts: HostInfo[];
  /** An event of a remote host's service. */
  'host.event': HostEvent;
  /** A filter being applied (view.setFilter): at its start, then as it goes while it takes long. */
  filter: FilterProgress;
  /** A sort being applied (view.setSort): at its start, then as it goes while it takes long, then its end. */
  sort: SortProgress;
}
export type EventName = keyof Events;

/** Errors cross the transport as data: a code to branch on and a message that says what to do. */
export interface ContractError {
  code:
    | 'bad-request'
    | 'unknown-method'
    | 'not-found'
    | 'capture-failed'
    | 'filter-syntax'
    | 'internal'
    /** export.start: the file exists; ask, then send again with overwrite: true. */
    | 'file-exists'
    /** hosts.request: the remote host is not connected now (it reconnects by itself). */
    | 'host-unreachable'
    /** view.setSort: a newer sort or filter, or view.cancelSort, stopped it before it finished. */
    | 'cancelled';
  message: string;
  /** For filter syntax errors: the character offset the message points at. */
  position?: number;
}

export class ServiceError extends Error {
  constructor(
    readonly code: ContractError['code'],
    message: string,
    readonly position?: number,
  ) {
    super(message);
    this.name = 'ServiceError';
  }

  toJSON(): ContractError {
    return {
      code: this.code,
      message: this.message,
      ...(this.position !== undefined ? { position: this.position } : {}),
    };
  }
}

/** What both transports give the renderer. */
export interface IcmpcapApi {
  request<M extends PageRequestName>(method: M, params?: PageRequestParams<M>): Promise<Results[M]>;
  onEvent<E extends EventName>(event: E, listener: (data: Events[E]) => void): () => void;
}

/** The channel names of the Electron transport (kept here so main, preload and tests agree). */
export const IPC_REQUEST_CHANNEL = 'icmpcap:request';
export const IPC_EVENT_CHANNEL = 'icmpcap:event';
