/** The `icmpcap` command line with real packets on loopback, its files read back by tshark. */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type CliRun, runIcmpcap, spawnIcmpcap } from '../support/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'icmpcap-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function icmpcap(args: string[]): Promise<CliRun> {
  return runIcmpcap(args, tmp);
}

/** Runs icmpcap and, once it captures, pings 127.0.0.1 `count` times with echo id `id`. */
async function icmpcapWhilePinging(args: string[], id: number, count: number): Promise<CliRun> {
  const run = spawnIcmpcap(args, tmp);
  await run.started;
  spawnSync('ping', ['-c', String(count), '-i', '0.05', '-e', String(id), '127.0.0.1'], { stdio: 'ignore' });
  const code = await run.exited;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

describe('icmpcap capture', () => {
  it('writes exactly the packets the filter and count keep, to a pcapng tshark reads', async () => {
    const id = 40000 + (process.pid % 10000);
    const out = join(tmp, 'replies.pcapng');
    const run = await icmpcapWhilePinging(
      [
        'capture',
        '-i',
        'lo',
        '-c',
        '3',
        '-Y',
        `icmp.id == ${id} && icmp.type == echo-reply && dir == in`,
        '-w',
        out,
      ],
      id,
      5,
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/3 packets captured to/);
    const fields = execFileSync(
      'tshark',
      ['-r', out, '-T', 'fields', '-e', 'icmp.type', '-e', 'icmp.ident', '-e', 'icmp.seq'],
      {
        encoding: 'utf8',
      },
    );
    expect(fields.trim().split('\n')).toEqual([`0\t${id}\t1`, `0\t${id}\t2`, `0\t${id}\t3`]);
  });

  it('prints one line per packet without -w and writes CSV with -w', async () => {
    const id = 50000 + (process.pid % 10000);
    const printed = await icmpcapWhilePinging(
      ['capture', '-i', 'lo', '-c', '2', '-Y', `icmp.id == ${id} && icmp.type == echo-request && dir == out`],
      id,
      2,
    );
    expect(printed.code).toBe(0);
    const lines = printed.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(
      new RegExp(`lo out 127\\.0\\.0\\.1 > 127\\.0\\.0\\.1: Echo Request id=${id} seq=1 ttl=64 len=84$`),
    );

    const csv = join(tmp, 'all.csv');
    const written = await icmpcapWhilePinging(
      ['capture', '-i', 'lo', '-c', '4', '-Y', `icmp.id == ${id + 1}`, '-w', csv],
      id + 1,
      1,
    );
    expect(written.code).toBe(0);
    const rows = readFileSync(csv, 'utf8').trim().split(/\r?\n/);
    expect(rows[0]).toMatch(/^no,time,/);
    expect(rows).toHaveLength(5);
  });

  it('refuses a bad filter, pointing at the mistake, and a file of unknown type', async () => {
    const bad = await icmpcap(['capture', '-i', 'lo', '-Y', 'icmp.seq == == 3']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("expected a value after '=='");
    expect(bad.stderr).toContain('\n  icmp.seq == == 3\n              ^');
    const unknown = await icmpcap(['capture', '-i', 'lo', '-w', join(tmp, 'x.bin')]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/add -F pcapng\|pcap\|csv\|ndjson/);
  });
});
