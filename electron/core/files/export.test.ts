import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countLoopTurns } from '../../../test/support/loop-turns.js';
import { decodeRecord, type DecodedRecord } from '../record.js';
import { exportRecords, type ExportFormat, type ExportRow, writeExportFile } from './export.js';
import { encodeRecord, MAX_RECORD_SIZE } from './packet.js';
import { readCaptureFileAll } from './read.js';
import { ipv4Icmp, ipv6Icmp } from './testing/packets.js';

function record(packet: Uint8Array, tsNs: bigint, dir = 0): DecodedRecord {
  const out = new Uint8Array(MAX_RECORD_SIZE);
  encodeRecord(packet, { tsNs, ifindex: 3, dir, origLen: packet.length }, out, 0);
  return decodeRecord(new DataView(out.buffer), 0);
}

/** `count` rows built on demand, so a long export costs no memory; calls `onRow` before each one. */
function* rowsOf(count: number, onRow?: (i: number) => void): Generator<ExportRow> {
  const samples = [
    record(ipv4Icmp({ seq: 1 }), 1_700_000_000_000_000_000n, 0),
    record(ipv6Icmp({ seq: 2, payload: 1200 }), 1_700_000_000_000_000_500n, 1),
  ];
  for (let i = 0; i < count; i++) {
    onRow?.(i);
    yield { no: i + 1, record: samples[i % 2]!, ifname: 'eth0' };
  }
}

async function* asyncRowsOf(count: number, onRow?: (i: number) => void): AsyncGenerator<ExportRow> {
  for (const row of rowsOf(count, onRow)) {
    if (row.no % 1000 === 0) await Promise.resolve();
    yield row;
  }
}

