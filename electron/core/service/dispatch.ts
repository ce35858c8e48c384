/**
 * Request dispatch: the one entry point of both transports (Electron IPC and the WebSocket server). Every
 * request is validated against the contract's schema, then handed to the service method that answers it.
 */
import type { z } from 'zod';
import {
  type CaptureState,
  type Counts,
  type Hello,
  type InterfaceInfo,
  type LeftoverSpoolInfo,
  type RequestName,
  RequestSchemas,
  type Results,
  ServiceError,
  type SourceAvailability,
  isRequestName,
} from '../../common/contract.js';
import { checkFilter } from '../filter/index.js';
import type { Aggregator } from '../stats/aggregator.js';
import type { RecordStore } from '../store.js';
import type { View } from '../view.js';
import { filterError } from './errors.js';
import type { JobRunner } from '../jobs.js';

type Params<M extends RequestName> = z.output<(typeof RequestSchemas)[M]>;

/** What dispatch needs of the service. */
export interface RequestHandlers {
  readonly store: RecordStore;
  readonly view: View;
  readonly aggregator: Aggregator;
  readonly jobs: JobRunner;
  readonly version: string;
  readonly captureState: CaptureState;
  counts(): Counts;
  probe(): SourceAvailability[];
  interfaces(): InterfaceInfo[];
  start(params: Params<'capture.start'>): CaptureState;
  stopSliced(): Promise<CaptureState>;
  pause(paused: boolean): CaptureState;
  clear(): void;
  rows(start: number, count: number): Results['view.rows'];
  setFilter(filter: string): Promise<Results['view.setFilter']>;
  setSort(column: Params<'view.setSort'>['column'], descending: boolean): Promise<Results['view.setSort']>;
  cancelSort(): Results['view.cancelSort'];
  tick(): void;
  aggregates(): Results['stats.get'];
  processSummary(): Promise<Results['procs.summary']>;
  details(no: number): Results['record.details'];
  startExport(p: Params<'export.start'>): number;
  openFile(paths: string[], label: string): number;
  leftoverSpools(): Promise<LeftoverSpoolInfo[]>;
  openLeftover(id: string): Promise<number>;
  cleanSpools(id: string | undefined): Promise<string[]>;
}

/** Validates `params` for `method`; throws ServiceError 'unknown-method' or 'bad-request'. */
export function validateRequest(method: unknown, params: unknown): { method: RequestName; params: unknown } {
  if (!isRequestName(method)) {
    throw new ServiceError(
      'unknown-method',
      `unknown request ${JSON.stringify(method)}; see electron/common/contract.ts`,
    );
  }
  const schema = RequestSchemas[method] as z.ZodType;
  const parsed = schema.safeParse(params ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length ? ` (${issue.path.join('.')})` : '';
    throw new ServiceError(
      'bad-request',
      `bad parameters for ${method}${where}: ${issue?.message ?? 'invalid'}`,
    );
  }
  return { method, params: parsed.data };
}

export function dispatchRequest(
  s: RequestHandlers,
  method: RequestName,
  p: unknown,
  transport: Hello['transport'],
): unknown {
  switch (method) {
    case 'hello':
      return {
        version: s.version,
        transport,
        state: s.captureState,
        counts: s.counts(),
        sources: s.probe(),
        interfaces: s.interfaces(),
        jobs: s.jobs.list(),
      } satisfies Hello;
    case 'capture.start':
      return s.start(p as Params<'capture.start'>);
    case 'capture.stop':
      return s.stopSliced();
    case 'capture.pause':
      return s.pause(true);
    case 'capture.resume':
      return s.pause(false);
    case 'capture.clear':
      s.clear();
      return s.counts();
    case 'view.rows': {
      const { start, count } = p as Params<'view.rows'>;
      return s.rows(start, count);
    }
    case 'view.setFilter':
      return s.setFilter((p as Params<'view.setFilter'>).filter);
    case 'view.setSort': {
      const { column, descending } = p as Params<'view.setSort'>;
      return s.setSort(column, descending);
    }
    case 'view.cancelSort':
      return s.cancelSort();
    case 'filter.check': {
      let slow: string | null;
      try {
        slow = checkFilter((p as Params<'filter.check'>).filter);
      } catch (err) {
        throw filterError(err);
      }
      return slow === null ? { ok: true } : { ok: true, slow };
    }
    case 'stats.get':
      return s.aggregates();
    case 'procs.summary':
      return s.processSummary();
    case 'stats.peerSeries': {
      const { peers, maxPoints } = p as Params<'stats.peerSeries'>;
      return peers.map((peer) => s.aggregator.peerSeries(peer, maxPoints));
    }
    case 'view.positionOf': {
      const { no } = p as Params<'view.positionOf'>;
      return { position: s.store.has(no - 1) ? s.view.positionOf(no - 1) : null };
    }
    case 'record.details':
      return s.details((p as Params<'record.details'>).no);
    case 'export.start':
      return { id: s.startExport(p as Params<'export.start'>) };
    case 'file.open': {
      const { path } = p as Params<'file.open'>;
      return { id: s.openFile([path], path) };
    }
    case 'job.cancel':
      return s.jobs.cancel((p as Params<'job.cancel'>).id);
    case 'interfaces.list':
      return s.interfaces();
    case 'sources.probe':
      return s.probe();
    case 'spool.list':
      return s.leftoverSpools();
    case 'spool.open':
      return s.openLeftover((p as Params<'spool.open'>).id).then((id) => ({ id }));
    case 'spool.clean':
      return s.cleanSpools((p as { id?: string }).id).then((removed) => ({ removed }));
  }
}
