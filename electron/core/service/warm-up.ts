/**
 * Warms the capture path before the first capture: a synthetic capture (a busy host's echo pairs, errors and
 * neighbour messages, with real packet bytes) goes through a scratch service of the same class (spool writes,
 * ingest with echo matching, statistics, view), a few hundred records a turn, while the app or `serve` waits
 * for the user.
 *
 * JavaScript's compiler optimises a function once it has run a while. Cold, the service took in records at a
 * fraction of its rate: a capture started during a 500 k records/s flood dropped 210 k records in its first
 * second, 28 k once 200 k records had gone through the path first (the ingest-load bench's capture, same run).
 * The compiled code and the feedback it is built from belong to the functions, not to the service that ran
 * them, so the real service starts warm. Nothing of the scratch service is kept: its spool (in a temporary
 * directory) is removed and its records go.
 *
 * It yields a turn after each of its first batches and every few batches after, and stops as soon as the real
 * service is asked to capture or open (its state leaves 'idle'): a warm-up never competes with the work it
 * prepares for.
 *
 * Two more things a capture's first second paid for: the code was compiled again at its first transferred
 * buffer (detachOneBuffer, below), and the worker that makes the store's chunks ahead (chunk-supply.ts) started
 * at the capture's second chunk, its start and its first chunks on the two cores the capture needed. The
 * warm-up transfers a buffer before it runs, and has the real service's chunks made once it is done. Measured
 * on the ingest-load bench (2 M records, alternated, quiet machine): the first second of a 500 k records/s
 * capture took in 438-471 k records with both, 214-239 k without, 382-459 k with the chunks alone.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { realisticCapture } from '../bench/synth.js';
import { CaptureService } from './capture-service.js';
import { prestartExportThread } from '../spool-export.js';

/** Records the warm-up sends through the scratch service (0.6-0.9 s of one core, cold). */
export const WARM_UP_RECORDS = 200_000;
/** Records a batch: a batch a turn for the first COLD_TURNS, then TURN_BATCHES a turn. */
const BATCH = 256;
const COLD_TURNS = 8;
const TURN_BATCHES = 4;

export interface WarmUpOptions {
  records?: number;
  /** Wait this long first (the window loads, the page is served). */
  delayMs?: number;
  /** Where its temporary spool goes (default: the system's temporary directory). */
  tmpDir?: string;
}

/**
 * Runs the warm-up for `service`; resolves with the records that went through (fewer when the service started
 * work meanwhile). Never throws: a warm-up that fails (no room for its spool) leaves the service as it was.
 */
export async function warmUp(service: CaptureService, options: WarmUpOptions = {}): Promise<number> {
  const idle = (): boolean => service.captureState.state === 'idle';
  if (options.delayMs) await new Promise((resolve) => setTimeout(resolve, options.delayMs).unref());
  if (!idle()) return 0;
  let dir: string | null = null;
  let scratch: CaptureService | null = null;
  let records = 0;
  const turn = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));
  try {
    dir = mkdtempSync(join(options.tmpDir ?? tmpdir(), 'icmpcap-warm-up-'));
    scratch = new CaptureService({
      native: new Error('the warm-up has no native session'),
      version: service.version,
      spoolDir: join(dir, 'spool'),
    });
    // The scratch service's chunks are made here: a worker of its own would only start to be stopped.
    scratch.store.supply = null;
    await turn();
    if (!idle()) return 0;
    detachOneBuffer();
    scratch.startFeed({ snaplen: 256 });
    // A batch a turn while the code is coldest (1024 cold records, the generator's set-up and the scratch
    // service's construction in one turn held the loop 200 ms), then TURN_BATCHES a turn.
    let batches = 0;
    for (const batch of realisticCapture(options.records ?? WARM_UP_RECORDS, BATCH, { packetBytes: true })) {
      if (batches++ < COLD_TURNS || batches % TURN_BATCHES === 0) {
        await turn();
        if (!idle()) break;
      }
      scratch.feed(batch);
      records = scratch.store.length;
    }
  } catch {
    // Whatever went wrong, the real service is untouched: it only starts colder.
  } finally {
    scratch?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
  if (idle()) {
    void service.prepareChunks();
    // The exports' thread too: starting it during a capture would take the capture's CPU.
    prestartExportThread();
  }
  return records;
}

/**
 * Detaches an ArrayBuffer (transfers it): the first call on a thread is the one that counts, later ones cost
 * an allocation. Until a thread detaches its first buffer, V8 compiles typed-array code on the promise that
 * none ever will be; the first transfer breaks that promise and throws away every function compiled on it. A
 * capture transfers buffers from its first batch (the insights' records go to their worker), so a warm-up
 * before any transfer was lost at the capture's first batch: its code compiled again while the capture's first
 * second arrived (the ingest-load bench's capture dropped records in its first second, with the functions of
 * the whole path deoptimised at once: `--trace-deopt`, "code dependencies"). Breaking the promise first, the
 * warm-up's code is compiled for buffers that may be detached and stays.
 */
export function detachOneBuffer(): void {
  const buffer = new ArrayBuffer(8);
  structuredClone(buffer, { transfer: [buffer] });
}
