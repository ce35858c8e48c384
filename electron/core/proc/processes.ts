/**
 * From a socket inode to the process holding it, and what a process is (command name, uid, cgroup), read
 * from /proc. The service runs unprivileged: /proc/PID/fd of another user's process is closed to it
 * (ptrace access rules), so such a socket keeps its owner's uid and no pid. Nothing is guessed.
 */
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';

export interface ProcessInfo {
  /** Thread-group id; null when the socket's owner is known only by uid. */
  pid: number | null;
  /** /proc/PID/comm; null when unknown (the process had exited). */
  name: string | null;
  uid: number | null;
  /** The cgroup v2 path (`/user.slice/...`, `/system.slice/docker-ID.scope`); null when unknown. */
  cgroup: string | null;
}

/**
 * Which of the processes of `uid` (any uid when null) hold the socket inodes in `wanted`. One pass over
 * /proc/* /fd for every inode asked at once; processes of other users are skipped without opening their fd
 * directory (it would be refused anyway, and a busy machine has many).
 */
export function pidsOfInodes(
  wanted: ReadonlySet<number>,
  uid: number | null,
  proc = '/proc',
): Map<number, number> {
  const found = new Map<number, number>();
  if (wanted.size === 0) return found;
  let pids: string[];
  try {
    pids = readdirSync(proc);
  } catch {
    return found;
  }
  for (const p of pids) {
    const c = p.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const dir = `${proc}/${p}`;
    if (uid !== null) {
      try {
        if (statSync(dir).uid !== uid) continue;
      } catch {
        continue;
      }
    }
    let fds: string[];
    try {
      fds = readdirSync(`${dir}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = readlinkSync(`${dir}/fd/${fd}`);
      } catch {
        continue;
      }
      if (!link.startsWith('socket:[')) continue;
      const inode = Number(link.slice(8, -1));
      if (wanted.has(inode) && !found.has(inode)) {
        found.set(inode, Number(p));
        if (found.size === wanted.size) return found;
      }
    }
  }
  return found;
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** What /proc tells of `pid` now; fields the process no longer shows (it exited) stay null. */
export function processInfo(pid: number, knownUid: number | null = null, proc = '/proc'): ProcessInfo {
  const comm = readText(`${proc}/${pid}/comm`);
  let uid = knownUid;
  if (uid === null) {
    const status = readText(`${proc}/${pid}/status`);
    const m = status ? /^Uid:\s+(\d+)/m.exec(status) : null;
    if (m) uid = Number(m[1]);
  }
  return {
    pid,
    name: comm === null ? null : comm.trimEnd(),
    uid,
    cgroup: cgroupOf(readText(`${proc}/${pid}/cgroup`)),
  };
}

/** The cgroup v2 path of a /proc/PID/cgroup text (its `0::` line), else the first v1 line's path. */
export function cgroupOf(text: string | null): string | null {
  if (text === null) return null;
  const lines = text.split('\n').filter(Boolean);
  const v2 = lines.find((l) => l.startsWith('0::'));
  const line = v2 ?? lines[0];
  if (line === undefined) return null;
  const path = line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1);
  return path === '' ? null : path;
}
