'use strict';
// icmpcap native addon: capture sources that all emit the record format of
// kernel/include/uapi/linux/icmpcap.h. Types: index.d.ts.
const fs = require('node:fs');
const path = require('node:path');

const addonDir = path.join(__dirname, 'build', 'Release');
const native = require(path.join(addonDir, 'icmpcap.node'));

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
  const helper = (options && options.helperPath) || defaultHelperPath();
  return native.probe(fs.existsSync(helper) ? helper : helper);
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
