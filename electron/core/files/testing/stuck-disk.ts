/**
 * A disk whose writes block, for real: a small ext4 image on a loop device, frozen with fsfreeze(8). A
 * write(2) to a frozen filesystem waits in the kernel until it is thawed, as one does on a disk that has
 * fallen behind (dirty-page limits, a stalled NFS server). A watchdog process thaws it after `thawAfterS`
 * seconds whatever happens to the test (a writeSync on the event loop would otherwise wait forever) and
 * then creates `thawedMarker`: code that runs while the disk is frozen sees no marker.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export interface StuckDisk {
  /** Where the filesystem is mounted (write here). */
  dir: string;
  /** Blocks every write to `dir` until thaw() (or the watchdog). */
  freeze(thawAfterS: number): void;
  thaw(): void;
  /** True once the disk was thawed (by thaw() or by the watchdog). */
  thawed(): boolean;
  /** Thaws, unmounts, deletes. */
  remove(): void;
}

/** Whether this machine can make one: root, loop devices, mkfs.ext4 and fsfreeze. */
export function canStickDisk(): boolean {
  if (process.getuid?.() !== 0 || !existsSync('/dev/loop-control')) return false;
  try {
    execFileSync('sh', ['-c', 'command -v mkfs.ext4 && command -v fsfreeze && command -v losetup'], {
      stdio: 'ignore',
    });
    return true;
  } catch {
    return false;
  }
}

export function stuckDisk(parent: string, sizeMiB = 64): StuckDisk {
  const image = join(parent, 'stuck-disk.img');
  const dir = join(parent, 'stuck-disk');
  const marker = join(parent, 'stuck-disk.thawed');
  mkdirSync(dir, { recursive: true });
  execFileSync('truncate', ['-s', `${sizeMiB}M`, image]);
  execFileSync('mkfs.ext4', ['-q', '-F', image]);
  execFileSync('mount', ['-o', 'loop', image, dir]);
  let frozen = false;
  const thaw = (): void => {
    if (!frozen) return;
    frozen = false;
    try {
      execFileSync('fsfreeze', ['-u', dir], { stdio: 'ignore' });
    } catch {
      // the watchdog thawed it already
    }
  };
  return {
    dir,
    freeze(thawAfterS: number) {
      rmSync(marker, { force: true });
      execFileSync('fsfreeze', ['-f', dir]);
      frozen = true;
      spawn('sh', ['-c', `sleep ${thawAfterS}; fsfreeze -u '${dir}' 2>/dev/null; touch '${marker}'`], {
        detached: true,
        stdio: 'ignore',
      }).unref();
    },
    thaw() {
      thaw();
      execFileSync('touch', [marker]);
    },
    thawed: () => existsSync(marker),
    remove() {
      thaw();
      execFileSync('umount', ['-l', dir]);
      rmSync(image, { force: true });
      rmSync(marker, { force: true });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
