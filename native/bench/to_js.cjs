'use strict';
// native.to_js_records_per_s and native.to_js_object_per_record_records_per_s: synthetic
// records through the binding's real delivery path (Batcher -> bounded queue ->
// ThreadSafeFunction -> one V8-owned ArrayBuffer per batch), against the same records
// delivered as one JS object per record. Prints one JSON object.
const native = require('../bench.js');

function run(count, capLen, perRecordObjects) {
  return new Promise((resolve) => {
    const session = native.benchSession(count, capLen, perRecordObjects);
    let records = 0;
    let checksum = 0;
    const t0 = process.hrtime.bigint();
    session.start(
      (batch, info) => {
        records += info.records;
        // Touch what was delivered so neither variant is optimised away.
        checksum += perRecordObjects ? batch[batch.length - 1].seq : batch.byteLength;
      },
      (ev) => {
        if (ev.type !== 'stopped') return;
        const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
        session.close();
        resolve({ records, seconds, recordsPerS: records / seconds, checksum });
      },
    );
  });
}

(async () => {
  const capLen = Number(process.argv[2] || 64);
  await run(200000, capLen, false); // warm up
  const batch = await run(Number(process.argv[3] || 20_000_000), capLen, false);
  const objects = await run(Number(process.argv[4] || 1_000_000), capLen, true);
  process.stdout.write(JSON.stringify({ recordBytes: (72 + capLen + 7) & ~7, batch, objects }) + '\n');
})();
