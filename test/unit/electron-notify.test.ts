/**
 * Alert firings become desktop notifications in the Electron main process: a real service and rule engine
 * fed records, a stand-in Notification class in place of Electron's.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AlertRulesInfo } from '../../electron/common/insights.js';
import { attachInsights } from '../../electron/core/insights/index.js';
import { CaptureService } from '../../electron/core/service.js';
import { type NotifierElectron, notifyFirings } from '../../electron/main/notify.js';
import { buildBatch } from '../support/records.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function standIn(supported = true) {
  const shown: { title: string; body: string }[] = [];
  const clicks: (() => void)[] = [];
  const electron: NotifierElectron = {
    Notification: class {
      static isSupported(): boolean {
        return supported;
      }
      constructor(private readonly options: { title?: string; body?: string }) {}
      on(_event: 'click', listener: () => void): this {
        clicks.push(listener);
        return this;
      }
      show(): void {
        shown.push({ title: this.options.title ?? '', body: this.options.body ?? '' });
      }
    },
  };
  return { electron, shown, clicks };
}

async function serviceWithRule(rule: string) {
  const tmp = mkdtempSync(join(tmpdir(), 'icmpcap-notify-'));
  dirs.push(tmp);
  const service = new CaptureService({ native: new Error('feed only'), version: 'test', spoolDir: tmp });
  const insights = attachInsights(service, { rulesFile: join(tmp, 'alerts.conf'), log: () => undefined });
  const info = (await service.handle('alerts.setRules', { rules: [rule] }, 'ipc')) as AlertRulesInfo;
  expect(info.saved).toBe(true);
  service.startFeed();
  return { service, insights };
}

const burst = (n: number, from = 0) =>
  buildBatch(
    Array.from({ length: n }, (_, i) => ({
      tsNs: 1_700_000_000_000_000_000n + BigInt(from + i) * 1_000_000n,
      src: '192.0.2.1',
      dst: '192.0.2.2',
      type: 3,
      code: 3,
    })),
  );

describe('desktop notifications of alert firings', () => {
  it('shows one notification per firing (the cool-down holds the rest), and a click brings the window', async () => {
    const { service, insights } = await serviceWithRule('count > 2; cooldown 60s; name burst');
    const { electron, shown, clicks } = standIn();
    let clicked = 0;
    notifyFirings(electron, service, () => clicked++);
    service.feed(burst(10));
    service.feed(burst(10, 10));
    expect(shown).toEqual([{ title: 'icmpcap alert: burst', body: 'count 3 > 2 over 1 s (3 packets)' }]);
    clicks[0]!();
    expect(clicked).toBe(1);
    insights.close();
    service.close();
  });

  it('stays quiet where the desktop has no notifications, and after it is switched off', async () => {
    const { service, insights } = await serviceWithRule('count > 2; cooldown 1ms; name burst');
    const none = standIn(false);
    notifyFirings(none.electron, service);
    const some = standIn();
    const off = notifyFirings(some.electron, service);
    service.feed(burst(5));
    expect(none.shown).toEqual([]);
    expect(some.shown.length).toBeGreaterThan(0);
    const before = some.shown.length;
    off();
    service.feed(burst(5, 100));
    expect(some.shown.length).toBe(before);
    insights.close();
    service.close();
  });
});
