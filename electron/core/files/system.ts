import os from 'node:os';

/** shb_os for files we write, e.g. `Linux 6.1.0-27-amd64`. */
export function defaultOsName(): string {
  return `${os.type()} ${os.release()}`;
}
