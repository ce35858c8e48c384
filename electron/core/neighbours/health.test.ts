/**
 * Real ND traffic across a veth pair, captured by dumpcap and fed to the health engine as records.
 * RAs and NAs are sent by a raw-socket script (the kernel fills in checksums); the DAD conflict is the
 * kernel's own: the same address is assigned in both namespaces.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NetnsPair, createNetnsPair } from '../../../test/support/netns.js';
import type { DecodedRecord } from '../record.js';
import { NeighbourHealth, type NeighbourFinding } from './health.js';
import { startDumpcap } from './testing/capture.js';

const SENDER = join(import.meta.dirname, 'testing', 'nd_send.py');
let pair: NetnsPair;
let tmp: string;

function analyse(records: DecodedRecord[], learnSeconds: number): NeighbourFinding[] {
  const health = new NeighbourHealth({ learnSeconds, floodPerSecond: 10 });
  records.forEach((r, i) => health.observe(r, i + 1, 'veth'));
  return [...health.findings];
}

function send(plan: object[]): void {
  pair.exec(pair.b, ['python3', SENDER, pair.ifB, JSON.stringify(plan)]);
}

beforeAll(() => {
  pair = createNetnsPair('nd');
  tmp = mkdtempSync(join(tmpdir(), 'icmpcap-nd-'));
  for (const a of ['fe80::1', 'fe80::bad', 'fe80::dead', 'fe80::5'])
    pair.exec(pair.b, ['ip', '-6', 'addr', 'add', `${a}/64`, 'dev', pair.ifB, 'nodad']);
});

afterAll(() => {
  pair?.destroy();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('router health', () => {
  it('flags a rogue router, changes, lifetime 0, NA flip-flop, a false router flag and an RA flood', async () => {
    const file = join(tmp, 'ra.pcapng');
    const cap = await startDumpcap(pair.a, pair.ifA, file);
    const legit = {
      kind: 'ra',
      src: 'fe80::1',
      mac: '02:00:00:00:00:01',
      prefixes: ['2001:db8:1::/64'],
      mtu: 1500,
      rdnss: ['2001:db8::53'],
    };
    send([
      { ...legit, repeat: 2, gap: 0.1 },
      { kind: 'sleep', seconds: 1.3 },
      legit,
      { kind: 'ra', src: 'fe80::bad', mac: '02:00:00:00:0b:ad', prefixes: ['2001:db8:bad::/64'] },
      { ...legit, prefixes: ['2001:db8:2::/64'], o: true, rdnss: ['2001:db8::54'] },
      { kind: 'ra', src: 'fe80::dead', lifetime: 0 },
      { kind: 'na', src: 'fe80::5', target: '2001:db8:77::55', mac: '02:00:00:00:00:55', o: true },
      { kind: 'na', src: 'fe80::5', target: '2001:db8:77::55', mac: '02:00:00:00:00:66', o: true },
      { kind: 'na', src: 'fe80::5', target: 'fe80::5', mac: '02:00:00:00:00:05', r: true },
      { kind: 'sleep', seconds: 1.2 },
      { ...legit, prefixes: ['2001:db8:2::/64'], o: true, rdnss: ['2001:db8::54'], repeat: 15, gap: 0.01 },
    ]);
    const records = await cap.stop();
    const findings = analyse(records, 1);
    expect(findings.map((f) => f.kind)).toEqual([
      'new-router',
      'router-changed',
      'router-lifetime-zero',
      'na-flip-flop',
      'router-flag-non-router',
      'ra-flood',
    ]);
    const at = (n: number): DecodedRecord => records[n - 1]!;
    const [rogue, changed, zero, flip, flag, flood] = findings as [
      NeighbourFinding,
      NeighbourFinding,
      NeighbourFinding,
      NeighbourFinding,
      NeighbourFinding,
      NeighbourFinding,
    ];
    expect(rogue.subject).toBe('fe80::bad');
    expect(rogue.detail).toContain('2001:db8:bad::/64');
    expect(rogue.evidence.map((n) => [at(n).src, at(n).type])).toEqual([['fe80::bad', 134]]);
    expect(changed.detail).toContain('prefixes 2001:db8:1::/64 -> 2001:db8:2::/64');
    expect(changed.detail).toContain('O flag 0 -> 1');
    expect(changed.detail).toContain('RDNSS 2001:db8::53 -> 2001:db8::54');
    expect(changed.detail).not.toContain('MTU');
    expect(changed.evidence.map((n) => at(n).src)).toEqual(['fe80::1', 'fe80::1']);
    expect(zero.evidence.map((n) => at(n).src)).toEqual(['fe80::dead']);
    expect(flip.detail).toContain('02:00:00:00:00:55 to 02:00:00:00:00:66');
    expect(flip.evidence.map((n) => at(n).type)).toEqual([136, 136]);
    expect(flag.subject).toBe('fe80::5');
    expect(flood.evidence.length).toBeGreaterThan(10);
    expect(flood.evidence.every((n) => at(n).type === 134)).toBe(true);

    // With fe80::bad on the allow list and no learning period, only the unlisted routers are flagged.
    const allowed = new NeighbourHealth({ allowRouters: ['fe80::1', 'fe80::bad'], floodPerSecond: 100 });
    records.forEach((r, i) => allowed.observe(r, i + 1, 'veth'));
    expect(allowed.findings.filter((f) => f.kind.includes('router')).map((f) => [f.kind, f.subject])).toEqual(
      [
        ['router-changed', 'fe80::1'],
        ['router-lifetime-zero', 'fe80::dead'],
        ['router-flag-non-router', 'fe80::5'],
      ],
    );
  });
});

describe('duplicate address detection', () => {
  it('flags a real DAD conflict, and repeated failures, with the probe and the answer', async () => {
    const file = join(tmp, 'dad.pcapng');
    const addr = '2001:db8:77::99';
    pair.exec(pair.b, ['ip', '-6', 'addr', 'add', `${addr}/64`, 'dev', pair.ifB, 'nodad']);
    const cap = await startDumpcap(pair.a, pair.ifA, file);
    for (let attempt = 0; attempt < 3; attempt++) {
      pair.exec(pair.a, ['ip', '-6', 'addr', 'add', `${addr}/64`, 'dev', pair.ifA]);
      const deadline = Date.now() + 10_000;
      while (!pair.exec(pair.a, ['ip', '-6', 'addr', 'show', 'dev', pair.ifA]).includes('dadfailed')) {
        if (Date.now() > deadline) throw new Error('the kernel never reported dadfailed');
        execFileSync('sleep', ['0.1']);
      }
      pair.exec(pair.a, ['ip', '-6', 'addr', 'del', `${addr}/64`, 'dev', pair.ifA]);
    }
    const records = await cap.stop();
    const findings = analyse(records, 0);
    const conflicts = findings.filter((f) => f.kind === 'dad-conflict');
    expect(conflicts).toHaveLength(3);
    for (const c of conflicts) {
      expect(c.subject).toBe(addr);
      const [probe, answer] = c.evidence.map((n) => records[n - 1]!);
      expect([probe!.src, probe!.type]).toEqual(['::', 135]);
      expect([answer!.src, answer!.type]).toEqual([addr, 136]);
    }
    const repeated = findings.filter((f) => f.kind === 'dad-repeated');
    expect(repeated).toHaveLength(1);
    expect(repeated[0]!.evidence).toHaveLength(6);
    expect(findings.filter((f) => !f.kind.startsWith('dad'))).toEqual([]);
  });
});

const V4_SENDER = join(import.meta.dirname, 'testing', 'v4_send.py');

function hasScapy(): boolean {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import scapy.all'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe.runIf(hasScapy())('ICMPv4 router discovery and redirects', () => {
  it('flags a new and a changed RFC 1256 router and a redirect from a host that is not the gateway', async () => {
    const file = join(tmp, 'v4.pcapng');
    // Every sender below is a real address on the wire: extra addresses of the sending side.
    for (const a of ['198.51.100.3', '198.51.100.9'])
      pair.exec(pair.b, ['ip', 'addr', 'add', `${a}/24`, 'dev', pair.ifB]);
    const cap = await startDumpcap(pair.a, pair.ifA, file, 'icmp');
    const to = pair.v4.a;
    const plan = [
      { kind: 'rdisc', src: pair.v4.b, dst: to, addresses: [pair.v4.b] },
      { kind: 'sleep', seconds: 1.3 },
      { kind: 'rdisc', src: pair.v4.b, dst: to, addresses: [pair.v4.b] },
      { kind: 'rdisc', src: '198.51.100.3', dst: to, addresses: ['198.51.100.3'] },
      { kind: 'rdisc', src: pair.v4.b, dst: to, addresses: [pair.v4.b, '198.51.100.3'] },
      // The gateway (198.51.100.2) may redirect; 198.51.100.9 may not.
      { kind: 'redirect', src: pair.v4.b, dst: to, gateway: '198.51.100.3', target: '203.0.113.7' },
      { kind: 'redirect', src: '198.51.100.9', dst: to, gateway: '198.51.100.9', target: '203.0.113.7' },
    ];
    pair.exec(pair.b, ['/usr/bin/python3', V4_SENDER, pair.ifB, JSON.stringify(plan)]);
    const records = await cap.stop();
    // This host's routing: 203.0.113.0/24 via 198.51.100.2 (as `ip route` would say).
    const health = new NeighbourHealth({
      learnSeconds: 1,
      gatewayFor: (d) => (d.startsWith('203.0.113.') ? pair.v4.b : undefined),
    });
    records.forEach((r, i) => health.observe(r, i + 1, 'veth'));
    const at = (n: number): DecodedRecord => records[n - 1]!;
    expect(health.findings.map((f) => [f.kind, f.subject])).toEqual([
      ['new-router', '198.51.100.3'],
      ['router-changed', pair.v4.b],
      ['redirect-not-gateway', '198.51.100.9'],
    ]);
    const [rogue, changed, redirect] = health.findings as [
      NeighbourFinding,
      NeighbourFinding,
      NeighbourFinding,
    ];
    expect(rogue.evidence.map((n) => [at(n).src, at(n).type])).toEqual([['198.51.100.3', 9]]);
    expect(changed.detail).toContain(
      `addresses ${pair.v4.b} (preference 0) -> 198.51.100.2 (preference 0), 198.51.100.3`,
    );
    expect(changed.evidence.map((n) => at(n).type)).toEqual([9, 9]);
    expect(redirect.detail).toContain('for 203.0.113.7 to 198.51.100.9');
    expect(redirect.evidence.map((n) => [at(n).src, at(n).type])).toEqual([['198.51.100.9', 5]]);
    expect(health.routerList().map((r) => [r.family, r.address])).toEqual([
      [4, pair.v4.b],
      [4, '198.51.100.3'],
    ]);
  });
});
