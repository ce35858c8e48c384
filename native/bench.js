'use strict';
// Bench and test only: icmpcap_bench.node, the production binding plus benchSession(), a
// synthetic source feeding records through the real delivery path (Batcher, bounded queue,
// ThreadSafeFunction, one ArrayBuffer per batch), optionally as one JS object per record.
// Types: bench.d.ts.
const path = require('node:path');

/** @type {import('./raw').RawBenchAddon} */
const native = require(path.join(__dirname, 'build', 'Release', 'icmpcap_bench.node'));

module.exports = {
  MAX_HELD_BATCHES: native.MAX_HELD_BATCHES,
  benchSession: (count, capLen, perRecordObjects, options) =>
    options === undefined
      ? native.benchSession(count, capLen, perRecordObjects)
      : native.benchSession(count, capLen, perRecordObjects, options),
};
