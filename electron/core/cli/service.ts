/** The capture service and version for the command line's commands. */
import { loadNative } from '../native.js';
import { dropPrivileges } from '../privilege.js';
import { version } from '../version.js';
import { CaptureService, errorMessage } from '../service.js';

export { version };

/** `bufferBytes`: the kernel buffer of every capture that names none (serve --buffer-size). */
export function makeService(options: { bufferBytes?: number } = {}): CaptureService {
  let native;
  try {
    native = loadNative();
  } catch (err) {
    native = err instanceof Error ? err : new Error(String(err));
  }
  return new CaptureService({ native, version: version(), ...options });
}

/**
 * Started as root: prepare the capture helper, then run as -Z USER / SUDO_USER / icmpcap (../privilege.ts),
 * as `tcpdump -Z` does. Not root: nothing to do (a -Z naming someone else is refused there).
 */
export function dropRoot(user: string | undefined): void {
  let helper: string | null = null;
  try {
    helper = loadNative().defaultHelperPath();
  } catch {
    helper = null; // no addon: nothing to capture with, but still no root
  }
  try {
    const dropped = dropPrivileges(user, helper);
    for (const note of dropped?.notes ?? []) process.stderr.write(`${note}\n`);
  } catch (err) {
    throw new Error(`cannot drop root privileges: ${errorMessage(err)}`, { cause: err });
  }
}
