/**
 * Child of warm-up.test.ts (run with --allow-natives-syntax): warms a service up, then transfers a buffer as
 * a capture's first batch does (its records go to the insights' worker), and prints whether the statistics'
 * per-outcome code (typed arrays throughout), compiled by the warm-up, is still compiled after it:
 * `optimised before <bool> after <bool>`. (The spool's block writer was the one looked at until the spool's
 * blocks were encoded in the addon: it is no longer on the capture's path.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaptureService } from '../service.js';
import { Aggregator } from '../stats/aggregator.js';
import { warmUp } from '../service/warm-up.js';

// V8's %GetOptimizationStatus: bit 4 (16) is "optimised". Natives syntax is parsed by V8, not by the loader.
// eslint-disable-next-line @typescript-eslint/no-implied-eval
const status = new Function('f', 'return %GetOptimizationStatus(f)') as (f: unknown) => number;
const methods = Aggregator.prototype as unknown as Record<string, unknown>;
const hot = [methods.update, methods.sample];
const optimised = (): boolean => hot.every((f) => (status(f) & 16) !== 0);

const dir = mkdtempSync(join(tmpdir(), 'icmpcap-warm-up-child-'));
const svc = new CaptureService({
  native: new Error('no native here'),
  version: 'test',
  spoolDir: join(dir, 's'),
});
try {
  await warmUp(svc, { tmpDir: dir });
  // Concurrent compilation ends a little after the code that asked for it.
  for (let k = 0; k < 100 && !optimised(); k++) await new Promise((resolve) => setTimeout(resolve, 20));
  const before = optimised();
  const buffer = new ArrayBuffer(1024);
  structuredClone(buffer, { transfer: [buffer] });
  process.stdout.write(`optimised before ${before} after ${optimised()}\n`);
} finally {
  svc.close();
  rmSync(dir, { recursive: true, force: true });
}
