// The layer rules of eslint.config.js (scripts/lint/layers.mjs), run on snippets: each layer's forbidden import
// must be reported and its allowed imports must not. The rule settings come from the real config, as ESLint
// computes them for a file in each folder, so a config that loses a rule fails here, not silently.
import { ESLint, Linter } from 'eslint';
import tseslint from 'typescript-eslint';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const eslint = new ESLint({ cwd: root });

async function importErrors(file: string, source: string): Promise<string[]> {
  const config = (await eslint.calculateConfigForFile(file)) as Linter.Config;
  const rule = config.rules?.['no-restricted-imports'];
  const linter = new Linter({ configType: 'flat' });
  const messages = linter.verify(
    source,
    [
      {
        files: ['**/*.ts', '**/*.vue'],
        languageOptions: {
          parser: file.endsWith('.vue') ? config.languageOptions?.parser : tseslint.parser,
          parserOptions: { parser: tseslint.parser, sourceType: 'module', ecmaVersion: 'latest' },
        },
        rules: rule ? { 'no-restricted-imports': rule } : {},
      },
    ],
    file,
  );
  const fatal = messages.filter((m) => m.fatal);
  expect(fatal).toEqual([]);
  return messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

const cases: { file: string; bad: string[]; good: string[] }[] = [
  {
    file: 'electron/common/layer-probe.ts',
    bad: [
      "import { readFileSync } from 'node:fs';",
      "import { join } from 'path';",
      "import { readFile } from 'fs/promises';",
      "import { app } from 'electron';",
      "import type { CaptureService } from '../core/service.js';",
      "export { x } from '../main/app.js';",
      "import { y } from '../../renderer/src/format.js';",
    ],
    good: ["import { z } from 'zod';", "import { ServiceError } from './contract.js';"],
  },
  {
    file: 'electron/core/layer-probe.ts',
    bad: [
      "import { app } from 'electron';",
      "import { ipcMain } from 'electron/main';",
      "import { runApp } from '../main/app.js';",
    ],
    good: [
      "import { readFileSync } from 'node:fs';",
      "import { z } from 'zod';",
      "import { ServiceError } from '../common/contract.js';",
    ],
  },
  {
    file: 'electron/main/layer-probe.ts',
    bad: [
      "import { version } from '../core/cli.js';",
      "import { contractError } from '../core/server.js';",
      "import { run } from '../core/cli/index.js';",
    ],
    good: [
      "import { app } from 'electron';",
      "import { CaptureService } from '../core/service.js';",
      "import { version } from '../core/version.js';",
    ],
  },
  {
    file: 'renderer/src/layer-probe.ts',
    bad: [
      "import { readFileSync } from 'node:fs';",
      "import { EventEmitter } from 'events';",
      "import { ipcRenderer } from 'electron';",
      "import { CaptureService } from '../../electron/core/service.js';",
      "import { loadNative } from '../../native/index.js';",
    ],
    good: [
      "import { ref } from 'vue';",
      "import { defineStore } from 'pinia';",
      "import { EXPORT_FORMATS } from '@common/contract';",
      "import { FIELDS } from '@common/constants';",
      "import { fmt } from './format';",
    ],
  },
  {
    file: 'renderer/src/components/LayerProbe.vue',
    bad: [
      '<script setup lang="ts">\nimport { statSync } from \'node:fs\';\n</script>\n',
      '<script setup lang="ts">\nimport { CaptureService } from \'../../../electron/core/service.js\';\n</script>\n',
    ],
    good: [
      "<script setup lang=\"ts\">\nimport { ref } from 'vue';\nimport { ICMP } from '@common/icmp';\n</script>\n",
    ],
  },
];

describe('lint layers (eslint.config.js)', () => {
  beforeAll(async () => {
    // The probes stand for files of each folder; they must get the layer rule from the real config.
    const config = (await eslint.calculateConfigForFile('electron/common/contract.ts')) as Linter.Config;
    expect(config.rules?.['no-restricted-imports']).toBeDefined();
  });
  for (const { file, bad, good } of cases) {
    for (const source of bad) {
      it(`${file}: refuses ${source.split('\n').find((l) => l.startsWith('import') || l.startsWith('export'))}`, async () => {
        const errors = await importErrors(file, source);
        expect(errors).toHaveLength(1);
      });
    }
    it(`${file}: allows its own layer's imports`, async () => {
      for (const source of good) expect(await importErrors(file, source), source).toEqual([]);
    });
  }
});
