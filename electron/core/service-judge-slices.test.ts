/**
 * Loss judged at the end of a flood of unanswered requests, a slice a turn: a capture stopped (or gone idle)
 * with hundreds of thousands of requests still waiting judged them all in one turn of the service (118 ms for
 * a million). Through the real delivery path (the bench addon's session, as the ingest-load bench uses it):
 * the requests are delivered, the capture is stopped at once, and between turns the oldest request is seen
 * judged lost while the newest is not yet; at the end every one is lost and the statistics say so.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as Bench from '../../native/bench.js';
import type { Aggregates } from '../common/contract.js';
import { buildBatch, type RecordSpec } from '../../test/support/records.js';
import type { EchoMatcher } from './echo-match.js';
import { type Native, loadNative } from './native.js';
import { projectRoot } from './paths.js';
import { CaptureService } from './service.js';
import { MISC_F_NO_RESPONSE, RecordStore } from './store.js';
import { Ingestor } from './ingest.js';

const bench = createRequire(import.meta.url)(join(projectRoot(), 'native', 'bench.js')) as typeof Bench;

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-judge-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** `n` echo requests sent to 64 peers, each (id, seq) once: none is answered. */
function requests(n: number): ArrayBuffer {
  const specs: RecordSpec[] = [];
  for (let k = 0; k < n; k++)
    specs.push({
      tsNs: 1_700_000_000_000_000_000n + BigInt(k) * 1000n,
      src: '192.168.1.10',
      dst: `10.9.0.${k & 63}`,
      type: 8,
      id: k >>> 16,
      seq: k & 0xffff,
      dir: 1,
      payload: 28,
    });
  return buildBatch(specs);
}

const noResponse = (svc: CaptureService, index: number): boolean =>
  (svc.store.chunkOf(index).misc[index & 0xffff]! & MISC_F_NO_RESPONSE) !== 0;

const lostIn = (a: Aggregates): number => a.peers.reduce((n, p) => n + p.lost, 0);

describe('loss judged at the end of a flood of unanswered requests', () => {
  it('a stopped capture judges its waiting requests a slice a turn, then reports them lost', async () => {
    const COUNT = 262_144;
    const template = requests(COUNT);
    const native: Native = {
      ...loadNative(),
      probe: () => [{ source: 'afpacket', available: true }],
      interfaces: () => [],
      open: () => bench.benchSession(COUNT, 0, false, { template }),
    };
    const svc = new CaptureService({ native, version: 'test', spoolDir: join(tmp, 'spool') });
    const pushed: Aggregates[] = [];
    svc.on((event, data) => {
      if (event === 'aggregates') pushed.push(data as Aggregates);
    });
    try {
      // Each turn, look at the oldest request and the newest, from the start of the capture to its end.
      let partly = 0;
      let looking = true;
      const look = (): void => {
        if (!looking) return;
        if (svc.store.length === COUNT && noResponse(svc, 0) && !noResponse(svc, COUNT - 1)) partly++;
        setImmediate(look);
      };
      setImmediate(look);
      await svc.handle('capture.start', { source: 'afpacket', interfaces: [], snaplen: 256 }, 'ipc');
      // The session ends by itself once its records are delivered (as one whose interface went away): the
      // capture stops with every request still waiting, none answered within the 2 s timeout. A client's
      // capture.stop meanwhile changes nothing.
      while (svc.store.length < COUNT) await new Promise((r) => setTimeout(r, 20));
      await svc.handle('capture.stop', {}, 'ipc');
      while (svc.captureState.state !== 'stopped') await new Promise((r) => setTimeout(r, 20));
      looking = false;
      const state = svc.captureState;
      expect(state).toMatchObject({ state: 'stopped' });
      // Turns ran between the first slice judged and the last (none did when stop() judged all in one).
      expect(partly).toBeGreaterThan(0);
      expect(noResponse(svc, 0) && noResponse(svc, COUNT - 1)).toBe(true);
      expect(lostIn(svc.aggregates())).toBe(COUNT);
      expect(lostIn(pushed.at(-1)!)).toBe(COUNT);
    } finally {
      svc.close();
    }
  });

  it('idle judging takes at most the slice asked for, and says when more is due', () => {
    const store = new RecordStore();
    const ingestor = new Ingestor(store, () => 'eth0');
    ingestor.ingest(requests(1000));
    const echo: EchoMatcher = ingestor.echo;
    // 1 ms of capture time; 3 s idle: all 1000 are due.
    expect(echo.idleDue(3e9)).toBe(true);
    expect(echo.advanceIdle(3e9, 300)).toBe(true);
    const flagged = (): number => {
      let n = 0;
      for (let i = 0; i < 1000; i++) if (store.chunkOf(i).misc[i]! & MISC_F_NO_RESPONSE) n++;
      return n;
    };
    expect(flagged()).toBe(300);
    expect(echo.idleDue(3e9)).toBe(true);
    expect(echo.advanceIdle(3e9, 1000)).toBe(true);
    expect(flagged()).toBe(1000);
    expect(echo.idleDue(3e9)).toBe(false);
    expect(echo.advanceIdle(3e9)).toBe(false);
    // Only what is due: 1.9995 s idle makes the requests of the first 0.5 ms due, not the rest.
    const later = new Ingestor(new RecordStore(), () => 'eth0');
    later.ingest(requests(1000));
    later.echo.advanceIdle(1_999_500_000);
    expect(later.echo.idleDue(1_999_500_000)).toBe(false);
    expect(later.echo.unjudged).toBe(true);
  });
});
