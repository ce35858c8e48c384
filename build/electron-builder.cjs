// electron-builder configuration (electron-builder 26): `electron-builder --config build/electron-builder.cjs`.
// scripts/package.sh drives it and also reads the same values (desktop entry, file associations, Depends)
// when it assembles the debs with dpkg-deb itself, so this file is the one place they are written down.
//
// Offline: electron-builder downloads Electron unless `electronDist` names an unpacked one. It is taken from
// ICMPCAP_ELECTRON_DIST, else ELECTRON_OVERRIDE_DIST_PATH (the variable @electron/get and our Playwright specs
// already use). Without either, electron-builder would try to download Electron; scripts/package.sh refuses
// before that happens and says what is missing.
'use strict';

const electronDist =
  process.env.ICMPCAP_ELECTRON_DIST || process.env.ELECTRON_OVERRIDE_DIST_PATH || undefined;

const meta = require('./app-meta.cjs');

/** @type {import('electron-builder').Configuration} */
module.exports = {
  appId: 'io.github.icmpcap',
  productName: 'icmpcap',
  executableName: 'icmpcap',
  copyright: 'Copyright © the icmpcap authors',
  directories: {
    buildResources: 'build',
    output: 'artifacts/packages',
  },
  electronDist,
  // The native addon and the capture helper must be real files (dlopen, and setcap on the helper); the CLI
  // runs the same tree with ELECTRON_RUN_AS_NODE. An asar archive would only have to be unpacked again.
  asar: false,
  npmRebuild: false,
  nodeGypRebuild: false,
  buildDependenciesFromSource: false,
  files: [
    'package.json',
    'bin/icmpcap.mjs',
    'dist/electron/**/*.js',
    'dist/preload/**/*',
    'dist/renderer/**/*',
    '!**/*.map',
    '!**/*.tsbuildinfo',
    '!**/*.test.js',
    'native/index.js',
    'native/index.d.ts',
    'native/package.json',
    'native/build/Release/icmpcap.node',
    'native/build/Release/icmpcap-helper',
    // Build-time only (they are in "dependencies" today; see the packaging report).
    '!node_modules/node-gyp/**',
    '!node_modules/node-addon-api/**',
  ],
  extraFiles: [{ from: 'build/linux/icmpcap-cli', to: 'icmpcap-cli' }],
  fileAssociations: meta.fileAssociations,
  linux: {
    target: ['deb', 'AppImage'],
    category: 'Network',
    // PNGs rendered from build/icons/icmpcap.svg by scripts/package.sh (16..512, named NxN.png).
    icon: 'artifacts/packages/icons',
    maintainer: meta.maintainer,
    vendor: 'icmpcap',
    synopsis: meta.synopsis,
    description: meta.description,
    executableName: 'icmpcap',
    // The service runs in the main process: its V8 flags must be there from the start (app-meta.cjs).
    executableArgs: [`--js-flags=${meta.serviceV8Flags.join(' ')}`],
    desktop: { entry: meta.desktopEntry },
  },
  deb: {
    packageName: 'icmpcap',
    depends: [`icmpcap-dkms (= ${meta.version})`, ...meta.debDepends],
    packageCategory: 'net',
    priority: 'optional',
    afterInstall: 'build/deb/icmpcap/postinst',
    afterRemove: 'build/deb/icmpcap/postrm',
  },
  appImage: {
    artifactName: '${productName}-${version}-${arch}.${ext}',
    category: 'Network',
  },
};
