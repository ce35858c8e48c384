/**
 * Spools started one after another by one process never share files: the replaced spool's files are removed
 * in the background (SpoolOwner.retire), which took the new spool's file with it when both were started in
 * the same second (CI: a file opened right after another showed rows without their Info).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Spool } from './spool-store.js';

const dir = mkdtempSync(join(tmpdir(), 'icmpcap-spool-names-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('spool names', () => {
  it('differ for spools started in the same second, and removing the old one keeps the new one', async () => {
    const spools = Array.from({ length: 5 }, () => Spool.create(dir, 'icmpcap test', 256));
    const paths = spools.map((s) => s.path);
    expect(new Set(paths).size).toBe(paths.length);
    // The recovery tools' name pattern: capture-<yyyymmdd>-<hhmmss>-<pid>-<segment>.pcapng.
    for (const p of paths) expect(basename(p)).toMatch(/^capture-\d{8}-\d{6}-\d+-0000\.pcapng$/);
    // Replaced one after another, as file.open after file.open does: each older one's files go away.
    for (let k = 0; k < spools.length - 1; k++) {
      const old = spools[k]!.paths;
      spools[k]!.close();
      await Promise.all(old.map((p) => rm(p, { force: true })));
    }
    expect(existsSync(paths.at(-1)!)).toBe(true);
    spools.at(-1)!.close();
  });
});
