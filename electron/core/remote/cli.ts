/** `icmpcap serve` flags for remote agents: a token kept across restarts, so viewers reconnect. */
import { readFileSync } from 'node:fs';

export const REMOTE_FLAGS = { 'token-file': { type: 'string' } } as const;

export const REMOTE_USAGE = `                  --token-file FILE   take the token from FILE (one line; letters, digits, - and _, 16 to
                                  256 of them) instead of a new random one each start: hosts that show
                                  this one in their window reconnect after a restart
`;

/** Reads the token of --token-file; throws an Error that says what to do. */
export function readTokenFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`--token-file: cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  const token = text.trim();
  if (!/^[A-Za-z0-9_-]{16,256}$/.test(token)) {
    throw new Error(
      `--token-file: ${path} must hold one token of 16 to 256 letters, digits, - or _ ` +
        `(e.g. from: head -c 24 /dev/urandom | base64 | tr '+/' '-_')`,
    );
  }
  return token;
}
