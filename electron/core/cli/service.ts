/** The capture service and version for the command line's commands. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadNative } from '../native.js';
import { projectRoot } from '../paths.js';
import { CaptureService } from '../service.js';

export function version(): string {
  const pkg = JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

export function makeService(): CaptureService {
  let native;
  try {
    native = loadNative();
  } catch (err) {
    native = err instanceof Error ? err : new Error(String(err));
  }
  return new CaptureService({ native, version: version() });
}
