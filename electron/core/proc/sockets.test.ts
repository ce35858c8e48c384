/**
 * The socket tables and /proc lookups attribution stands on, against this very process: a UDP socket it
 * binds shows up with its port, address, uid and inode, and the inode leads back to this pid and command.
 */
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cgroupOf, pidsOfInodes, processInfo } from './processes.js';
import { procNetAddress, readSockets } from './sockets.js';

const sockets: Socket[] = [];

function bound(type: 'udp4' | 'udp6', address: string): Promise<number> {
  const s = createSocket(type);
  sockets.push(s);
  return new Promise((resolve) => s.bind(0, address, () => resolve(s.address().port)));
}

describe('socket tables and processes', () => {
  let port4 = 0;
  let port6 = 0;
  beforeAll(async () => {
    port4 = await bound('udp4', '127.0.0.1');
    port6 = await bound('udp6', '::1');
  });
  afterAll(() => sockets.forEach((s) => s.close()));

  it('finds a bound UDP socket with its address, uid and inode, and its inode leads to this process', () => {
    const v4 = readSockets('udp', 4).filter((s) => s.localPort === port4);
    const v6 = readSockets('udp', 6).filter((s) => s.localPort === port6);
    expect(v4).toHaveLength(1);
    expect(v6).toHaveLength(1);
    expect(v4[0]).toMatchObject({ local: '127.0.0.1', remote: '0.0.0.0', uid: process.getuid!() });
    expect(v6[0]).toMatchObject({ local: '::1', remote: '::', uid: process.getuid!() });
    const pids = pidsOfInodes(new Set([v4[0]!.inode, v6[0]!.inode]), process.getuid!());
    expect(pids.get(v4[0]!.inode)).toBe(process.pid);
    expect(pids.get(v6[0]!.inode)).toBe(process.pid);
  });

  it('reads what /proc says of a process, and nothing of one that is gone', () => {
    const me = processInfo(process.pid);
    expect(me.pid).toBe(process.pid);
    expect(me.name).toBe(readFileSync('/proc/self/comm', 'utf8').trim());
    expect(me.uid).toBe(process.getuid!());
    expect(me.cgroup).toBe(cgroupOf(readFileSync('/proc/self/cgroup', 'utf8')));
    // pid_max is at most 2^22: this one cannot exist.
    expect(processInfo(2 ** 22 + 1)).toEqual({ pid: 2 ** 22 + 1, name: null, uid: null, cgroup: null });
  });

  it('decodes /proc/net addresses (host-order words) and cgroup lines', () => {
    expect(procNetAddress('0100007F', 4)).toBe('127.0.0.1');
    expect(procNetAddress('B80D0120000000000000000001000000', 6)).toBe('2001:db8::1');
    expect(procNetAddress('00000000000000000000000001000000', 6)).toBe('::1');
    expect(cgroupOf('0::/system.slice/docker-abc.scope\n')).toBe('/system.slice/docker-abc.scope');
    expect(cgroupOf('12:pids:/docker/abc\n')).toBe('/docker/abc');
    expect(cgroupOf('')).toBeNull();
  });
});
