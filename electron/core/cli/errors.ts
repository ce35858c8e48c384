/**
 * How the command line fails: a usage error (exit 2) names the flag and what to give it; a runtime failure
 * (exit 1) says what happened and what to do. Exit 0 is a capture that ended as asked, by a count, a
 * duration, a signal or a closed output pipe.
 */
import { dirname } from 'node:path';

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Throws a usage error: the command line asked for something icmpcap cannot do as given. */
export function usage(message: string): never {
  throw new UsageError(message);
}

/** The reader of our standard output (or the file's pipe) went away: stop as tcpdump does, cleanly. */
export class OutputClosed extends Error {
  override readonly name = 'OutputClosed';
}

/**
 * A file-system error as advice: what is wrong with `target` and what to do about it. `leadsTo`: where
 * `target` leads when it is a symbolic link (for ENOENT, to a missing file: output.ts missingLinkTarget), so
 * that the folder named is the one on the link's way, not the link's own folder (which is there).
 */
export function explainFileError(
  err: unknown,
  target: string,
  dir: string,
  leadsTo: string | null = null,
): string {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      if (leadsTo !== null)
        return `cannot write ${target}: it is a link to ${leadsTo}, and the folder ${dirname(leadsTo)} does not exist; create it or choose another`;
      return `cannot write ${target}: the folder ${dir} does not exist; create it or choose another`;
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      if (leadsTo !== null)
        return (
          `cannot write ${target}: it is a link to ${leadsTo}, and there is no permission to write it there ` +
          `(in ${dirname(leadsTo)}); choose a folder you can write to`
        );
      return `cannot write ${target}: no permission to write in ${dir}; choose a folder you can write to`;
    case 'ENOSPC':
    case 'EDQUOT':
      return `cannot write ${target}: the disk holding ${dir} is full; free some space or choose another disk`;
    case 'EISDIR':
      return `cannot write ${target}: it is a folder; give a file name`;
    case 'ENOTDIR':
      if (leadsTo !== null)
        return `cannot write ${target}: it is a link to ${leadsTo}, and ${dirname(leadsTo)} is not a folder`;
      return `cannot write ${target}: ${dir} is not a folder`;
    default:
      return `cannot write ${target}: ${(err as Error).message}`;
  }
}
