/**
 * Runs a Node child of the project (from its root, `node ...args`) and gives its exit code and output, whether
 * it ended well or not: for tests that need a process of their own (a worker keeping it alive, V8 flags).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { projectRoot } from '../paths.js';

export interface ChildRun {
  code: number;
  stdout: string;
  stderr: string;
}

export function runNodeChild(args: string[], timeoutMs = 120_000): Promise<ChildRun> {
  return promisify(execFile)(process.execPath, args, { cwd: projectRoot(), timeout: timeoutMs }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (err: { code?: number; stdout?: string; stderr?: string }) => ({
      code: err.code ?? -1,
      stdout: err.stdout ?? '',
      stderr: err.stderr ?? '',
    }),
  );
}
