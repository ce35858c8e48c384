/** Test helper: capture real ICMPv6 on a namespace's interface with dumpcap, then read it back as records. */
import { type ChildProcess, spawn } from 'node:child_process';
import { readCaptureFileAll } from '../../files/index.js';
import type { DecodedRecord } from '../../record.js';

export interface RunningCapture {
  /** Stops dumpcap and returns every record captured, in order. */
  stop(): Promise<DecodedRecord[]>;
}

export async function startDumpcap(
  ns: string,
  ifname: string,
  path: string,
  filter = 'icmp6',
): Promise<RunningCapture> {
  const proc: ChildProcess = spawn(
    'ip',
    ['netns', 'exec', ns, 'dumpcap', '-q', '-i', ifname, '-f', filter, '-w', path],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let err = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dumpcap did not start: ${err}`)), 10_000);
    proc.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      if (/File:|Capturing on/.test(err)) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.on('exit', () => reject(new Error(`dumpcap exited: ${err}`)));
  });
  // dumpcap reports the file before the socket is fully attached on some kernels; give it a beat.
  await new Promise((r) => setTimeout(r, 300));
  return {
    async stop() {
      await new Promise((r) => setTimeout(r, 300));
      const exited = new Promise((r) => proc.on('exit', r));
      proc.kill('SIGTERM');
      await exited;
      return (await readCaptureFileAll(path)).records;
    },
  };
}
