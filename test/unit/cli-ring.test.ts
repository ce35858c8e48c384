/** `icmpcap capture` / `serve` with a ring-buffer limit (--ring-records, --ring-seconds), real loopback packets. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type CliRun, runIcmpcap, spawnIcmpcap } from '../support/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'icmpcap-cli-ring-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function icmpcap(args: string[]): Promise<CliRun> {
  return runIcmpcap(args, tmp);
}

describe('icmpcap with a ring-buffer limit', () => {
  it('captures with --ring-records and --ring-seconds', async () => {
    const id = 45000 + (process.pid % 10000);
    const run = spawnIcmpcap(
      [
        'capture',
        '-i',
        'lo',
        '--ring-records',
        '131072',
        '--ring-seconds',
        '60',
        '-c',
        '2',
        '-Y',
        `icmp.id == ${id} && icmp.type == echo-request && dir == out`,
      ],
      tmp,
    );
    await run.started;
    spawnSync('ping', ['-c', '2', '-i', '0.05', '-e', String(id), '127.0.0.1'], { stdio: 'ignore' });
    expect(await run.exited).toBe(0);
    // Nothing said about the limits: they were taken as given.
    expect(run.stderr()).not.toMatch(/--ring|ring buffer/);
    const lines = run.stdout().trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(new RegExp(`Echo Request id=${id} seq=2 `));
  });

  it('refuses limits below the minimum, naming the option', async () => {
    const few = await icmpcap(['capture', '-i', 'lo', '--ring-records', '1000']);
    expect(few.code).toBe(2);
    expect(few.stderr).toMatch(/--ring-records 1000: .*at least 131072/);
    const short = await icmpcap(['serve', '--no-start', '--ring-seconds', '2']);
    expect(short.code).toBe(2);
    expect(short.stderr).toMatch(/--ring-seconds 2: .*at least 10 seconds/);
    const junk = await icmpcap(['capture', '-i', 'lo', '--ring-records', 'lots']);
    expect(junk.code).toBe(2);
    expect(junk.stderr).toMatch(/--ring-records lots/);
  });
});
