/**
 * A file being opened waits for the insights' worker when it falls behind; meanwhile the worker keeps the
 * process alive. It did not (the worker is unref'd so that it alone never holds the process): a host with no
 * other handle, such as the event-loop bench, ended in the middle of opening a 20 M-record file (exit code 13).
 * The child waits for the worker after every batch (openQueuedBytes 1) and must finish the open.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../paths.js';
import { runNodeChild } from '../testing/node-child.js';

const RECORDS = 40_000;
let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-open-waits-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('a file opened while the insights worker is behind', () => {
  it('is opened whole: the worker it waits for keeps the process alive', async () => {
    const child = join(projectRoot(), 'electron', 'core', 'testing', 'open-waits-child.ts');
    const run = await runNodeChild(['--import', 'tsx', child, tmp, String(RECORDS)]);
    expect(run, run.stderr).toMatchObject({ code: 0, stdout: `opened ${RECORDS}\n` });
  });
});
