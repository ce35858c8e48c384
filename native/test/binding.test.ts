// The binding's session semantics, with the synthetic source that feeds records through the
// same batching + ThreadSafeFunction path as a capture. Run: npx vitest run native/test/binding.test.ts
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { hugeAdvisedBytes, kernelHasHugePages } from '../../test/support/huge-pages.js';
import type * as Bench from '../bench.js';
import type * as Native from '../index.js';

const native = createRequire(import.meta.url)('../index.js') as typeof Native;
// The synthetic source lives in the bench build (icmpcap_bench.node), not in icmpcap.node.
const bench = createRequire(import.meta.url)('../bench.js') as typeof Bench;

function collect(session: Native.Session): Promise<{
  records: number;
  batches: number;
  bytes: number;
  events: Native.SessionEvent[];
  seqOk: boolean;
}> {
  return new Promise((resolve) => {
    const out = { records: 0, batches: 0, bytes: 0, events: [] as Native.SessionEvent[], seqOk: true };
    let expectSeq = 0;
    session.start(
      (ab, info) => {
        out.batches++;
        out.records += info.records;
        out.bytes += info.bytes;
        expect(ab.byteLength).toBe(info.bytes);
        expect(info.records).toBeLessThanOrEqual(4096);
        expect(info.bytes).toBeLessThanOrEqual(1 << 20);
        const dv = new DataView(ab);
        let off = 0;
        for (let i = 0; i < info.records; i++) {
          if (dv.getUint16(off + 32, true) !== (expectSeq & 0xffff)) out.seqOk = false;
          expectSeq++;
          off += (dv.getUint32(off, true) + 7) & ~7;
        }
        if (off !== info.bytes) out.seqOk = false;
      },
      (ev) => {
        out.events.push(ev);
        if (ev.type === 'stopped') resolve(out);
      },
    );
  });
}

