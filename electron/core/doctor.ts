/**
 * `icmpcap doctor`: what stands between this user and a capture, each problem with its fix.
 */
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { userInfo } from 'node:os';
import { grantHelperCommand, joinGroupCommand, MODPROBE_COMMAND } from './advice.js';
import type { Native } from './native.js';

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'info';

export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
  fix?: string;
}

const SECURE_BOOT_VAR = '/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c';
const CAP_NET_RAW = 13;

function groupName(gid: number): string {
  try {
    for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
      const [name, , id] = line.split(':');
      if (Number(id) === gid && name) return name;
    }
  } catch {
    // fall through
  }
  return String(gid);
}

function myGroups(): number[] {
  const status = readFileSync('/proc/self/status', 'utf8');
  const groups = /^Groups:\s*(.*)$/m.exec(status)?.[1] ?? '';
  return [process.getgid?.() ?? -1, ...groups.split(/\s+/).filter(Boolean).map(Number)];
}

function hasCapability(cap: number): boolean {
  const status = readFileSync('/proc/self/status', 'utf8');
  const eff = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  return eff !== undefined && (BigInt(`0x${eff}`) & (1n << BigInt(cap))) !== 0n;
}

export function secureBootState(): 'enabled' | 'disabled' | 'unknown' {
  try {
    const raw = readFileSync(SECURE_BOOT_VAR);
    return raw[raw.length - 1] === 1 ? 'enabled' : 'disabled';
  } catch {
    return existsSync('/sys/firmware/efi') ? 'unknown' : 'disabled';
  }
}

export function runDoctor(native: Native | Error): Check[] {
  const checks: Check[] = [];
  const user = userInfo().username;

  // Kernel module
  const loaded = existsSync('/sys/module/icmpcap');
  const version =
    loaded && existsSync('/sys/module/icmpcap/version')
      ? readFileSync('/sys/module/icmpcap/version', 'utf8').trim()
      : undefined;
  const secureBoot = secureBootState();
  if (loaded) {
    checks.push({
      name: 'kernel module',
      status: 'ok',
      detail: `icmpcap is loaded${version ? ` (version ${version})` : ''}`,
    });
  } else {
    const signing =
      secureBoot === 'enabled'
        ? ' Secure Boot is on, so an unsigned module will not load: sign it with the DKMS key ' +
          '(/var/lib/dkms/mok.pub) and enrol that key with `sudo mokutil --import /var/lib/dkms/mok.pub`, then reboot ' +
          'and confirm the enrolment; until then capture uses AF_PACKET.'
        : '';
    checks.push({
      name: 'kernel module',
      status: 'warn',
      detail: 'icmpcap.ko is not loaded; the AF_PACKET source works without it.',
      fix: `${MODPROBE_COMMAND}.${signing}`,
    });
  }
  checks.push({ name: 'secure boot', status: 'info', detail: `Secure Boot is ${secureBoot}` });

  // Device permissions
  if (existsSync('/dev/icmpcap')) {
    const st = statSync('/dev/icmpcap');
    const group = groupName(st.gid);
    const mode = (st.mode & 0o777).toString(8);
    let usable = true;
    try {
      accessSync('/dev/icmpcap', constants.R_OK | constants.W_OK);
    } catch {
      usable = false;
    }
    const member = myGroups().includes(st.gid);
    checks.push(
      usable
        ? {
            name: 'device',
            status: 'ok',
            detail: `/dev/icmpcap (group ${group}, mode ${mode}) is usable by ${user}`,
          }
        : {
            name: 'device',
            status: 'fail',
            detail: `/dev/icmpcap belongs to group ${group} (mode ${mode}) and ${user} ${member ? 'is a member but the mode refuses access' : 'is not a member'}`,
            fix: member
              ? 'the udev rule should give the device mode 0660: reinstall icmpcap-dkms or run `sudo udevadm trigger`'
              : joinGroupCommand(group).replace('$USER', user),
          },
    );
  } else if (loaded) {
    checks.push({
      name: 'device',
      status: 'fail',
      detail: 'the module is loaded but /dev/icmpcap is missing',
      fix: 'sudo udevadm trigger, or reload the module: sudo modprobe -r icmpcap && sudo modprobe icmpcap',
    });
  }

  // AF_PACKET and the helper
  checks.push({
    name: 'capability',
    status: 'info',
    detail: hasCapability(CAP_NET_RAW)
      ? 'this process has CAP_NET_RAW: it can open packet sockets itself'
      : 'this process has no CAP_NET_RAW (as it should for a desktop app): AF_PACKET capture goes through icmpcap-helper',
  });
  if (native instanceof Error) {
    checks.push({
      name: 'native addon',
      status: 'fail',
      detail: native.message,
      fix: 'run `npm install` in the icmpcap folder',
    });
    return checks;
  }
  const helper = native.defaultHelperPath();
  if (!existsSync(helper)) {
    checks.push({
      name: 'capture helper',
      status: 'fail',
      detail: `${helper} is missing`,
      fix: 'run `npm run build:native`',
    });
  } else {
    // Packages install the helper as root:icmpcap 0750: only members of that group may run it.
    const st = statSync(helper);
    let runnable = true;
    try {
      accessSync(helper, constants.X_OK);
    } catch {
      runnable = false;
    }
    if (!runnable) {
      const group = groupName(st.gid);
      checks.push({
        name: 'helper group',
        status: 'fail',
        detail: `${user} may not run ${helper} (group ${group}, mode ${(st.mode & 0o777).toString(8)})`,
        fix: myGroups().includes(st.gid)
          ? grantHelperCommand(helper, group)
          : joinGroupCommand(group).replace('$USER', user),
      });
    }
    const getcap = spawnSync('getcap', [helper], { encoding: 'utf8' });
    const caps = getcap.status === 0 ? getcap.stdout.trim() : '';
    checks.push(
      caps.includes('cap_net_raw')
        ? { name: 'capture helper', status: 'ok', detail: `${helper} has cap_net_raw` }
        : {
            name: 'capture helper',
            status: hasCapability(CAP_NET_RAW) ? 'info' : 'warn',
            detail: `${helper} has no cap_net_raw${getcap.error ? ' (getcap is not installed: apt install libcap2-bin)' : ''}`,
            fix: grantHelperCommand(helper),
          },
    );
  }
  for (const s of native.probe()) {
    checks.push(
      s.available
        ? { name: `source ${s.source}`, status: 'ok', detail: `available${s.via ? ` (${s.via})` : ''}` }
        : {
            name: `source ${s.source}`,
            status: 'fail',
            detail: s.reason ?? 'unavailable',
            ...(s.fix ? { fix: s.fix } : {}),
          },
    );
  }
  return checks;
}

export function formatChecks(checks: Check[]): string {
  const mark: Record<CheckStatus, string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL', info: 'info' };
  return checks
    .map((c) => `[${mark[c.status]}] ${c.name}: ${c.detail}${c.fix ? `\n       fix: ${c.fix}` : ''}`)
    .join('\n');
}
