/**
 * What to do about a capture failure: the one place the advice is written (the native addon
 * only says what failed, with a `kind` and its context; `icmpcap doctor` and every error
 * message read their fixes here).
 */
import type { NativeError, SourceAvailability } from '../../native/index.js';

/** The group that owns /dev/icmpcap and the capture helper in the packages. */
export const CAPTURE_GROUP = 'icmpcap';

/**
 * Making a helper binary a capture helper: only the group may run it, and it holds
 * cap_net_raw and nothing else. chown/chgrp clear file capabilities, so setcap comes last.
 */
export function grantHelperCommand(helperPath: string, group = CAPTURE_GROUP): string {
  return (
    `sudo chgrp ${group} ${helperPath} && sudo chmod 0750 ${helperPath} && ` +
    `sudo setcap cap_net_raw+ep ${helperPath}`
  );
}

export function joinGroupCommand(group = CAPTURE_GROUP): string {
  return `sudo usermod -aG ${group} $USER, then log out and in again`;
}

export const MODPROBE_COMMAND = 'sudo modprobe icmpcap (it comes with the icmpcap-dkms package)';

/** What the addon tells about a failure (an error it threw, or a probe result). */
export interface Failure {
  kind?: string;
  code?: string;
  helperPath?: string;
  group?: string;
}

/** The advice for a failure, or undefined when there is nothing to do but read the message. */
export function adviceFor(f: Failure): string | undefined {
  const helper = f.helperPath || 'native/build/Release/icmpcap-helper';
  switch (f.kind) {
    case 'module-missing':
      return MODPROBE_COMMAND;
    case 'module-permission':
      return joinGroupCommand(f.group || CAPTURE_GROUP);
    case 'module-abi':
      return 'install the icmpcap module of this version (icmpcap-dkms) and reload it: sudo modprobe -r icmpcap && sudo modprobe icmpcap';
    case 'module-no-addr-rules':
      return 'the loaded icmpcap module predates address filters: update icmpcap-dkms and reload it, or capture without addresses in the filter';
    case 'helper-missing':
      return `build the capture helper (npm run build:native) or pass helperPath, then ${grantHelperCommand(helper)}`;
    case 'helper-group':
      return `only members of group ${f.group || CAPTURE_GROUP} may capture through the helper: ${joinGroupCommand(f.group || CAPTURE_GROUP)}`;
    case 'helper-not-executable':
    case 'helper-no-capability':
    case 'helper-failed':
      return `the capture helper needs CAP_NET_RAW and the capture group: ${grantHelperCommand(helper)}; run icmpcap doctor`;
    case 'helper-no-reply':
      return 'the capture helper did not answer: run icmpcap doctor';
    case 'helper-version':
      return 'the capture helper does not match this version of icmpcap: rebuild it (npm run build:native) or reinstall the package';
    case 'no-such-interface':
      return 'list the interfaces with `ip link` (or `icmpcap interfaces`)';
    case 'no-af-packet':
      return 'this kernel lacks AF_PACKET (CONFIG_PACKET): use the module source';
    case 'too-many-files':
      return 'close some files or raise the limit (ulimit -n)';
    default:
      return undefined;
  }
}

/** The error with its advice appended to the message (and as `fix`). */
export function withAdvice<E>(err: E): E {
  if (!(err instanceof Error)) return err;
  const e = err as Error as Partial<NativeError> & Error & { fix?: string };
  const fix = adviceFor(e);
  if (fix && e.fix === undefined) {
    e.fix = fix;
    e.message = `${e.message}; ${fix}`;
  }
  return err;
}

/** Probe results with their advice. */
export function probeWithAdvice(list: SourceAvailability[]): SourceAvailability[] {
  return list.map((s) => {
    if (s.available || s.fix) return s;
    const fix = adviceFor(s);
    return fix ? { ...s, fix } : s;
  });
}

/**
 * What to do when the kernel dropped packets because the capture's buffer was full (`capture`'s summary):
 * a larger -B, the buffer of all the capture's kernel rings together (kernel-buffer.ts). `mib`: the -B given.
 */
export function bufferFullAdvice(mib?: number): string {
  // Without -B a capture has 4 to 16 MiB (kernel-buffer.ts).
  const larger = mib === undefined ? 64 : 4 * mib;
  return `the kernel buffer was full: give a larger one, e.g. -B ${larger} (MiB), or narrow the capture filter`;
}
