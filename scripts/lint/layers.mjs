// The layers of DESIGN.md, enforced (as VS Code's layer checks are): each folder lists what it must not import.
//   electron/common  pure code shared by every layer: no runtime (no node:*, no Electron), nothing from core,
//                    main, preload or the renderer.
//   electron/core    Node only: never Electron, never main/preload/renderer.
//   electron/main    Electron's main process: owns the service, but not the CLI or the browser-mode server.
//   renderer/src     the browser: electron/common (through @common) and its own packages, nothing else.
// eslint.config.js spreads `layerConfigs`; test/unit/lint-layers.test.ts proves each rule still fires.
import { builtinModules } from 'node:module';

// Anchored: a gitignore-style group `constants` would also match `@common/constants`.
const escape = (m) => m.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const nodeBuiltins = `^(node:.*|(${builtinModules.map(escape).join('|')})(/.*)?)$`;

const noRuntime = {
  regex: nodeBuiltins,
  message:
    'electron/common is shared with the renderer: no Node runtime here (move this code to electron/core).',
};
const noElectron = {
  regex: '^electron(/.*)?$', // anchored: `../../electron/core` is a path, not the package
  message: 'Only electron/main and electron/preload may import Electron.',
};

/** @param {({ group: string[] } | { regex: string })[]} patterns */
const restrict = (patterns) => ({ 'no-restricted-imports': ['error', { patterns }] });

export const layerConfigs = [
  {
    files: ['electron/common/**/*.ts'],
    rules: restrict([
      noRuntime,
      noElectron,
      {
        group: ['**/core', '**/core/**', '**/main/**', '**/preload/**', '**/renderer/**', '**/native/**'],
        message: 'electron/common imports nothing from the other layers; they import it.',
      },
    ]),
  },
  {
    files: ['electron/core/**/*.ts'],
    rules: restrict([
      {
        ...noElectron,
        message: 'electron/core runs in Node and the browser-mode server: never import Electron.',
      },
      {
        group: ['**/electron/main/**', '../main/**', '../../main/**', '**/preload/**', '**/renderer/**'],
        message: 'electron/core must not depend on the Electron shell or the renderer.',
      },
    ]),
  },
  {
    files: ['electron/main/**/*.ts'],
    rules: restrict([
      {
        group: ['**/core/cli', '**/core/cli.js', '**/core/cli/**', '**/core/server', '**/core/server.js'],
        message:
          'The Electron main process must not import the CLI or the browser-mode server: move what it needs into a module of its own.',
      },
    ]),
  },
  {
    files: ['renderer/src/**/*.ts', 'renderer/src/**/*.vue'],
    rules: restrict([
      { regex: nodeBuiltins, message: 'The renderer runs in a browser: no Node modules.' },
      {
        ...noElectron,
        message: 'The renderer is sandboxed: reach the service through the preload API / transport.',
      },
      {
        group: ['**/electron/**', '!**/electron/common', '!**/electron/common/**', '**/native/**'],
        message: 'The renderer imports nothing but electron/common (as @common/...).',
      },
    ]),
  },
];
