import { readFileSync } from 'node:fs';

/** Bytes of this process's mappings the kernel was advised to back with huge pages (smaps VmFlags `hg`). */
export function hugeAdvisedBytes(): number {
  let bytes = 0;
  let size = 0;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const m = /^Size:\s+(\d+) kB/.exec(line);
    if (m) size = Number(m[1]) * 1024;
    else if (line.startsWith('VmFlags:') && line.split(/\s+/).includes('hg')) bytes += size;
  }
  return bytes;
}

/** Whether this kernel has transparent huge pages at all (MADV_HUGEPAGE then fails and nothing is advised). */
export const kernelHasHugePages = (): boolean => {
  try {
    return readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8').length > 0;
  } catch {
    return false;
  }
};
