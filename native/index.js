'use strict';
// icmpcap native addon: capture sources that all emit the record format of
// kernel/include/uapi/linux/icmpcap.h. Types: index.d.ts.
const path = require('node:path');

const addonDir = path.join(__dirname, 'build', 'Release');
const native = require(path.join(addonDir, 'icmpcap.node'));

// Inside a packaged Electron app the helper cannot run from app.asar: electron-builder must
// unpack native/build/Release (asarUnpack), and the helper is then found next to the .node file.
function defaultHelperPath() {
  const dir = addonDir.replace(/([\\/])app\.asar([\\/])/, '$1app.asar.unpacked$2');
  return path.join(dir, 'icmpcap-helper');
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
  open,
  interfaces: () => native.interfaces(),
  watchInterfaces: (onChange) => native.watchInterfaces(onChange),
  probe,
  defaultHelperPath,
  // Test and bench only: synthetic records through the same batching + ThreadSafeFunction path.
  _benchSession: native._benchSession,
};
