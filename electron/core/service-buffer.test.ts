/**
 * capture.start's kernel buffer (`bufferBytes`, `icmpcap capture -B`): hostile values are refused at the
 * contract and leave the service usable; a size the source cannot take here is a 'bad-request' naming the range,
 * before anything is opened; a valid one reaches the addon laid out for the source (kernel-buffer.ts); the
 * service's own default (`serve --buffer-size`) applies when a request names none.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpenConfig } from '../../native/index.js';
import { kernelBuffer } from './kernel-buffer.js';
import { type Native, loadNative } from './native.js';
import { CaptureService } from './service.js';

const MIB = 2 ** 20;

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-buffer-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A service whose addon records what it was asked to open, and opens nothing. */
function serviceOpening(bufferBytes?: number): { svc: CaptureService; opened: OpenConfig[] } {
  const opened: OpenConfig[] = [];
  const interfaces = (['lo', 'eth0', 'eth1'] as const).map((name, i) => ({
    index: i + 1,
    name,
    up: true,
    running: true,
    loopback: name === 'lo',
    mtu: 1500,
    addresses: [],
  }));
  const native: Native = {
    ...loadNative(),
    probe: () => [{ source: 'afpacket', available: true }],
    interfaces: () => interfaces,
    open: (config: OpenConfig) => {
      opened.push(config);
      throw new Error('opened nothing (test)');
    },
  };
  const svc = new CaptureService({
    native,
    version: 'test',
    spoolDir: join(tmp, 'spool'),
    ...(bufferBytes !== undefined ? { bufferBytes } : {}),
  });
  return { svc, opened };
}

describe("capture.start's kernel buffer", () => {
  it('refuses hostile values at the contract, opens nothing, and stays usable', async () => {
    const { svc, opened } = serviceOpening();
    try {
      const hostile: unknown[] = [
        '67108864',
        -MIB,
        0,
        MIB - 1,
        1.5 * MIB + 0.5,
        NaN,
        Infinity,
        -Infinity,
        2 ** 40 + 1,
        Number.MAX_VALUE,
        2 ** 53 + 2,
        null,
        true,
        {},
        [64 * MIB],
        { valueOf: () => 64 * MIB },
        64n * BigInt(MIB),
      ];
      for (const bufferBytes of hostile)
        await expect(
          svc.handle('capture.start', { source: 'afpacket', bufferBytes }, 'ipc'),
          String(bufferBytes),
        ).rejects.toMatchObject({ code: 'bad-request' });
      expect(opened).toEqual([]);
      // Still usable: a valid size gets as far as the addon.
      await expect(
        svc.handle('capture.start', { source: 'afpacket', bufferBytes: 64 * MIB }, 'ipc'),
      ).rejects.toMatchObject({ code: 'capture-failed', message: 'opened nothing (test)' });
      expect(opened).toHaveLength(1);
    } finally {
      svc.close();
    }
  });

  it('refuses a size the source cannot take here with the range, before opening anything', async () => {
    const { svc, opened } = serviceOpening();
    try {
      await expect(
        svc.handle('capture.start', { source: 'afpacket', bufferBytes: 2048 * MIB }, 'ipc'),
      ).rejects.toMatchObject({
        code: 'bad-request',
        message:
          'AF_PACKET takes 1 to 1024 MiB on this machine (one packet ring of 64 KiB to 1 GiB, 1 GiB in all)',
      });
      await expect(
        svc.handle('capture.start', { source: 'module', bufferBytes: 2 ** 40 }, 'ipc'),
      ).rejects.toMatchObject({
        code: 'bad-request',
        message: /^the module takes \d+ to \d+ MiB on this machine/,
      });
      expect(opened).toEqual([]);
      expect(svc.captureState.state).not.toBe('error');
    } finally {
      svc.close();
    }
  });

  it('hands the addon the buffer laid out for the source', async () => {
    const { svc, opened } = serviceOpening();
    try {
      const start = (params: object) => svc.handle('capture.start', params, 'ipc').catch(() => undefined);
      await start({ source: 'afpacket', bufferBytes: 64 * MIB });
      await start({ source: 'afpacket', interfaces: ['eth0', 'eth1'], bufferBytes: 64 * MIB });
      await start({ source: 'module', bufferBytes: 64 * MIB, snaplen: 1500 });
      await start({ source: 'module' });
      await start({ source: 'afpacket' });
      expect(opened.map((c) => c.ringBytes)).toEqual([
        64 * MIB,
        32 * MIB,
        kernelBuffer('module', { bytes: 64 * MIB, snaplen: 1500 }).ringBytes,
        kernelBuffer('module').ringBytes, // chosen for the machine, as before -B
        undefined, // the helper's own default
      ]);
      expect(opened[1]).toMatchObject({ source: 'afpacket', interfaces: ['eth0', 'eth1'] });
    } finally {
      svc.close();
    }
  });

  it("uses the service's own buffer when a request names none (serve --buffer-size)", async () => {
    const { svc, opened } = serviceOpening(8 * MIB);
    try {
      await svc.handle('capture.start', { source: 'afpacket' }, 'ipc').catch(() => undefined);
      await svc
        .handle('capture.start', { source: 'afpacket', bufferBytes: 2 * MIB }, 'ipc')
        .catch(() => undefined);
      expect(opened.map((c) => c.ringBytes)).toEqual([8 * MIB, 2 * MIB]);
    } finally {
      svc.close();
    }
  });
});