describe('exportRecords', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'icmpcap-export-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const leftovers = (): string[] => fs.readdirSync(dir).filter((name) => name.includes('.partial-'));

  it.each(['pcapng', 'pcap', 'csv', 'ndjson'] as const)(
    'cancelled %s export leaves neither the file nor a temporary file',
    async (format: ExportFormat) => {
      const target = path.join(dir, `cancelled.${format}`);
      const controller = new AbortController();
      const rows = rowsOf(1_000_000, (i) => {
        if (i === 50_000) controller.abort(); // several MiB in: buffers have been handed to the disk
      });
      await expect(exportRecords(rows, { format, path: target, signal: controller.signal })).rejects.toThrow(
        /abort/i,
      );
      expect(fs.existsSync(target)).toBe(false);
      expect(leftovers()).toEqual([]);
    },
  );

  it('keeps an existing file untouched when an async export is cancelled', async () => {
    const target = path.join(dir, 'existing.pcapng');
    fs.writeFileSync(target, 'previous export');
    const controller = new AbortController();
    const rows = asyncRowsOf(500_000, (i) => {
      if (i === 40_000) controller.abort();
    });
    await expect(
      exportRecords(rows, { format: 'pcapng', path: target, signal: controller.signal }),
    ).rejects.toThrow();
    expect(fs.readFileSync(target, 'utf8')).toBe('previous export');
    expect(leftovers()).toEqual([]);
  });

  it('removes the temporary file when the rows fail', async () => {
    const target = path.join(dir, 'failed.csv');
    const rows = rowsOf(100_000, (i) => {
      if (i === 30_000) throw new Error('the store went away');
    });
    await expect(exportRecords(rows, { format: 'csv', path: target })).rejects.toThrow('the store went away');
    expect(fs.existsSync(target)).toBe(false);
    expect(leftovers()).toEqual([]);
  });

  it('says what to do about a missing folder, a file used as a folder and an unknown format', async () => {
    await expect(
      exportRecords([], { format: 'pcapng', path: path.join(dir, 'nope', 'x.pcapng') }),
    ).rejects.toThrow(/does not exist; choose an existing folder/);
    const file = path.join(dir, 'plain-file');
    fs.writeFileSync(file, '');
    await expect(exportRecords([], { format: 'pcap', path: path.join(file, 'x.pcap') })).rejects.toThrow(
      /not a folder/,
    );
    await expect(exportRecords([], { format: 'pcap', path: dir })).rejects.toThrow(/choose a file name/);
    await expect(
      exportRecords([], { format: 'xlsx' as ExportFormat, path: path.join(dir, 'x.xlsx') }),
    ).rejects.toThrow('Unknown export format "xlsx": use one of pcapng, pcap, csv, ndjson');
    expect(fs.existsSync(path.join(dir, 'x.xlsx'))).toBe(false);
    expect(leftovers()).toEqual([]);
  });

  it.each(['csv', 'pcapng'] as const)(
    'a %s export yields to the event loop every few ms, not only when a buffer goes to disk',
    async (format: ExportFormat) => {
      // Rows that cost 50 us each (a slow source): the old writer turned the loop once per full 1 MiB buffer,
      // thousands of rows (hundreds of ms) apart. Counted in rows between turns of the loop, not timed.
      const loop = countLoopTurns();
      const slowRows = rowsOf(12_000, () => {
        const until = performance.now() + 0.05;
        while (performance.now() < until);
        loop.work();
      });
      try {
        const result = await exportRecords(slowRows, { format, path: path.join(dir, `sliced.${format}`) });
        expect(result.records).toBe(12_000);
      } finally {
        loop.stop();
      }
      // 8 ms slices of 50 us rows, checked every 256 rows: at most ~160 + 256 rows between turns.
      expect(loop.most).toBeLessThanOrEqual(1024);
      expect(loop.turns).toBeGreaterThan(12_000 / 1024);
    },
  );

  it('streams more rows than its buffers hold and reports progress a bounded number of times', async () => {
    const target = path.join(dir, 'big.pcapng');
    const calls: [number, number | undefined][] = [];
    const count = 30_001;
    const result = await exportRecords(asyncRowsOf(count), {
      format: 'pcapng',
      path: target,
      total: count,
      onProgress: (done, total) => calls.push([done, total]),
    });
    expect(result.records).toBe(count);
    expect(result.bytes).toBe(fs.statSync(target).size);
    expect(result.bytes).toBeGreaterThan(2 << 20);
    // Progress is checked every 256 rows at most, and the last call reports the whole export.
    expect(calls.length).toBeLessThanOrEqual(1 + Math.ceil(count / 256));
    expect(calls.at(-1)).toEqual([count, count]);
    const back = await readCaptureFileAll(target);
    expect(back.summary.error).toBeUndefined();
    expect(back.records.length).toBe(count);
    const expected = [...rowsOf(4)].map((r) => r.record);
    for (let i = 0; i < 4; i++) {
      expect({ ...back.records[i], data: [...back.records[i]!.data], ifindex: 3 }).toEqual({
        ...expected[i],
        data: [...expected[i]!.data],
      });
    }
  });

  it('writes an empty but valid file for no rows', async () => {
    for (const format of ['pcapng', 'pcap', 'csv', 'ndjson'] as const) {
      const target = path.join(dir, `empty.${format}`);
      const result = await exportRecords([], { format, path: target });
      expect(result.records).toBe(0);
      if (format === 'pcap' || format === 'pcapng') {
        const back = await readCaptureFileAll(target);
        expect(back.summary).toMatchObject({ records: 0, format, sections: 1 });
        expect(back.summary.error).toBeUndefined();
      }
    }
    expect(fs.readFileSync(path.join(dir, 'empty.csv'), 'utf8').split('\r\n')).toHaveLength(2);
    expect(fs.readFileSync(path.join(dir, 'empty.ndjson'), 'utf8')).toBe('');
  });
});

describe('an export slice', () => {
  it('yields to the event loop as often as its sliceMs says at each check', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'icmpcap-export-slice-'));
    try {
      const yields = async (sliceMs: () => number): Promise<number> => {
        let n = 0;
        await writeExportFile(
          { path: path.join(dir, `x${sliceMs()}.bin`), sliceMs },
          undefined,
          async (_sink, tick) => {
            for (let k = 1; k <= 50; k++) {
              const y = tick(k);
              if (y) {
                n++;
                await y;
              }
            }
            return 50;
          },
        );
        return n;
      };
      // 0 ms: every check yields (the capture is behind); a long slice: none of these quick checks does.
      expect(await yields(() => 0)).toBe(50);
      expect(await yields(() => 60_000)).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
