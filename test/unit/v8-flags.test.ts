/**
 * The capture service's V8 flags (build/app-meta.cjs, serviceV8Flags): every launcher of a process that runs
 * the service passes them, and they still do what they are there for on this Node: a service-shaped heap
 * (a small old generation, a busy young one, buffers held a few turns) gets far fewer full collections.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const require = createRequire(import.meta.url);
const { serviceV8Flags, serviceNodeFlags } = require(join(root, 'build', 'app-meta.cjs')) as {
  serviceV8Flags: string[];
  serviceNodeFlags: string[];
};
const read = (file: string): string => readFileSync(join(root, file), 'utf8');

/** Full (mark-compact) collections of a Node child running a service-shaped workload for a fixed amount of work. */
function majorCollections(flags: string[]): number {
  const script = `
    import { PerformanceObserver, constants } from 'node:perf_hooks';
    let major = 0;
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) major++;
    }).observe({ entryTypes: ['gc'] });
    const live = [];
    for (let i = 0; i < 250000; i++) live.push({ a: i, b: String(i), c: [i] });
    const waiting = [];
    for (let turn = 0; turn < 8000; turn++) {
      for (let k = 0; k < 2000; k++) {
        const o = { x: k, y: [k, k + 1], z: 'q' + k };
        if (k % 50 === 0) waiting.push(o);
      }
      waiting.push(new ArrayBuffer(65536));
      if (waiting.length > 400) waiting.splice(0, 200);
      await new Promise((resolve) => setImmediate(resolve));
    }
    setTimeout(() => console.log(String(major + live.length * 0)), 20);
  `;
  // From a file: evaluated with -e, the same code kept a small young generation and showed nothing.
  const dir = mkdtempSync(join(tmpdir(), 'icmpcap-v8-flags-'));
  try {
    const file = join(dir, 'heap.mjs');
    writeFileSync(file, script);
    const out = execFileSync(process.execPath, [...flags, file], { encoding: 'utf8', timeout: 60_000 });
    return Number(out.trim());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The threads of a Node child started with `flags` once its event loop runs (no thread pool work asked). */
function threads(flags: string[]): number {
  const script =
    "import { readdirSync } from 'node:fs'; setTimeout(() => console.log(readdirSync('/proc/self/task').length), 50);";
  const out = execFileSync(process.execPath, [...flags, '--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return Number(out.trim());
}

describe('the capture service V8 flags', () => {
  it('are passed by every launcher of the service', () => {
    const flags = serviceV8Flags.join(' ');
    // The launchers that run the service on Node (or Electron as Node) pass Node's flags after V8's.
    const nodeFlags = [...serviceV8Flags, ...serviceNodeFlags].join(' ');
    expect(flags).toMatch(/^--\S+/);
    // `icmpcap` run from a checkout, and the packages' /usr/bin/icmpcap (Electron as Node).
    expect(read('bin/icmpcap.mjs').split('\n')[0]).toBe(`#!/usr/bin/env -S node ${nodeFlags}`);
    expect(read('build/linux/icmpcap-cli')).toContain(
      `exec "$app/icmpcap" ${nodeFlags} "$app/resources/app/bin/icmpcap.mjs"`,
    );
    // `npm run serve`, and `npm start` (the window, or browser mode where Electron cannot run).
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    expect(pkg.scripts.serve).toContain(`node ${nodeFlags} bin/icmpcap.mjs serve`);
    const start = read('scripts/start.mjs');
    expect(start).toContain("`--js-flags=${serviceV8Flags.join(' ')}`, '.'");
    expect(start).toContain(
      "[...serviceV8Flags, ...serviceNodeFlags, join(root, 'bin', 'icmpcap.mjs'), 'serve'",
    );
    // The desktop entries of both package builders start the window's main process with them.
    const builder = require(join(root, 'build', 'electron-builder.cjs')) as {
      linux: { executableArgs: string[] };
    };
    expect(builder.linux.executableArgs).toEqual([`--js-flags=${flags}`]);
    expect(read('scripts/package.sh')).toContain(
      "Exec: '/usr/lib/icmpcap/icmpcap --js-flags=' + m.serviceV8Flags.join(' ') + ' %U'",
    );
  });

  it('cut the full collections of a service-shaped heap on this Node', () => {
    const without = majorCollections([]);
    const withFlags = majorCollections(serviceV8Flags);
    // Measured: 8-10 without, 0-1 with. A Node whose heuristics no longer need the flag fails here: drop it then.
    expect(without).toBeGreaterThanOrEqual(4);
    expect(withFlags * 4).toBeLessThanOrEqual(without);
  }, 120_000);

  it("size V8's helper threads to the cores the event loop leaves, not Node's fixed four", () => {
    // Node starts 4 V8 helpers whatever the machine; the flag makes them the available cores less one (at
    // least one), so a collection's helpers never outnumber the cores beside the capture's thread.
    const helpers = Math.max(1, availableParallelism() - 1);
    expect(threads(serviceNodeFlags) - threads([])).toBe(helpers - 4);
  }, 60_000);
});
