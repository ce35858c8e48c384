/**
 * How often AF_PACKET attribution wins the race against short-lived senders: `ping -c 1` (a ping socket that
 * exists for about the round trip) run N times in the capture's namespace, each echo request looked up when
 * its record is ingested. Beside it, `ping -c 2 -i 0.2` (the socket lives 0.2 s longer), the common case of
 * a ping that runs a while. The module's pid (REC_F_HAS_PID) has no race at all; it is not measured here.
 *   node --import tsx electron/core/bench/proc-race.ts [N]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mergeBenchResults } from '../../../test/support/bench-results.js';
import { A4, OddLab } from '../testing/odd-lab.js';

const N = Number(process.argv[2] ?? 40);
const lab = new OddLab();
const dir = mkdtempSync(join(tmpdir(), 'icmpcap-proc-race-'));
try {
  lab.setUp();
  execFileSync('ip', [
    'netns',
    'exec',
    lab.b,
    'sysctl',
    '-q',
    '-w',
    'net.ipv4.ping_group_range=0 2147483647',
  ]);
  await lab.startService(dir);
  const ranges: Record<string, [number, number]> = {};
  for (const [name, args] of [
    ['ping -c 1', ['-c', '1']],
    ['ping -c 2 -i 0.2', ['-c', '2', '-i', '0.2']],
  ] as const) {
    const from = await lab.mark(`${name} start`);
    for (let k = 0; k < N; k++) lab.ping('b', [...args, A4]);
    ranges[name] = [from, await lab.mark(name)];
  }
  const result = await lab.stop();
  const figures: Parameters<typeof mergeBenchResults>[0] = {};
  for (const [name, [from, to]] of Object.entries(ranges)) {
    const requests = result.rows.filter((r) => r.no > from && r.no <= to && r.type === 8 && r.dir === 'out');
    const first = new Map<number, (typeof requests)[number]>();
    for (const r of requests) if (!first.has(r.id!)) first.set(r.id!, r);
    const named = [...first.values()].filter((r) => r.proc?.pid != null).length;
    const uidOnly = [...first.values()].filter((r) => r.proc && r.proc.pid == null).length;
    const key = name.replaceAll(' ', '_').replaceAll('-', '').replaceAll('.', '');
    figures[`proc.race.${key}.pid_percent`] = {
      value: Math.round((1000 * named) / Math.max(1, first.size)) / 10,
      unit: '%',
      command: `node --import tsx electron/core/bench/proc-race.ts ${N}`,
      note: `${name}, ${first.size} runs through AF_PACKET: first echo request of each run named with its pid (${uidOnly} more with the uid alone)`,
    };
  }
  mergeBenchResults(figures);
} finally {
  lab.tearDown();
  rmSync(dir, { recursive: true, force: true });
}
