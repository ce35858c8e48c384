/** `icmpcap doctor` on this machine: every problem it reports comes with a fix. */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { formatChecks, runDoctor } from './doctor.js';
import { loadNative } from './native.js';

describe('doctor', () => {
  const checks = runDoctor(loadNative());

  it('checks the module, Secure Boot, the capability, the helper and both sources', () => {
    const names = checks.map((c) => c.name);
    for (const name of [
      'kernel module',
      'secure boot',
      'capability',
      'capture helper',
      'source module',
      'source afpacket',
    ]) {
      expect(names).toContain(name);
    }
  });

  it('gives a fix with every warning and failure', () => {
    for (const c of checks.filter((c) => c.status === 'warn' || c.status === 'fail')) {
      expect(c.fix, `${c.name}: ${c.detail}`).toBeTruthy();
    }
  });

  it('matches what the machine says about the module', () => {
    const loaded = execFileSync('sh', ['-c', 'test -d /sys/module/icmpcap && echo yes || echo no'], {
      encoding: 'utf8',
    }).trim();
    const module = checks.find((c) => c.name === 'kernel module')!;
    expect(module.status).toBe(loaded === 'yes' ? 'ok' : 'warn');
    if (loaded === 'no') expect(module.fix).toContain('modprobe icmpcap');
  });

  it('reports the addon missing with what to run', () => {
    const without = runDoctor(new Error('cannot load the native addon'));
    expect(without.find((c) => c.name === 'native addon')).toMatchObject({
      status: 'fail',
      fix: expect.stringContaining('npm install') as string,
    });
    expect(formatChecks(without)).toMatch(/\[FAIL\] native addon/);
  });
});
