/**
 * Started as root, icmpcap does what needs root first, then runs as an unprivileged account, as
 * `tcpdump -Z` does: nothing that parses packets, serves requests or reads user files keeps root or a
 * capability. The account is `-Z USER`, else the user who ran sudo (SUDO_USER), else the system
 * account `icmpcap` (created once, no login, no home, in the group icmpcap).
 *
 * The account keeps the group icmpcap, which is what lets it run the capture helper (root:icmpcap 0750
 * with cap_net_raw) and open /dev/icmpcap: capture goes on working through them after the drop. Before
 * dropping, the helper is given exactly that (chgrp icmpcap, chmod 0750, setcap cap_net_raw+ep), never a
 * world-executable capable binary.
 */
import { spawnSync } from 'node:child_process';
import {
  accessSync,
  chmodSync,
  chownSync,
  constants,
  existsSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  copyFileSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  type Stats,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export const CAPTURE_GROUP = 'icmpcap';
export const SYSTEM_ACCOUNT = 'icmpcap';

export interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** An /etc/passwd-style entry from NSS (getent), falling back to /etc/passwd itself. */
function getent(db: 'passwd' | 'group', key: string): string[] | null {
  const r = spawnSync('getent', [db, key], { encoding: 'utf8' });
  if (r.status === 0 && r.stdout) return r.stdout.trim().split('\n')[0]!.split(':');
  try {
    const file = readFileSync(`/etc/${db}`, 'utf8');
    for (const line of file.split('\n')) {
      const fields = line.split(':');
      if (fields[0] === key || fields[2] === key) return fields;
    }
  } catch {
    // no such file
  }
  return null;
}

export function lookupAccount(nameOrUid: string): Account | null {
  const f = getent('passwd', nameOrUid);
  if (!f || f.length < 6) return null;
  return { name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]! };
}

