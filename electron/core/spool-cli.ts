/**
 * `icmpcap spool`: the captures left behind by icmpcap processes that did not end cleanly (crash, kill -9,
 * power cut). Every record was on disk within about a second of its capture; this brings them back.
 *   icmpcap spool [list]                     id, start time, packets, size
 *   icmpcap spool recover ID|latest -w FILE  write one out (pcapng copies the bytes; pcap, csv, ndjson too)
 *   icmpcap spool clean [ID]                 remove one, or every leftover spool
 */
import { parseArgs } from 'node:util';
import {
  cleanSpools,
  findSpool,
  formatOf,
  listLeftoverSpools,
  recoverSpool,
  spoolDirs,
} from './spool-recovery.js';

export const SPOOL_USAGE = `usage: icmpcap spool [list | recover ID|latest -w FILE [-F FORMAT] [--force] | clean [ID]]
  list       the captures left behind by icmpcap processes that ended without cleaning up (newest first)
  recover    write one to FILE (pcapng, pcap, csv or ndjson, from its extension or -F); --force replaces FILE
  clean      remove one leftover spool, or all of them
spools live in $XDG_CACHE_HOME/icmpcap/spool (default ~/.cache/icmpcap/spool); started as root, icmpcap
runs as an account whose files, when it has no usable home, are in /var/lib/icmpcap/home/USER (spools in
.../USER/cache/icmpcap/spool), or in /var/cache/icmpcap for the account that owns it (earlier versions)`;

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

/** Runs the command; returns the exit status. */
export async function spoolCommand(argv: string[], dir: string | string[] = spoolDirs()): Promise<number> {
  const [sub = 'list', ...rest] = argv;
  const out = (line: string) => process.stdout.write(`${line}\n`);
  try {
    switch (sub) {
      case 'list': {
        const spools = listLeftoverSpools(dir);
        if (spools.length === 0) {
          out(`no spools left behind in ${[dir].flat().join(' or ')}`);
          return 0;
        }
        out('ID                      STARTED                   PACKETS        SIZE');
        for (const s of spools) {
          out(
            `${s.id.padEnd(24)}${new Date(s.startedAtMs).toISOString().padEnd(26)}${String(s.packets).padStart(9)}${size(s.bytes).padStart(12)}`,
          );
        }
        out('recover one with: icmpcap spool recover ID|latest -w FILE');
        return 0;
      }
      case 'recover': {
        const { values, positionals } = parseArgs({
          args: rest,
          options: {
            write: { type: 'string', short: 'w' },
            format: { type: 'string', short: 'F' },
            force: { type: 'boolean', default: false },
          },
          allowPositionals: true,
          strict: true,
        });
        const id = positionals[0];
        if (!id || !values.write)
          throw new Error('give the spool and the file: icmpcap spool recover ID|latest -w FILE');
        const spool = findSpool(dir, id);
        const result = await recoverSpool(spool, values.write, {
          format: formatOf(values.write, values.format),
          overwrite: values.force,
        });
        out(`${result.records} packets of spool ${spool.id} written to ${result.path}`);
        return 0;
      }
      case 'clean': {
        const removed = cleanSpools(dir, rest[0]);
        out(removed.length ? `removed ${removed.join(', ')}` : 'no spools left behind: nothing to remove');
        return 0;
      }
      case '-h':
      case '--help':
      case 'help':
        out(SPOOL_USAGE);
        return 0;
      default:
        throw new Error(`unknown spool command "${sub}"\n${SPOOL_USAGE}`);
    }
  } catch (err) {
    process.stderr.write(`icmpcap: ${(err as Error).message}\n`);
    return 2;
  }
}
