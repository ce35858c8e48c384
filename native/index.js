'use strict';
// icmpcap native addon: capture sources that all emit the record format of
// kernel/include/uapi/linux/icmpcap.h. Types: index.d.ts (this module), raw.d.ts (the .node).
const path = require('node:path');

// Where the addon may be: a Release build, a Debug build (node-gyp --debug), and inside a
// packaged Electron app, where electron-builder unpacks native/build/Release out of app.asar
// (asarUnpack) because neither dlopen nor exec work inside an archive.
function candidateDirs() {
  const dirs = [path.join(__dirname, 'build', 'Release'), path.join(__dirname, 'build', 'Debug')];
  const unpacked = dirs[0].replace(/([\\/])app\.asar([\\/])/, '$1app.asar.unpacked$2');
  if (unpacked !== dirs[0]) dirs.unshift(unpacked);
  return dirs;
}

function load() {
  const tried = [];
  for (const dir of candidateDirs()) {
    const file = path.join(dir, 'icmpcap.node');
    try {
      return { /** @type {import('./raw').RawAddon} */ native: require(file), dir };
    } catch (e) {
      if (e && e.code !== 'MODULE_NOT_FOUND' && e.code !== 'ERR_DLOPEN_FAILED') throw e;
      tried.push(`${file} (${e && e.code === 'MODULE_NOT_FOUND' ? 'missing' : e.message})`);
    }
  }
  const err = new Error(
    `icmpcap: cannot load the native addon; tried:\n  ${tried.join('\n  ')}\n` +
      'Build it with `npm run build:native` (it needs g++, make and python3).',
  );
  err.code = 'ENOENT';
  err.tried = tried;
  throw err;
}

const { native, dir: addonDir } = load();

// The helper sits next to the .node file (in a packaged app: in app.asar.unpacked).
function defaultHelperPath() {
  return path.join(addonDir, 'icmpcap-helper');
}

function open(config) {
  if (config === null || typeof config !== 'object') {
    const err = new TypeError('icmpcap: open(config) needs an object');
    err.code = 'EINVAL';
    throw err;
  }
  const cfg = { ...config };
  if (cfg.helperPath === undefined) cfg.helperPath = defaultHelperPath();
  return native.open(cfg);
}

function probe(options) {
  return native.probe((options && options.helperPath) || defaultHelperPath());
}

module.exports = {
  ABI_VERSION: native.ABI_VERSION,
  RECORD_HEADER_SIZE: native.RECORD_HEADER_SIZE,
  MAX_HELD_BATCHES: native.MAX_HELD_BATCHES,
  open,
  interfaces: () => native.interfaces(),
  watchInterfaces: (onChange) => native.watchInterfaces(onChange),
  routeGet: (destination) => native.routeGet(destination),
  routesV4: () => native.routesV4(),
  probe,
  encodeSpoolBlocks: native.encodeSpoolBlocks,
  encodeSpoolRuns: native.encodeSpoolRuns,
  adviseHugePages: native.adviseHugePages,
  defaultHelperPath,
};
