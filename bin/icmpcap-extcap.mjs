#!/usr/bin/env node
// Wireshark's extcap program for icmpcap (installed in Wireshark's extcap folder by the deb; see
// electron/core/extcap/extcap.ts). Runs the compiled code (build with `npm run build`).
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/electron/core/extcap/extcap.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('icmpcap extcap: not built yet: run `npm run build` in the icmpcap folder\n');
  process.exit(2);
}
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const { extcapMain } = await import(entry.href);
const code = await extcapMain(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  version,
});
process.exit(code);
