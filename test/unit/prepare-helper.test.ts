/**
 * Started as root, every icmpcap prepares the capture helper before dropping root. Two of them started at
 * the same moment (two `icmpcap capture` in a pipeline, a capture beside `npm start`) must not undo each
 * other: chgrp drops file capabilities, so a prepare that rewrote a ready helper in place left the other
 * process, which had already checked it, running a helper without CAP_NET_RAW (EPERM; seen in CI).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureCaptureGroup, prepareHelper } from '../../electron/core/privilege.js';

const root = process.getuid?.() === 0;
const hasSetcap = spawnSync('setcap', ['-v', 'cap_net_raw+ep', '/bin/true']).error === undefined;
const dir = mkdtempSync(join(tmpdir(), 'icmpcap-prepare-'));
chmodSync(dir, 0o755); // the account must be able to reach the helper after the drop
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const caps = (path: string): string => execFileSync('getcap', [path], { encoding: 'utf8' }).trim();

describe.skipIf(!root || !hasSetcap)('prepareHelper', () => {
  it('prepares a helper once, then leaves a ready one untouched (same inode, capability kept)', () => {
    const helper = join(dir, 'icmpcap-helper');
    copyFileSync('/bin/true', helper);
    const gid = ensureCaptureGroup();
    expect(caps(helper)).not.toMatch(/cap_net_raw/);

    expect(prepareHelper(helper, gid)).toBeNull();
    const first = statSync(helper);
    expect(first.uid).toBe(0);
    expect(first.gid).toBe(gid);
    expect(first.mode & 0o7777).toBe(0o750);
    expect(caps(helper)).toMatch(/cap_net_raw[=+]ep/);

    // Ready: nothing is rewritten, so a process about to run it meanwhile keeps a capable helper.
    expect(prepareHelper(helper, gid)).toBeNull();
    const second = statSync(helper);
    expect(second.ino).toBe(first.ino);
    expect(second.ctimeMs).toBe(first.ctimeMs);
    expect(caps(helper)).toMatch(/cap_net_raw[=+]ep/);
    // No staged copies left behind.
    expect(readdirSync(dir)).toEqual(['icmpcap-helper']);
  });

  it('a helper that lost its capability is prepared again as a whole new file', () => {
    const helper = join(dir, 'icmpcap-helper');
    const gid = ensureCaptureGroup();
    execFileSync('setcap', ['-r', helper]);
    const before = statSync(helper).ino;
    expect(prepareHelper(helper, gid)).toBeNull();
    expect(statSync(helper).ino).not.toBe(before);
    expect(caps(helper)).toMatch(/cap_net_raw[=+]ep/);
    expect(readdirSync(dir)).toEqual(['icmpcap-helper']);
  });
});