describe('native binding', () => {
  it('exports the ABI constants, and no bench entry in the production build', () => {
    expect(native.ABI_VERSION).toBe(2);
    expect(native.RECORD_HEADER_SIZE).toBe(72);
    expect(native.MAX_HELD_BATCHES).toBe(64);
    expect(bench.MAX_HELD_BATCHES).toBe(native.MAX_HELD_BATCHES);
    const raw = createRequire(import.meta.url)('../build/Release/icmpcap.node') as Record<string, unknown>;
    expect(Object.keys(raw).sort()).toEqual([
      'ABI_VERSION',
      'InterfaceWatcher',
      'MAX_HELD_BATCHES',
      'RECORD_HEADER_SIZE',
      'Session',
      'adviseHugePages',
      'encodeSpoolBlocks',
      'encodeSpoolRuns',
      'interfaces',
      'open',
      'probe',
      'routeGet',
      'routesV4',
      'watchInterfaces',
    ]);
  });

  it('delivers every record exactly once, in order, in bounded batches, then stopped', async () => {
    const s = bench.benchSession(100_000, 28, false);
    const r = await collect(s);
    expect(r.records).toBe(100_000);
    expect(r.bytes).toBe(100_000 * 104);
    expect(r.seqOk).toBe(true);
    expect(r.events.map((e) => e.type)).toEqual(['stopped']);
    const st = s.stats();
    expect(st.delivered).toBe(100_000);
    expect(st.batches).toBe(r.batches);
    s.close();
    s.close();
  });

  it('gives the event loop a turn between batches when JavaScript cannot keep up with the reader', async () => {
    // A reader far faster than its consumer (5 ms a batch here): Node runs up to 1000 queued calls of a
    // ThreadSafeFunction in one go, so without a budget per turn every batch ran back to back and timers,
    // I/O and the UI's requests waited until the capture ended.
    const s = bench.benchSession(400_000, 28, false);
    let turns = 0;
    let ticking = true;
    const tick = (): void => {
      turns++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const perTurn = new Map<number, number>();
    let records = 0;
    await new Promise<void>((resolve) => {
      s.start(
        (_ab, info) => {
          records += info.records;
          perTurn.set(turns, (perTurn.get(turns) ?? 0) + 1);
          const until = performance.now() + 5;
          while (performance.now() < until); // the service's work on a batch
        },
        (ev) => {
          if (ev.type === 'stopped') resolve();
        },
      );
    });
    ticking = false;
    s.close();
    expect(records).toBe(400_000);
    expect(perTurn.size).toBeGreaterThan(10);
    // The budget is 8 ms a turn: two 5 ms batches, and up to as many again from the queue after a drain.
    expect(Math.max(...perTurn.values())).toBeLessThanOrEqual(4);
  });

  it('hold(n): batches the consumer still holds keep the reader back, the ring counts the loss', async () => {
    // 2 M records/s into a 64 KiB modelled ring: while JavaScript holds MAX_HELD_BATCHES, nothing more is delivered
    // and what arrives is dropped in the ring, counted; hold(0) lets the reader go on.
    const s = bench.benchSession(1e9, 28, false, { rate: 2_000_000, ringBytes: 1 << 16 });
    let batches = 0;
    s.start(
      () => {
        batches++;
        s.hold(bench.MAX_HELD_BATCHES);
      },
      () => undefined,
    );
    const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
    while (batches === 0) await sleep(5);
    await sleep(50); // batches already queued arrive
    const held = batches;
    const droppedBefore = s.stats().droppedKernel;
    await sleep(300);
    expect(batches).toBe(held); // held back: nothing delivered for 300 ms
    expect(s.stats().droppedKernel).toBeGreaterThan(droppedBefore + 100_000); // the ring overflowed, counted
    s.hold(0);
    let more = 0;
    const start = batches;
    for (let i = 0; i < 100 && more === 0; i++) {
      await sleep(10);
      more = batches - start;
    }
    expect(more).toBeGreaterThan(0); // the reader went on
    s.stop();
    s.close();
    expect(() => s.hold(-1)).toThrow(TypeError);
    expect(() => s.hold(1.5)).toThrow(TypeError);
    expect(() => (s.hold as (n?: unknown) => void)('3')).toThrow(TypeError);
  });

  it('a quarter-second stall of the event loop at 500 k records/s loses (almost) nothing', async () => {
    // The module's default ring (1 MiB a CPU) holds 20 ms of this; the queue to JavaScript the rest. With a
    // queue of 8 batches (65 ms) the stall lost about two thirds of what arrived during it.
    const s = bench.benchSession(1e9, 28, false, { rate: 500_000, ringBytes: 1 << 20 });
    let records = 0;
    s.start(
      (batch) => {
        records += batch.byteLength;
      },
      () => undefined,
    );
    const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
    while (records === 0) await sleep(5);
    await sleep(200);
    const before = s.stats().droppedKernel;
    const stalled = performance.now();
    while (performance.now() - stalled < 250); // a collection, a long turn: nothing is taken in
    await sleep(200); // the queue drains
    const lost = s.stats().droppedKernel - before;
    s.stop();
    s.close();
    expect(lost).toBeLessThan(0.1 * 125_000);
  });

  it('stop() is idempotent and close() before or without start() is safe', () => {
    const a = bench.benchSession(10, 28, false);
    a.stop();
    a.stop();
    a.close();
    a.close();
    expect(() =>
      a.start(
        () => {},
        () => {},
      ),
    ).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  it('start() twice throws EBUSY', async () => {
    const s = bench.benchSession(10, 28, false);
    const done = collect(s);
    expect(() =>
      s.start(
        () => {},
        () => {},
      ),
    ).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    await done;
    s.close();
  });

  it('stop() during delivery ends with stopped as the last event', async () => {
    const s = bench.benchSession(1e9, 28, false);
    const done = collect(s);
    setTimeout(() => s.stop(), 20);
    const r = await done;
    expect(r.events.at(-1)?.type).toBe('stopped');
    expect(r.records).toBeGreaterThan(0);
    expect(r.records).toBe(s.stats().delivered);
    expect(r.seqOk).toBe(true);
    s.close();
  });

  it.skipIf(process.getuid?.() !== 0)('close() releases every fd and joins every thread', async () => {
    const fds = () => readdirSync('/proc/self/fd').length;
    const threads = () => readdirSync('/proc/self/task').length;
    const run = async () => {
      const s = native.open({ source: 'afpacket', interfaces: ['lo'], ringBytes: 65536 });
      await new Promise<void>((resolve) => {
        s.start(
          () => {},
          (ev) => {
            if (ev.type === 'stopped') resolve();
          },
        );
        s.stop();
      });
      s.close();
    };
    await run(); // first use creates the thread pool and caches
    const [fd0, th0] = [fds(), threads()];
    for (let i = 0; i < 20; i++) await run();
    const w = native.watchInterfaces(() => {});
    w.close();
    expect(fds()).toBe(fd0);
    // Every thread of ours is joined by close(); a thread the runtime itself starts or ends meanwhile (CI saw
    // one more, once, under load) is given a moment. A leak would be one thread per run: 20 more.
    for (let k = 0; k < 50 && threads() > th0; k++) await new Promise((r) => setTimeout(r, 100));
    expect(threads()).toBeLessThanOrEqual(th0);
  });

  it('validates open() config with EINVAL and names the option', () => {
    const bad: unknown[] = [
      undefined,
      { source: 'nope' },
      { source: 'afpacket', snaplen: 10 },
      { source: 'afpacket', interfaces: 'eth0' },
      { source: 'afpacket', ringBytes: -1 },
      { source: 'afpacket', netns: 'x' },
    ];
    for (const cfg of bad) {
      expect(() => native.open(cfg as Native.OpenConfig)).toThrow(
        expect.objectContaining({ code: 'EINVAL' }),
      );
    }
    expect(() => native.open({ source: 'afpacket', snaplen: 10 })).toThrow(/snaplen/);
  });

  it('probe() reports both sources with a reason and a kind (for the advice) when unavailable', () => {
    const p = native.probe();
    expect(p.map((x) => x.source).sort()).toEqual(['afpacket', 'module']);
    for (const x of p) {
      if (!x.available) {
        expect(x.reason).toBeTruthy();
        expect(x.kind).toBeTruthy();
      } else {
        expect(x.via).toBe(x.source === 'afpacket' ? 'helper' : 'direct');
      }
    }
  });

  it('interfaces() lists lo', () => {
    const lo = native.interfaces().find((i) => i.name === 'lo');
    expect(lo).toMatchObject({ loopback: true, up: true });
    expect(lo?.addresses).toEqual(
      expect.arrayContaining([{ family: 4, address: '127.0.0.1', prefixLength: 8 }]),
    );
  });

  it('adviseHugePages: a large array is mapped for huge pages, its bytes kept; a small one is left; bad input throws', () => {
    const before = hugeAdvisedBytes();
    const big = new Float64Array(new SharedArrayBuffer(32 << 20));
    big[12345] = 1.5;
    const advised = native.adviseHugePages(big.subarray(1024)); // a view's own bytes, from its offset on
    if (!kernelHasHugePages()) {
      expect(advised).toBe(0); // a kernel without transparent huge pages: the call is harmless
      return;
    }
    // 32 MiB less what falls outside the first and last 2 MiB boundaries inside the view.
    expect(advised % (2 << 20)).toBe(0);
    expect(advised).toBeGreaterThanOrEqual((32 << 20) - 2 * (2 << 20));
    expect(hugeAdvisedBytes() - before).toBeGreaterThanOrEqual(advised);
    big.fill(2, 0, 1 << 20);
    expect(big[12345]).toBe(2);
    expect(big[big.length - 1]).toBe(0);
    expect(native.adviseHugePages(new Uint8Array(1 << 20))).toBe(0); // holds no aligned huge page
    expect(hugeAdvisedBytes() - before).toBeLessThan(advised + (4 << 20));
    for (const bad of [undefined, {}, new ArrayBuffer(8), 'x'])
      expect(() => native.adviseHugePages(bad as unknown as Float64Array)).toThrow(/needs a typed array/);
  });
});
