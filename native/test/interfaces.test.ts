// interfaces(), watchInterfaces() and probe() through rtnetlink, in a fresh network namespace.
// Run: npx vitest run native/test/interfaces.test.ts
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetnsPair, fixturesDir, sh } from './netns.js';

const isRoot = process.getuid?.() === 0;

interface Iface {
  index: number;
  name: string;
  up: boolean;
  running: boolean;
  loopback: boolean;
  mtu: number;
  addresses: { family: number; address: string; prefixLength: number }[];
}
type WatchLine = { snapshot: Iface[] } | { type: string; iface: Iface } | string;

describe.skipIf(!isRoot)('interfaces and watchInterfaces', () => {
  let net: NetnsPair;
  beforeAll(() => {
    net = new NetnsPair();
    net.addVeth('vA', 'vB', ['10.203.0.1', '10.203.0.2'], ['fd00:203::1', 'fd00:203::2']);
  });
  afterAll(() => net?.destroy());

  it('lists the namespace interfaces with flags, mtu and addresses, and follows changes', async () => {
    const child = spawn(
      'ip',
      ['netns', 'exec', net.b, process.execPath, path.join(fixturesDir, 'watch.cjs')],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    const lines: WatchLine[] = [];
    let buf = '';
    const waiters: { pred: (l: WatchLine) => boolean; resolve: (l: WatchLine) => void }[] = [];
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = JSON.parse(buf.slice(0, nl)) as WatchLine;
        buf = buf.slice(nl + 1);
        lines.push(line);
        for (const w of [...waiters])
          if (w.pred(line)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(line);
          }
      }
    });
    const waitFor = (pred: (l: WatchLine) => boolean): Promise<WatchLine> =>
      new Promise((resolve) => {
        const found = lines.find(pred);
        if (found !== undefined) resolve(found);
        else waiters.push({ pred, resolve });
      });
    await waitFor((l) => l === 'READY');
    const snap = (lines[0] as { snapshot: Iface[] }).snapshot;
    const lo = snap.find((i) => i.name === 'lo');
    const vb = snap.find((i) => i.name === 'vB');
    expect(lo).toMatchObject({ loopback: true, up: true, mtu: 65536 });
    expect(vb).toMatchObject({ loopback: false, up: true, mtu: 1500 });
    expect(vb?.addresses).toEqual(
      expect.arrayContaining([
        { family: 4, address: '10.203.0.2', prefixLength: 24 },
        { family: 6, address: 'fd00:203::2', prefixLength: 64 },
      ]),
    );
    const isEv = (type: string, name: string) => (l: WatchLine) =>
      typeof l === 'object' && 'type' in l && l.type === type && l.iface.name === name;

    sh('ip', ['-n', net.b, 'link', 'add', 'wX', 'type', 'veth', 'peer', 'name', 'wY']);
    const added = (await waitFor(isEv('added', 'wX'))) as { iface: Iface };
    expect(added.iface).toMatchObject({ up: false, loopback: false });
    sh('ip', ['-n', net.b, 'addr', 'add', '10.204.0.1/16', 'dev', 'wX']);
    await waitFor(
      (l) =>
        isEv('changed', 'wX')(l) &&
        (l as { iface: Iface }).iface.addresses.some(
          (a) => a.address === '10.204.0.1' && a.prefixLength === 16,
        ),
    );
    sh('ip', ['-n', net.b, 'link', 'set', 'wX', 'mtu', '1400']);
    await waitFor((l) => isEv('changed', 'wX')(l) && (l as { iface: Iface }).iface.mtu === 1400);
    sh('ip', ['-n', net.b, 'link', 'del', 'wX']);
    const removed = (await waitFor(isEv('removed', 'wX'))) as { iface: Iface };
    expect(removed.iface.index).toBe(added.iface.index);
    await waitFor(isEv('removed', 'wY'));
    child.stdin.write('stop\n');
    await waitFor((l) => l === 'CLOSED');
  });
});
