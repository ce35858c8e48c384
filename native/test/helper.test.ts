// icmpcap-helper is the only holder of the AF_PACKET socket: the capture process (a member
// of the helper's group, as a desktop user is) holds nothing that can send a frame, set
// promiscuous mode or rebind; a non-member cannot run the helper; the helper dies with its
// parent. Real packets between network namespaces. Needs root (namespaces, setcap, pidfd).
// Run: npx vitest run native/test/helper.test.ts
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChildCapture, NetnsPair, nativeDir, ping, sh } from './netns.js';

const isRoot = process.getuid?.() === 0;
const helperBuilt = path.join(nativeDir, 'build', 'Release', 'icmpcap-helper');
const NOBODY = 65534;
const GROUP = 4242; // the helper's group in this test (a number: no /etc/group entry needed)

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    const c = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
    if (c) out.push(...c.split(/\s+/).map(Number));
  }
  return out;
}

function status(pid: number, field: string): string {
  return new RegExp(`^${field}:\\s*(.*)$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '';
}

async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 500; i++) {
    if (!existsSync(`/proc/${pid}`) || status(pid, 'State').startsWith('Z')) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
}

interface Probe {
  fds: number;
  packetSockets: number;
  sent: number;
  promisc: number;
  bound: number;
  writableRings: number;
  ringMaps: string[];
  errors: string[];
}

describe.skipIf(!isRoot)('icmpcap-helper keeps the packet socket to itself', () => {
  let net: NetnsPair;
  let tmp: string;
  let helper: string;
  let fdprobe: string;

  beforeAll(() => {
    if (!existsSync(helperBuilt)) throw new Error('native addon not built: run npm run build:native');
    net = new NetnsPair();
    net.addVeth('vA', 'vB', ['10.211.0.1', '10.211.0.2'], null);
    tmp = mkdtempSync(path.join(tmpdir(), 'icmpcap-helper-test-'));
    chmodSync(tmp, 0o755);
    // Installed as the packages do: root:GROUP 0750, cap_net_raw only (chown clears file
    // capabilities: owner and mode first, setcap last).
    helper = path.join(tmp, 'icmpcap-helper');
    copyFileSync(helperBuilt, helper);
    chownSync(helper, 0, GROUP);
    chmodSync(helper, 0o750);
    sh('setcap', ['cap_net_raw+ep', helper]);
    fdprobe = path.join(tmp, 'fdprobe');
    sh('gcc', [
      '-O1',
      '-Wall',
      '-Werror',
      '-o',
      fdprobe,
      path.join(nativeDir, 'test', 'fixtures', 'fdprobe.c'),
    ]);
  });

  afterAll(() => {
    net?.destroy();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('a group member captures, and holds nothing that can send, go promiscuous or rebind', async () => {
    const member = { uid: NOBODY, gid: NOBODY, groups: [GROUP] };
    const cap = new ChildCapture(
      net.b,
      { source: 'afpacket', interfaces: ['vB'], helperPath: helper },
      member,
    );
    await cap.ready;
    const [helperPid] = childrenOf(cap.pid);
    expect(helperPid).toBeGreaterThan(0);
    // The helper runs as the user, with no capability left once its socket is open.
    expect(status(helperPid!, 'Uid').split(/\s+/)[0]).toBe(String(NOBODY));
    expect(status(helperPid!, 'CapEff')).toMatch(/^0+$/);
    const ifindex = sh('ip', ['-n', net.b, '-o', 'link', 'show', 'vB']).split(':')[0]!.trim();
    const probe = JSON.parse(
      sh('ip', ['netns', 'exec', net.b, fdprobe, String(cap.pid), ifindex, String(NOBODY), String(NOBODY)]),
    ) as Probe;
    ping(net.a, '10.211.0.2', 5);
    const r = await cap.stop();
    expect(r.error).toBeNull();
    expect(r.records.filter((x) => x.type === 8 && x.dir === 0).map((x) => x.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(probe.fds).toBeGreaterThan(3);
    expect(probe.packetSockets).toBe(0);
    expect(probe.sent).toBe(0);
    expect(probe.promisc).toBe(0);
    expect(probe.bound).toBe(0);
    expect(probe.writableRings).toBe(0);
    // The rings are mapped, read-only and shared.
    expect(probe.ringMaps.length).toBeGreaterThan(0);
    for (const p of probe.ringMaps) expect(p).toBe('r--s');
    for (const e of probe.errors)
      expect(e).toMatch(
        /:(EPERM|EBADF|EACCES|ENOTSOCK|EOPNOTSUPP|ENOPROTOOPT|EINVAL|EISCONN|ENOTCONN|EAFNOSUPPORT|EDESTADDRREQ|ENODEV|ESPIPE)$/,
      );
    // And the helper holds exactly its one packet socket: nothing else holds one for it.
    expect(await gone(helperPid!)).toBe(true);
  });

  it('a user outside the helper group cannot run it, and is told to join the group', async () => {
    const cap = new ChildCapture(
      net.b,
      { source: 'afpacket', interfaces: ['vB'], helperPath: helper },
      { uid: NOBODY, gid: NOBODY },
    );
    const r = await cap.result;
    expect(r.error).toMatchObject({ code: 'EACCES', kind: 'helper-group', group: String(GROUP) });
    expect(r.error?.message).toContain(`only members of group ${GROUP} may run the capture helper`);
    // Through a shell: setpriv itself still holds root's capabilities when it execs.
    const run = spawnSync(
      'setpriv',
      [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '/bin/sh', '-c', `exec ${helper}`],
      { encoding: 'utf8' },
    );
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('Permission denied');
  });

  it('the helper exits when the capture process dies', async () => {
    const cap = new ChildCapture(net.b, { source: 'afpacket', interfaces: ['vB'] });
    await cap.ready;
    const [helperPid] = childrenOf(cap.pid);
    expect(helperPid).toBeGreaterThan(0);
    // SIGKILL the node process (not `ip`): nothing runs in it to close anything.
    process.kill(cap.pid, 'SIGKILL');
    await cap.result.catch(() => undefined);
    expect(await gone(helperPid!)).toBe(true);
  });
});
