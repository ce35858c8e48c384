import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCommand } from './actions.js';
import type { AlertEvent } from './engine.js';
import { CommandSpawner, commandSpawner } from './spawner.js';

const dir = mkdtempSync(join(tmpdir(), 'icmpcap-spawner-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const event = { rule: 'r', text: 't', time: '2026-11-30T00:00:00Z', tsNs: 5n } as unknown as AlertEvent;

describe('alert commands', () => {
  it('start from the helper process, not from the service, with the event on stdin', async () => {
    const helper = commandSpawner.start();
    expect(helper).toBeGreaterThan(0);
    const out = join(dir, 'ppid');
    // $PPID of the shell is the process that started it: the helper, never this process (a fork of it).
    expect(await runCommand(`echo $PPID > ${out}; cat > ${out}.json`, event)).toBe(0);
    const ppid = Number(readFileSync(out, 'utf8'));
    expect(ppid).not.toBe(process.pid);
    expect(ppid).toBe(helper);
    expect(JSON.parse(readFileSync(`${out}.json`, 'utf8'))).toMatchObject({ rule: 'r', tsNs: '5' });
  });

  it('give each command its own exit code, also when several run at once', async () => {
    const codes = await Promise.all(
      [0, 3, 7, 42].map((c) => runCommand(`sleep 0.0${c % 5}; exit ${c}`, event)),
    );
    expect(codes).toEqual([0, 3, 7, 42]);
    expect(await runCommand('exec /nonexistent/command', event)).toBe(127);
  });

  it('answer 127 for commands in flight when the helper dies, and start a new helper for the next', async () => {
    const spawner = new CommandSpawner();
    const first = spawner.start()!;
    const waiting = spawner.run('sleep 5', '');
    process.kill(first, 'SIGKILL');
    expect(await waiting).toBe(127);
    const out = join(dir, 'again');
    expect(await spawner.run(`echo $PPID > ${out}`, '')).toBe(0);
    const second = Number(readFileSync(out, 'utf8'));
    expect(second).not.toBe(first);
    expect(second).not.toBe(process.pid);
    spawner.close();
  });
});
