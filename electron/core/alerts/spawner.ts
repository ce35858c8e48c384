/**
 * Alert commands start from a small helper process, not from the service.
 *
 * Starting a child copies the parent's page tables (fork): from a service holding 1 GB of capture it held the
 * event loop about 50 ms per command, 160 ms at 4 GB. The helper is a plain Node process started once, while
 * the rules are read (the service is small then); each command is one JSON line to it, and its exit code one
 * line back on fd 3. Commands keep the service's stdout and stderr. If the helper dies, waiting commands
 * resolve 127 and the next command starts a new helper.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';

/** The helper (CommonJS, run with `-e`, so nothing else needs packaging): line in, /bin/sh -c, exit code out. */
const HELPER = `
const { spawn } = require('node:child_process');
const { writeSync } = require('node:fs');
const lines = require('node:readline').createInterface({ input: process.stdin });
lines.on('line', (line) => {
  let job;
  try { job = JSON.parse(line); } catch { return; }
  let done = false;
  const reply = (code) => {
    if (done) return;
    done = true;
    try { writeSync(3, JSON.stringify({ id: job.id, code }) + '\\n'); } catch {}
  };
  const child = spawn('/bin/sh', ['-c', String(job.command)], { stdio: ['pipe', 'inherit', 'inherit'] });
  child.on('error', () => reply(127));
  child.on('exit', (code, signal) => reply(code ?? (signal ? 128 : 1)));
  child.stdin.on('error', () => {});
  child.stdin.end(String(job.stdin));
});
lines.on('close', () => process.exit(0));
`;

export class CommandSpawner {
  private child: ChildProcess | null = null;
  private nextId = 1;
  private readonly waiting = new Map<number, (code: number) => void>();

  /** The helper's pid (starting it if needed); null when it cannot start. */
  start(): number | null {
    if (this.child !== null) return this.child.pid ?? null;
    // In Electron, process.execPath is the app: ELECTRON_RUN_AS_NODE makes it plain Node.
    const child = spawn(process.execPath, ['-e', HELPER], {
      stdio: ['pipe', 'inherit', 'inherit', 'pipe'],
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
    });
    this.child = child;
    const replies = child.stdio[3] as Readable;
    createInterface({ input: replies }).on('line', (line) => {
      let reply: { id?: unknown; code?: unknown };
      try {
        reply = JSON.parse(line) as typeof reply;
      } catch {
        return;
      }
      const resolve = typeof reply.id === 'number' ? this.waiting.get(reply.id) : undefined;
      if (resolve === undefined) return;
      this.waiting.delete(reply.id as number);
      resolve(typeof reply.code === 'number' ? reply.code : 1);
      this.idle();
    });
    const gone = (): void => {
      if (this.child !== child) return;
      this.child = null;
      for (const resolve of this.waiting.values()) resolve(127);
      this.waiting.clear();
    };
    child.on('error', gone);
    child.on('exit', gone);
    child.stdin!.on('error', () => undefined);
    this.idle();
    return child.pid ?? null;
  }

  /** Runs `command` through /bin/sh with `stdin`; resolves its exit code (127: could not run it). */
  run(command: string, stdin: string): Promise<number> {
    this.start();
    const child = this.child;
    if (child === null || child.stdin === null || !child.stdin.writable) return Promise.resolve(127);
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.busy();
      child.stdin!.write(`${JSON.stringify({ id, command, stdin })}\n`);
    });
  }

  /** Ends the helper (it exits when its input closes). */
  close(): void {
    this.child?.stdin?.end();
    this.child = null;
  }

  /** While commands run, the helper keeps the process alive (a CLI waits for them); idle, it does not. */
  private busy(): void {
    this.child?.ref();
    (this.child?.stdio[3] as (Readable & { ref?: () => void }) | undefined)?.ref?.();
  }

  private idle(): void {
    if (this.waiting.size > 0) return;
    this.child?.unref();
    (this.child?.stdio[3] as (Readable & { unref?: () => void }) | undefined)?.unref?.();
    (this.child?.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  }
}

/** The process's one helper: alert runners come and go as rules change; the helper stays. */
export const commandSpawner = new CommandSpawner();
