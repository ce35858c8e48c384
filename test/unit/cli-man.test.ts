/** The man page the deb installs (build/deb/icmpcap/icmpcap.1) documents every flag `icmpcap help` lists. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { COMMAND_HELP } from '../../electron/core/cli/usage.js';

const MAN = 'build/deb/icmpcap/icmpcap.1';
/** The man page as text: roff's `\-` is a minus. */
const man = readFileSync(MAN, 'utf8').replaceAll('\\-', '-');

describe('icmpcap.1', () => {
  it.each(Object.keys(COMMAND_HELP))('documents the command %s and each of its flags', (command) => {
    expect(man).toMatch(new RegExp(`^\\.B ${command}$|^\\.BI? ${command} `, 'm'));
    const flags = new Set(COMMAND_HELP[command]!.match(/(?<=^ {2}|, )--?[a-zA-Z][\w-]*/gm) ?? []);
    for (const flag of flags)
      expect(man, `${command} ${flag}`).toMatch(new RegExp(`(^|[ ,"(])${flag}\\b`, 'm'));
  });

  it.skipIf(spawnSync('man', ['--version']).status !== 0)(
    'renders without warnings, as lintian checks it',
    () => {
      const r = spawnSync('man', ['--warnings', '-E', 'UTF-8', '-l', '-Tutf8', '-Z', MAN], {
        env: { ...process.env, LC_ALL: 'C.UTF-8', MANROFFSEQ: '', MANWIDTH: '80' },
        encoding: 'utf8',
      });
      expect(r.status).toBe(0);
      expect(r.stderr).toBe('');
    },
  );
});
