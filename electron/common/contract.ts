/**
 * The one contract between the renderer and the capture service. Electron IPC (electron/main +
 * electron/preload) and the WebSocket server (browser mode) both carry exactly these requests and
 * events; the renderer cannot tell them apart. Every request is validated with these schemas where it
 * enters the service, whatever the transport.
 */
import { z } from 'zod';

export const SourceKindSchema = z.enum(['module', 'afpacket']);
export type SourceKind = z.infer<typeof SourceKindSchema>;

const InterfaceName = z
  .string()
  .min(1)
  .max(15)
  .regex(/^[^\s/:]+$/, 'an interface name has no spaces, slashes or colons');

export const StartParamsSchema = z
  .object({
    source: z.union([SourceKindSchema, z.literal('auto')]).default('auto'),
    interfaces: z.array(InterfaceName).max(64).default([]),
    snaplen: z.number().int().min(64).max(65535).default(256),
  })
  .strict();
export type StartParams = z.input<typeof StartParamsSchema>;

export const RowsParamsSchema = z
  .object({
    start: z.number().int().min(0),
    count: z.number().int().min(0).max(2000),
  })
  .strict();

const Empty = z.object({}).strict().default({});

/** Request name -> params schema. The result types are in `Results`. */
export const RequestSchemas = {
  hello: Empty,
  'capture.start': StartParamsSchema,
  'capture.stop': Empty,
  'capture.pause': Empty,
  'capture.resume': Empty,
  'capture.clear': Empty,
  'view.rows': RowsParamsSchema,
  'interfaces.list': Empty,
  'sources.probe': Empty,
} as const;

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
  source?: SourceKind;
  interfaces: string[];
  startedAtMs?: number;
  stoppedAtMs?: number;
  /** What went wrong and what to do, when state is 'error' or a capture ended by itself. */
  message?: string;
}

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
}

export interface Counts {
  total: number;
  view: number;
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

export interface Hello {
  version: string;
  transport: 'ipc' | 'websocket';
  state: CaptureState;
  counts: Counts;
  sources: SourceAvailability[];
  interfaces: InterfaceInfo[];
}

export interface Results {
  hello: Hello;
  'capture.start': CaptureState;
  'capture.stop': CaptureState;
  'capture.pause': CaptureState;
  'capture.resume': CaptureState;
  'capture.clear': Counts;
  'view.rows': RowsResult;
  'interfaces.list': InterfaceInfo[];
  'sources.probe': SourceAvailability[];
}

export interface Events {
  state: CaptureState;
  counts: Counts;
}
export type EventName = keyof Events;

/** Errors cross the transport as data: a code to branch on and a message that says what to do. */
export interface ContractError {
  code: 'bad-request' | 'unknown-method' | 'not-found' | 'capture-failed' | 'filter-syntax' | 'internal';
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
  request<M extends RequestName>(method: M, params?: RequestParams<M>): Promise<Results[M]>;
  onEvent<E extends EventName>(event: E, listener: (data: Events[E]) => void): () => void;
}

/** The channel names of the Electron transport (kept here so main, preload and tests agree). */
export const IPC_REQUEST_CHANNEL = 'icmpcap:request';
export const IPC_EVENT_CHANNEL = 'icmpcap:event';
