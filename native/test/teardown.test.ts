// Environment teardown under load, under ASan: worker threads that capture (a synthetic
// session through the real delivery path, and AF_PACKET through icmpcap-helper with a ping
// flood on loopback) are terminated mid-capture without close(), two at a time, with the
// addon loaded in both. Node frees a ThreadSafeFunction at environment cleanup whatever
// other threads hold: the addon must stop and join its readers first.
// Builds native/test/build/asan/icmpcap.node (make -C native/test addon-asan). Needs root.
// Run: npx vitest run native/test/teardown.test.ts
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetnsPair, nativeDir, sh } from './netns.js';

const isRoot = process.getuid?.() === 0;

describe.skipIf(!isRoot)('teardown of worker threads under load (ASan)', () => {
  let net: NetnsPair;
  const addon = path.join(nativeDir, 'test', 'build', 'asan', 'icmpcap.node');
  const helper = path.join(nativeDir, 'build', 'Release', 'icmpcap-helper');

  beforeAll(() => {
    if (!existsSync(helper)) throw new Error('native addon not built: run npm run build:native');
    execFileSync('make', ['-s', '-C', path.join(nativeDir, 'test'), 'addon-asan'], { stdio: 'inherit' });
    net = new NetnsPair();
  }, 900_000);
  afterAll(() => net?.destroy());

  it('terminating workers mid-capture neither crashes nor touches freed memory', () => {
    const lib = (name: string) => sh('gcc', [`-print-file-name=${name}`]).trim();
    const flood = spawnSync(
      'sh',
      ['-c', `ip netns exec ${net.a} ping -f -q 127.0.0.1 >/dev/null 2>&1 & echo $!`],
      {
        encoding: 'utf8',
      },
    );
    try {
      const r = spawnSync(
        'ip',
        [
          'netns',
          'exec',
          net.a,
          process.execPath,
          path.join(nativeDir, 'test', 'fixtures', 'worker-teardown.cjs'),
          addon,
          helper,
          '6',
        ],
        {
          encoding: 'utf8',
          timeout: 120_000,
          env: {
            PATH: process.env.PATH ?? '/usr/bin:/bin',
            LD_PRELOAD: `${lib('libasan.so')}:${lib('libubsan.so')}`,
            ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1',
            UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
          },
        },
      );
      expect(r.stderr).not.toMatch(/AddressSanitizer|runtime error|FATAL ERROR|terminate called/);
      expect(r.stdout).toBe('OK\n');
      expect(r.status).toBe(0);
    } finally {
      const pid = Number(flood.stdout.trim());
      if (pid > 0) spawnSync('kill', [String(pid)]);
    }
  }, 180_000);
});
