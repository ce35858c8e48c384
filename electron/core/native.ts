/**
 * Loads the native addon (native/). The addon's own `.d.ts` (native/index.d.ts) types it; this module
 * only finds and loads it, and turns a missing build into an error that says what to do.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type * as NativeAddon from '../../native/index.js';
import { probeWithAdvice, withAdvice } from './advice.js';
import { projectRoot } from './paths.js';

export type Native = typeof NativeAddon;
export type {
  OpenConfig,
  Session as NativeSession,
  SessionEvent,
  SessionStats,
  BatchInfo,
} from '../../native/index.js';

let loaded: Native | undefined;

export function loadNative(): Native {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  const path = join(projectRoot(), 'native', 'index.js');
  let raw: Native;
  try {
    raw = require(path) as Native;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(
      `icmpcap: cannot load the native addon (${path}): ${reason}. Build it with \`npm install\` ` +
        '(or `npm run build:native`); it needs g++, make and python3.',
    );
  }
  loaded = withAdviceOn(raw);
  return loaded;
}

/** The addon, with the advice of advice.ts on every error it throws and every probe result. */
function withAdviceOn(raw: Native): Native {
  return {
    ...raw,
    open: (config) => {
      try {
        return raw.open(config);
      } catch (err) {
        throw withAdvice(err);
      }
    },
    probe: (options) => probeWithAdvice(raw.probe(options)),
  };
}

/** The addon's spool block encoder: the layout (and a synchronous encode) on the loop, runs in the pool. */
export interface SpoolEncoder {
  blocks: Native['encodeSpoolBlocks'];
  runs: Native['encodeSpoolRuns'];
}

let spoolEncoder: SpoolEncoder | null | undefined;

/**
 * The addon's spool block encoder, or null when the addon cannot be loaded (the spool then encodes in
 * JavaScript: the same bytes, slower, on the loop). Loaded once, on first use.
 */
export function nativeSpoolEncoder(): SpoolEncoder | null {
  if (spoolEncoder === undefined) {
    try {
      const { encodeSpoolBlocks: blocks, encodeSpoolRuns: runs } = loadNative();
      spoolEncoder = typeof blocks === 'function' && typeof runs === 'function' ? { blocks, runs } : null;
    } catch {
      spoolEncoder = null;
    }
  }
  return spoolEncoder;
}
