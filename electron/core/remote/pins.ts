/**
 * Certificate pins of remote agents, trust on first use (as ssh's known_hosts): the SHA-256 fingerprint
 * of the certificate a host presented the first time, kept in $XDG_CONFIG_HOME/icmpcap/known-hosts.json
 * by host and port. A host that later presents another certificate is refused until the user accepts
 * the new fingerprint (hosts.trust) or removes the line.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export function defaultPinFile(): string {
  const config = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(config, 'icmpcap', 'known-hosts.json');
}

export type PinCheck =
  | { outcome: 'pinned-now' | 'match'; fingerprint: string }
  | { outcome: 'changed'; pinned: string; presented: string; message: string };

const FINGERPRINT = /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/;

/** The key of a host in the pin file: host and port as the URL names them (`[::1]:8443`). */
export function pinKey(url: URL): string {
  return `${url.hostname}:${url.port || '443'}`;
}

export class PinStore {
  constructor(readonly file = defaultPinFile()) {}

  private read(): Record<string, string> {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch {
      return {};
    }
    try {
      const json = JSON.parse(text) as unknown;
      if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new Error('not an object');
      const pins: Record<string, string> = {};
      for (const [key, value] of Object.entries(json as Record<string, unknown>)) {
        if (typeof value === 'string' && FINGERPRINT.test(value)) pins[key] = value;
      }
      return pins;
    } catch (err) {
      // A damaged file must not silently unpin every host: refuse until the user looks at it.
      throw new Error(
        `${this.file} is not a pin file icmpcap can read (${(err as Error).message}): fix or remove it`,
        { cause: err },
      );
    }
  }

  private write(pins: Record<string, string>): void {
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(pins, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, this.file);
  }

  pinned(key: string): string | null {
    return this.read()[key] ?? null;
  }

  /** Compares what a host presents with its pin; pins it when it has none yet. */
  check(key: string, presented: string): PinCheck {
    const fingerprint = presented.toUpperCase();
    if (!FINGERPRINT.test(fingerprint)) throw new Error(`not a SHA-256 fingerprint: ${presented}`);
    const pins = this.read();
    const pinned = pins[key];
    if (pinned === undefined) {
      this.write({ ...pins, [key]: fingerprint });
      return { outcome: 'pinned-now', fingerprint };
    }
    if (pinned === fingerprint) return { outcome: 'match', fingerprint };
    return {
      outcome: 'changed',
      pinned,
      presented: fingerprint,
      message:
        `the certificate of ${key} changed: pinned SHA-256 ${pinned}, now ${fingerprint}. ` +
        `Refused: someone may be in between. If the host made a new certificate, check the fingerprint ` +
        `its \`icmpcap serve\` printed and accept the new one ("Trust new certificate" in Hosts), ` +
        `or remove the line for ${key} from ${this.file}.`,
    };
  }

  /** Replaces the pin of `key` (the user accepted a changed certificate). */
  trust(key: string, fingerprint: string): void {
    this.write({ ...this.read(), [key]: fingerprint.toUpperCase() });
  }
}
