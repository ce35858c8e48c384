/** Runs the `icmpcap` command line as a user would, with its spool under a test folder. */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runIcmpcap(args: string[], cacheDir: string): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/icmpcap.mjs', ...args], {
      env: { ...process.env, XDG_CACHE_HOME: join(cacheDir, 'cache') },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

export interface SpawnOptions {
  /** Run inside this network namespace (`ip netns exec`). */
  netns?: string;
  /**
   * A shell command that reads icmpcap's standard output (`icmpcap ... | pipeTo`); `stdout()` is then what
   * that command prints and `exited` still gives icmpcap's exit code.
   */
  pipeTo?: string;
}

/**
 * Starts `icmpcap` and leaves it running: for signals, pipes and files read while it captures. `started`
 * resolves when it says it is capturing (its first line on stderr); `exited` when it ends.
 */
export function spawnIcmpcap(
  args: string[],
  cacheDir: string,
  opts: SpawnOptions = {},
): {
  child: ChildProcess;
  stderr: () => string;
  stdout: () => string;
  started: Promise<void>;
  exited: Promise<number | null>;
} {
  let command = [process.execPath, 'bin/icmpcap.mjs', ...args];
  if (opts.netns) command = ['ip', 'netns', 'exec', opts.netns, ...command];
  if (opts.pipeTo !== undefined) {
    const quoted = command.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
    command = ['bash', '-c', `${quoted} | ${opts.pipeTo}; exit \${PIPESTATUS[0]}`];
  }
  const child = spawn(command[0]!, command.slice(1), {
    env: { ...process.env, XDG_CACHE_HOME: join(cacheDir, 'cache') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString('latin1')));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const started = new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (/capturing on|reading/i.test(stderr)) resolve();
    });
    void exited.then((code) => reject(new Error(`icmpcap exited (${code}) before capturing: ${stderr}`)));
  });
  started.catch(() => undefined);
  return { child, stderr: () => stderr, stdout: () => stdout, started, exited };
}
