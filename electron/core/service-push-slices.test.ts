/**
 * The periodic push of the statistics counts the echo outcomes they hold a slice a turn before it reads the
 * peers: counting them all in the tick's turn (up to 131 072 outcomes) made most of the longest turns of a
 * 20 M-record capture or open (17-37 ms of 44-60 ms turns in a profile). The push still says exactly what a
 * full count says.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Aggregates } from '../common/contract.js';
import { buildBatch, type RecordSpec } from '../../test/support/records.js';
import { CaptureService } from './service.js';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-push-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Echo pairs `from..from+n-1` (a request out, its reply 1 ms later) with 3000 peers. */
function pairs(from: number, n: number): ArrayBuffer {
  const specs: RecordSpec[] = [];
  for (let k = from; k < from + n; k++) {
    const peer = `10.3.${(k % 3000) >> 8}.${(k % 3000) & 255}`;
    const ts = 1_700_000_000_000_000_000n + BigInt(k) * 10_000n;
    const echo = { id: k >>> 16, seq: k & 0xffff };
    specs.push({ tsNs: ts, src: '192.168.1.10', dst: peer, type: 8, dir: 1, ...echo });
    specs.push({ tsNs: ts + 1_000_000n, src: peer, dst: '192.168.1.10', type: 0, dir: 0, ...echo });
  }
  return buildBatch(specs);
}

describe('the periodic push of the statistics', () => {
  it('counts what they hold over several turns, then pushes what a full count says', async () => {
    const svc = new CaptureService({
      native: new Error('fed'),
      version: 'test',
      spoolDir: join(tmp, 'spool'),
    });
    const pushed: Aggregates[] = [];
    svc.on((event, data) => {
      if (event === 'aggregates') pushed.push(data as Aggregates);
    });
    try {
      svc.startFeed();
      for (let at = 0; at < 100_000; at += 2048) svc.feed(pairs(at, 2048), 4096);
      pushed.length = 0;
      let turns = 0;
      let counting = true;
      const spin = (): void => {
        if (!counting) return;
        turns++;
        setImmediate(spin);
      };
      setImmediate(spin);
      svc.tick();
      const before = pushed.length;
      while (pushed.length === 0) await new Promise((resolve) => setImmediate(resolve));
      counting = false;
      // The push came turns after the tick (in the tick's own turn on the old code).
      expect(before).toBe(0);
      expect(turns).toBeGreaterThan(1);
      const exact = svc.aggregates();
      expect(pushed[0]!.peers).toEqual(exact.peers);
      expect(pushed[0]!.total).toBe(exact.total);
      expect(exact.peers).toHaveLength(200);
    } finally {
      svc.close();
    }
  });
});
