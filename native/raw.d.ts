// Types of what build/Release/icmpcap.node exports (src/binding.cc). index.js wraps it (default
// helper path, argument checks); index.d.ts types that wrapper, which is what the app uses.
import type {
  adviseHugePages,
  encodeSpoolBlocks,
  InterfaceInfo,
  OpenConfig,
  Route4,
  RouteAnswer,
  Session,
  SourceAvailability,
} from './index.js';
import type { BenchSessionOptions } from './bench.js';

export interface RawAddon {
  readonly ABI_VERSION: number;
  readonly RECORD_HEADER_SIZE: 72;
  readonly MAX_HELD_BATCHES: number;
  /** helperPath is required here: index.js fills in the default. */
  open(config: OpenConfig & { helperPath: string }): Session;
  interfaces(): InterfaceInfo[];
  watchInterfaces(onChange: (ev: { type: 'added' | 'removed' | 'changed'; iface: InterfaceInfo }) => void): {
    close(): void;
  };
  routeGet(destination: string): RouteAnswer;
  routesV4(): Route4[];
  probe(helperPath: string): SourceAvailability[];
  encodeSpoolBlocks: typeof encodeSpoolBlocks;
  adviseHugePages: typeof adviseHugePages;
  /** The classes behind open() and watchInterfaces(); not constructible from JavaScript. */
  readonly Session: new (...args: never[]) => Session;
  readonly InterfaceWatcher: new (...args: never[]) => { close(): void };
}

/** build/Release/icmpcap_bench.node: the same, plus a synthetic source (bench.js). */
export interface RawBenchAddon extends RawAddon {
  benchSession(
    count: number,
    capLen: number,
    perRecordObjects: boolean,
    options?: BenchSessionOptions,
  ): Session;
}
