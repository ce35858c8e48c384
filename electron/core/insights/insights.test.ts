/**
 * The insights requests over the service's one entry point, with real parts: a real `traceroute -I` and a
 * real unreachable through three forwarding routers, captured by dumpcap and opened in the service as a
 * user opens a file; the alert rules file written and read back.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertRulesInfo, PathInfo, ProblemInfo, RuleCheck } from '../../common/insights.js';
import type { Job } from '../../common/contract.js';
import { H1, H2, ROUTERS, RouterChain, hasChainTools } from '../answers/testing/chain.js';
import { startDumpcap } from '../neighbours/testing/capture.js';
import { CaptureService } from '../service.js';
import { type Insights, attachInsights } from './index.js';

let tmp: string;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-insights-'));
});
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function newService(name: string): { service: CaptureService; insights: Insights } {
  const service = new CaptureService({
    native: new Error('no capture in this test: files only'),
    version: 'test',
    spoolDir: join(tmp, `spool-${name}`),
  });
  const insights = attachInsights(service, {
    rulesFile: join(tmp, `${name}.conf`),
    alerts: {},
    pushMs: 50,
    log: () => undefined,
  });
  return { service, insights };
}

async function openFile(service: CaptureService, path: string): Promise<void> {
  const done = new Promise<Job>((resolve) =>
    service.on((event, data) => {
      const job = data as Job;
      if (event === 'job' && job.state !== 'running') resolve(job);
    }),
  );
  await service.handle('file.open', { path }, 'ipc');
  expect((await done).state).toBe('done');
}

describe.runIf(hasChainTools())('problems and paths over the contract', () => {
  it('rebuilds a real traceroute -I path and groups a port unreachable by its flow', async () => {
    const chain = new RouterChain();
    chain.setUp();
    const { service, insights } = newService('chain');
    try {
      const file = join(tmp, 'chain.pcapng');
      const cap = await startDumpcap(chain.names.h1, 'eth0', file, 'icmp');
      chain.ns(chain.names.h1, 'traceroute', '-I', '-n', '-q', '1', '-w', '1', H2);
      // A real UDP datagram to a closed port on h2: its port unreachable quotes the flow.
      chain.ns(
        chain.names.h1,
        'python3',
        '-c',
        `import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('${H1}', 40123)); s.sendto(b'x', ('${H2}', 9))`,
      );
      await new Promise((r) => setTimeout(r, 500));
      await cap.stop();
      const pushed: string[] = [];
      service.on((event) => pushed.push(event));
      await openFile(service, file);

      const paths = (await service.handle('paths.list', {}, 'ipc')) as PathInfo[];
      const path = paths.find((p) => p.destination === H2 && !p.inferred);
      expect(path?.hops.map((h) => h.addresses[0])).toEqual([...ROUTERS, H2]);
      expect(path?.reached).toBe(true);
      expect(path?.hops.every((h) => h.rttMedianMs !== null && h.lossPct === 0)).toBe(true);

      const problems = (await service.handle('problems.list', {}, 'ipc')) as ProblemInfo[];
      const udp = problems.find((p) => p.flow?.protocol === 'udp');
      expect(udp?.flow).toMatchObject({ src: H1, dst: H2, srcPort: 40123, dstPort: 9 });
      expect(udp?.events[0]?.what).toMatch(/port unreachable/);
      expect(udp?.evidence.length).toBe(1);

      // The views are told without asking: the throttled pushes carry the same answers.
      await expect.poll(() => pushed.includes('paths') && pushed.includes('problems')).toBe(true);
      // Bad parameters are refused where they enter, as every request is.
      await expect(service.handle('paths.list', { all: true }, 'ipc')).rejects.toThrow(/bad parameters/);
    } finally {
      insights.close();
      service.close();
      chain.tearDown();
    }
  }, 60_000);
});

describe('alert rules over the contract', () => {
  it('points at the bad part, saves nothing while a rule is bad, then saves and reads back', async () => {
    const { service, insights } = newService('rules');
    try {
      const checks = (await service.handle(
        'alerts.check',
        { rules: ['icmp.type == 3 rate > 50/s for 5s', 'icmp.type == 3 && count > 5'] },
        'ipc',
      )) as RuleCheck[];
      expect(checks[0]).toEqual({ ok: true, name: 'icmp.type == 3 rate > 50/s for 5s' });
      expect(checks[1]).toMatchObject({ ok: false, position: 17 });

      const refused = (await service.handle(
        'alerts.setRules',
        { rules: ['count > 5; cooldown soon'] },
        'ipc',
      )) as AlertRulesInfo;
      expect(refused.saved).toBe(false);
      expect(refused.rules[0]?.check).toMatchObject({ ok: false, position: 'count > 5; cooldown '.length });
      expect(existsSync(join(tmp, 'rules.conf'))).toBe(false);

      const saved = (await service.handle(
        'alerts.setRules',
        { rules: ['icmp.type == 3 count > 5; cooldown 10s; name unreachables', 'new router'] },
        'ipc',
      )) as AlertRulesInfo;
      expect(saved.saved).toBe(true);
      expect(readFileSync(join(tmp, 'rules.conf'), 'utf8')).toContain(
        'icmp.type == 3 count > 5; cooldown 10s; name unreachables\nnew router\n',
      );
      const again = (await service.handle('alerts.rules', {}, 'ipc')) as AlertRulesInfo;
      expect(again.rules.map((r) => r.text)).toEqual([
        'icmp.type == 3 count > 5; cooldown 10s; name unreachables',
        'new router',
      ]);
      await expect(service.handle('alerts.setRules', { rules: ['a\nb'] }, 'ipc')).rejects.toThrow(/one line/);
    } finally {
      insights.close();
      service.close();
    }
  });
});