export function lookupGroup(name: string): number | null {
  const f = getent('group', name);
  return f && f.length >= 3 ? Number(f[2]) : null;
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) throw new Error(`${cmd} is not installed (${r.error.message})`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr.trim() || `exit ${r.status}`}`);
}

/** The group icmpcap, created (as a system group) when missing. Root only. */
export function ensureCaptureGroup(): number {
  const gid = lookupGroup(CAPTURE_GROUP);
  if (gid !== null) return gid;
  run('groupadd', ['--system', CAPTURE_GROUP]);
  const made = lookupGroup(CAPTURE_GROUP);
  if (made === null) throw new Error(`groupadd made no group ${CAPTURE_GROUP}`);
  return made;
}

/** The account to run as: -Z USER, else SUDO_USER, else the system account icmpcap (made if missing). */
export function chooseAccount(requested: string | undefined, env: NodeJS.ProcessEnv = process.env): Account {
  if (requested !== undefined) {
    const account = lookupAccount(requested);
    if (!account) throw new Error(`-Z ${requested}: there is no such user`);
    return account;
  }
  const sudo = env.SUDO_USER;
  if (sudo && sudo !== 'root') {
    const account = lookupAccount(sudo);
    if (account && account.uid !== 0) return account;
  }
  const existing = lookupAccount(SYSTEM_ACCOUNT);
  if (existing) return existing;
  const gid = ensureCaptureGroup();
  run('useradd', [
    '--system',
    '--gid',
    String(gid),
    '--no-create-home',
    '--home-dir',
    '/nonexistent',
    '--shell',
    '/usr/sbin/nologin',
    '--comment',
    'icmpcap capture service',
    SYSTEM_ACCOUNT,
  ]);
  const made = lookupAccount(SYSTEM_ACCOUNT);
  if (!made) throw new Error(`useradd made no account ${SYSTEM_ACCOUNT}`);
  return made;
}

/**
 * Gives the capture helper what it needs and nothing more: owner root, group icmpcap, mode 0750,
 * cap_net_raw. Returns a line to print when the account still cannot reach it.
 */
export function prepareHelper(helperPath: string, captureGid: number): string | null {
  if (!existsSync(helperPath)) return `the capture helper ${helperPath} is missing: run npm run build`;
  // Never touch a helper that is already right: chgrp drops file capabilities, so re-preparing it in place
  // left another icmpcap started as root at the same moment a helper without CAP_NET_RAW (EPERM). A helper
  // that needs preparing is prepared as a copy and renamed over it: whoever runs it meanwhile runs either
  // the old file or a whole prepared one.
  if (!helperReady(helperPath, captureGid)) {
    const staged = `${helperPath}.prepare-${process.pid}`;
    try {
      copyFileSync(helperPath, staged);
      chownSync(staged, 0, captureGid);
      chmodSync(staged, 0o750);
      run('setcap', ['cap_net_raw+ep', staged]);
      renameSync(staged, helperPath);
    } catch (err) {
      rmSync(staged, { force: true });
      return `cannot give the capture helper cap_net_raw (${(err as Error).message}): install libcap2-bin (apt install libcap2-bin), and run from a folder root may write to`;
    }
  }
  // Every folder on the way must let the account through (o+x, or group icmpcap with g+x).
  for (let dir = dirname(helperPath); ; dir = dirname(dir)) {
    const st = statSync(dir);
    const passes = (st.mode & 0o001) !== 0 || (st.gid === captureGid && (st.mode & 0o010) !== 0);
    if (!passes) {
      return `the folder ${dir} is closed to other users, so the capture helper inside cannot run after the switch: install the package, or use a checkout others may enter`;
    }
    if (dir === dirname(dir)) break;
  }
  return null;
}

/** The helper is root:captureGid 0750 with cap_net_raw in its permitted and effective sets. */
function helperReady(helperPath: string, captureGid: number): boolean {
  const st = statSync(helperPath);
  if (st.uid !== 0 || st.gid !== captureGid || (st.mode & 0o7777) !== 0o750) return false;
  const r = spawnSync('getcap', [helperPath], { encoding: 'utf8' });
  // libcap 2.66 prints "PATH cap_net_raw=ep", older ones "PATH = cap_net_raw+ep".
  return r.status === 0 && /cap_net_raw[=+]ep\b/.test(r.stdout);
}

/** The current (already switched) user may create files in `dir` (made if missing). */
function writable(dir: string): boolean {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK | constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Where an account without a usable home (the system account icmpcap, `-Z nobody`) keeps its spool and
 * settings from run to run, so that the next run finds the spool of one that crashed: ACCOUNT_HOMES/NAME, its
 * own folder (the account's, 0700), made by root before the drop. State, not cache (the spools of crashed
 * captures, the TLS key pages pinned): under /var/lib.
 *
 * The parent and everything above it are root's alone (owned by root, writable by no one else): root makes the
 * account's folder inside and hands it over, and no account can swap a folder on that way for a link or for a
 * folder of its own meanwhile. Never inside a folder an account owns (as LEGACY_HOME is): there root making a
 * folder, checking it and changing its owner races with the owner renaming and replacing what is inside.
 */
export const ACCOUNT_HOMES = '/var/lib/icmpcap/home';

/**
 * Earlier versions' one folder for every account with no usable home: made by the first account that ran and
 * then that account's (usually the system account icmpcap), every other account getting a new temporary
 * folder each run. The account that owns it keeps it as its home, so the spools it left there stay found.
 */
export const LEGACY_HOME = '/var/cache/icmpcap';

/** Account names that are a folder's name as they are (no `/`, not `.` or `..`, nothing a shell trips on). */
const FOLDER_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*\$?$/;

/** Why `st` (of `dir`) is not a folder only root may change, or null when it is one. */
function notRootOnly(dir: string, st: Stats): string | null {
  if (st.isSymbolicLink()) return `${dir} is a link`;
  if (!st.isDirectory()) return `${dir} is not a folder`;
  if (st.uid !== 0) return `${dir} belongs to uid ${st.uid}, not root`;
  if ((st.mode & 0o022) !== 0) return `others than root may write in ${dir}`;
  return null;
}

/**
 * Makes `dir` (root's, 0755) when missing and checks it is a folder only root may change, not a link; one that
 * others may not enter is opened to them (0755: the account passes through it to its own folder). Returns why
 * it cannot be used, or null. Its parent must be root's alone already (checked first), so it cannot be swapped.
 */
function rootFolder(dir: string): string | null {
  try {
    mkdirSync(dir, { mode: 0o755 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
      return `${dir} cannot be made (${(err as Error).message})`;
  }
  try {
    const st = lstatSync(dir);
    const why = notRootOnly(dir, st);
    if (why) return why;
    // Made under a umask such as 077 (here or by another icmpcap at the same moment): entered by no one.
    if ((st.mode & 0o555) !== 0o555) chmodSync(dir, 0o755);
    return null;
  } catch (err) {
    return `${dir} cannot be checked (${(err as Error).message})`;
  }
}

/**
 * The folder `account` keeps its files in from run to run, made when missing (still root's: dropTo hands it
 * over), or why there is none: then dropTo makes a private temporary one. LEGACY_HOME when the account owns it;
 * else ACCOUNT_HOMES/NAME, refused when it is a link or another account's.
 */
export function stableHome(account: Account): { home: string } | { why: string } {
  try {
    const legacy = lstatSync(LEGACY_HOME, { throwIfNoEntry: false });
    // Its parent (/var/cache) root's alone: the folder cannot be swapped, the account owns only what is inside.
    if (
      account.uid !== 0 &&
      legacy?.isDirectory() &&
      legacy.uid === account.uid &&
      !notRootOnly(dirname(LEGACY_HOME), statSync(dirname(LEGACY_HOME)))
    )
      return { home: LEGACY_HOME };
  } catch {
    // not there, or not checkable: the account's own folder below
  }
  if (!FOLDER_NAME.test(account.name))
    return { why: `its name ${JSON.stringify(account.name)} cannot name a folder` };
  // The system folders on the way (/, /var, /var/lib) as the kernel follows them; ours (made here) without links.
  for (let dir = dirname(dirname(ACCOUNT_HOMES)); ; dir = dirname(dir)) {
    let why: string | null;
    try {
      why = notRootOnly(dir, statSync(dir));
    } catch (err) {
      why = `${dir} cannot be checked (${(err as Error).message})`;
    }
    if (why) return { why };
    if (dir === dirname(dir)) break;
  }
  for (const dir of [dirname(ACCOUNT_HOMES), ACCOUNT_HOMES]) {
    const why = rootFolder(dir);
    if (why) return { why };
  }
  const home = join(ACCOUNT_HOMES, account.name);
  try {
    mkdirSync(home, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
      return { why: `${home} cannot be made (${(err as Error).message})` };
  }
  try {
    const st = lstatSync(home);
    if (st.isSymbolicLink()) return { why: `${home} is a link` };
    if (!st.isDirectory()) return { why: `${home} is not a folder` };
    // Root's: made just now (or by a run that stopped before handing it over).
    if (st.uid !== account.uid && st.uid !== 0) {
      // The folder of an earlier account of this name (deleted and made again, as a package's purge and
      // reinstall do; a new uid): no account has its uid, and the folder is this name's. Handed over with what
      // is inside (its spools), or every run after would keep its files in a new temporary folder.
      if (lookupAccount(String(st.uid)) !== null)
        return { why: `${home} belongs to uid ${st.uid}, another account` };
      handOver(home, account, st.uid);
    }
    return { home };
  } catch (err) {
    return { why: `${home} cannot be checked (${(err as Error).message})` };
  }
}

/**
 * Gives `dir` and everything inside owned by `staleUid` to `account` (links themselves, never what they point
 * at). Only for a folder root's alone holds and no account's uid owns: nothing can swap what is inside meanwhile.
 */
function handOver(dir: string, account: Account, staleUid: number): void {
  const walk = (path: string): void => {
    const st = lstatSync(path);
    if (st.uid === staleUid) lchownSync(path, account.uid, account.gid);
    if (st.isDirectory()) for (const name of readdirSync(path)) walk(join(path, name));
  };
  walk(dir);
}

/** The folders of every account with no usable home (for `icmpcap spool`): LEGACY_HOME and ACCOUNT_HOMES/*. */
export function stableHomes(): string[] {
  let names: string[] = [];
  try {
    names = readdirSync(ACCOUNT_HOMES).sort();
  } catch {
    // none yet
  }
  return [LEGACY_HOME, ...names.map((name) => join(ACCOUNT_HOMES, name))];
}

export interface DropResult {
  account: Account;
  /** Lines worth printing (what was done, what may not work). */
  notes: string[];
}

/**
 * Switches this process to `account`, keeping the group icmpcap. Sets HOME and the XDG folders to ones
 * the account can write (a private folder when its home is not usable). After this, uid, gid and
 * groups are the account's and every capability is gone (the kernel clears them on the uid change).
 */
export function dropTo(account: Account, captureGid: number): string[] {
  const notes: string[] = [];
  let home = account.home;
  let usable = false;
  try {
    const st = statSync(home);
    usable = st.isDirectory() && st.uid === account.uid;
  } catch {
    usable = false;
  }
  if (!usable) {
    // e.g. /nonexistent: a private folder for its spool and settings. A stable one, the account's own, so the
    // spool of a run that crashed is found by the next (`icmpcap spool`); a fresh temporary one (mkdtemp: made
    // here, with a name no one knows before) only when that cannot be, and the note says why.
    const stable = stableHome(account);
    if ('home' in stable) {
      home = stable.home;
      notes.push(`icmpcap: ${account.name} has no usable home: keeping its files in ${home}`);
    } else {
      home = mkdtempSync(join(tmpdir(), `icmpcap-${account.name}-`));
      notes.push(
        `icmpcap: ${account.name} has no usable home, and no folder of its own to keep its files in from run to run (${stable.why}): ` +
          `a spool left by this run is not found by the next; keeping its files in ${home}`,
      );
    }
    // The stable folders cannot be swapped meanwhile (their parents are root's alone): following them is safe.
    chownSync(home, account.uid, account.gid);
    chmodSync(home, 0o700);
  }
  const proc = process as NodeJS.Process & { initgroups?: (user: string, extraGroup: number) => void };
  if (!proc.initgroups || !process.setgroups || !process.setgid || !process.setuid) {
    throw new Error('this platform cannot switch users');
  }
  proc.initgroups(account.name, account.gid);
  const groups = new Set(process.getgroups?.() ?? []);
  groups.add(captureGid);
  process.setgroups([...groups]);
  process.setgid(account.gid);
  process.setuid(account.uid);
  if (process.getuid?.() === 0 || process.geteuid?.() === 0) throw new Error('still root after the switch');
  process.env.HOME = home;
  process.env.USER = account.name;
  process.env.LOGNAME = account.name;
  // A folder the invoker named (XDG_CACHE_HOME=...) stays when the account may write there.
  for (const [name, fallback] of [
    ['XDG_CACHE_HOME', 'cache'],
    ['XDG_CONFIG_HOME', 'config'],
  ] as const) {
    const given = process.env[name];
    if (given && writable(given)) continue;
    if (usable) delete process.env[name];
    else process.env[name] = join(home, fallback);
  }
  delete process.env.XDG_RUNTIME_DIR;
  return notes;
}

/**
 * When running as root: prepares the helper, switches to the chosen account and says so. When not
 * root: nothing (with -Z, an error, as tcpdump gives). `helperPath` is where the native addon looks.
 */
export function dropPrivileges(requested: string | undefined, helperPath: string | null): DropResult | null {
  if (process.geteuid?.() !== 0) {
    if (requested !== undefined && lookupAccount(requested)?.uid !== process.geteuid?.()) {
      throw new Error(`-Z ${requested} needs root: start icmpcap with sudo, or leave -Z out`);
    }
    return null;
  }
  const captureGid = ensureCaptureGroup();
  const account = chooseAccount(requested);
  if (account.uid === 0) throw new Error('-Z root would keep root: name an unprivileged user');
  const notes: string[] = [];
  if (helperPath) {
    const problem = prepareHelper(helperPath, captureGid);
    if (problem) notes.push(`icmpcap: ${problem}`);
  }
  notes.push(...dropTo(account, captureGid));
  notes.push(
    `icmpcap: running as ${account.name} (uid ${account.uid}) with the group ${CAPTURE_GROUP}; root is dropped`,
  );
  return { account, notes };
}
