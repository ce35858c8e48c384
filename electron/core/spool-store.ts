/**
 * The capture's spool on disk: every record is appended to a pcapng file as it arrives (as dumpcap does),
 * so a crash loses nothing already written, and details and exports read the packets back from it.
 * A spool belongs to one capture: a new capture or file open starts a new one; a clean shutdown removes it,
 * a crash leaves it for `icmpcap` to reopen.
 */
import { closeSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { DecodedRecord } from './record.js';
import { OFF, REC_F_PAD, alignRecord } from './record.js';
import { PcapngSpoolWriter, SpoolReader } from './files/index.js';

export function defaultSpoolDir(): string {
  const cache = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(cache, 'icmpcap', 'spool');
}

function stamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}

export class Spool {
  private readonly writer: PcapngSpoolWriter;
  private readFd: number;
  private readonly reader: SpoolReader;
  private offsets = new Float64Array(8192);
  private readonly named = new Set<number>();

  private constructor(
    readonly path: string,
    application: string,
    snaplen: number,
  ) {
    this.writer = PcapngSpoolWriter.create(path, { application, snaplen });
    this.readFd = openSync(path, 'r');
    this.reader = new SpoolReader(this.readFd);
  }

  static create(dir: string, application: string, snaplen: number): Spool {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new Error(
        `cannot create the spool folder ${dir}: ${(err as Error).message}; set XDG_CACHE_HOME to a writable folder`,
      );
    }
    return new Spool(join(dir, `capture-${stamp()}-${process.pid}.pcapng`), application, snaplen);
  }

  /**
   * Appends every record of the batch and returns each one's file offset (valid until the next call).
   * Interfaces are announced with their names the first time they appear.
   */
  append(batch: ArrayBuffer, records: number, ifname: (ifindex: number) => string): Float64Array {
    if (this.offsets.length < records)
      this.offsets = new Float64Array(Math.max(records, this.offsets.length * 2));
    const view = new DataView(batch);
    for (let at = 0; at + 8 <= batch.byteLength;) {
      const len = view.getUint32(at + OFF.len, true);
      if (len < 8) break; // the writer reports the damage with its offset
      if (!(view.getUint16(at + OFF.flags, true) & REC_F_PAD)) {
        const ifindex = view.getUint32(at + OFF.ifindex, true);
        if (!this.named.has(ifindex)) {
          this.named.add(ifindex);
          this.writer.interfaceId(ifindex, ifname(ifindex));
        }
      }
      at += alignRecord(len);
    }
    this.writer.append(batch, 0, batch.byteLength, this.offsets, 0);
    return this.offsets;
  }

  read(offset: number): DecodedRecord & { ifaceId: number } {
    return this.reader.read(offset);
  }

  get bytes(): number {
    return this.writer.size;
  }

  /** Closes the files; removes the spool unless asked to keep it. */
  close(keep = false): void {
    this.writer.close();
    if (this.readFd >= 0) closeSync(this.readFd);
    this.readFd = -1;
    if (!keep) rmSync(this.path, { force: true });
  }
}
