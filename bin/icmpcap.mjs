#!/usr/bin/env -S node --initial-old-space-size=512 --v8-pool-size=0
// The installed `icmpcap` command: runs the compiled CLI (build with `npm run build`). The flags are the capture
// service's (build/app-meta.cjs, serviceV8Flags and serviceNodeFlags); the packages' /usr/bin/icmpcap passes them too.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/electron/core/cli.js', import.meta.url);
if (!existsSync(fileURLToPath(cli))) {
  process.stderr.write('icmpcap: not built yet: run `npm run build` in the icmpcap folder\n');
  process.exit(2);
}
const { main } = await import(cli.href);
await main(process.argv.slice(2));
