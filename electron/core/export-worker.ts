/**
 * The pcapng and pcap exports' thread (spool-copy.ts): started by spool-export.ts (and kept for the next
 * export), at WORKER_NICE, so the capture's thread comes first on a machine with few cores. It copies the pieces it is sent
 * in order, answers each (`piece-done`), and at `end` writes the rest and answers `finished` with the file's
 * length; the first error ends it (`error`: the file's writes failed, the spool's reads, or the thread).
 */
import { parentPort } from 'node:worker_threads';
import { CopyWriteError, SpoolCopier, type CopyReply, type CopyRequest } from './spool-copy.js';
import { lowerThreadPriority } from './workers.js';

const port = parentPort;
if (port === null) throw new Error('export-worker.ts runs as a worker thread (see spool-export.ts)');
lowerThreadPriority();

let copier: SpoolCopier | null = null;
let failed = false;
const reply = (r: CopyReply): void => port.postMessage(r);

port.on('message', (m: CopyRequest) => {
  if (m.type === 'start') failed = false; // a thread is kept for the next export only after one that finished
  if (failed) return;
  try {
    if (m.type === 'start') copier = new SpoolCopier(m.format, m.out, m.window, m.header);
    else if (copier === null) throw new Error('the export worker was not started');
    else if (m.type === 'piece') {
      copier.piece(m);
      const { locations, ids, comments } = m;
      const transfer: ArrayBuffer[] = [locations.buffer as ArrayBuffer];
      if (ids) transfer.push(ids.buffer as ArrayBuffer);
      if (comments) transfer.push(comments.buffer as ArrayBuffer);
      const arrays = { locations, ids, comments };
      port.postMessage(
        { type: 'piece-done', records: copier.records, skipped: copier.skipped, arrays },
        transfer,
      );
    } else {
      const c = copier;
      copier = null; // its buffers go; the next export brings a copier of its own
      c.finish().then(
        (bytes) => reply({ type: 'finished', records: c.records, bytes, skipped: c.skipped }),
        (err: unknown) => fail(err),
      );
    }
  } catch (err) {
    fail(err);
  }
});

function fail(err: unknown): void {
  failed = true;
  const writing = err instanceof CopyWriteError;
  const cause = (writing ? err.cause : err) as NodeJS.ErrnoException;
  // An error with an errno that is not the file's writes came from the spool's reads.
  const what = writing ? 'write' : cause?.code !== undefined ? 'read' : 'thread';
  reply({ type: 'error', message: cause?.message ?? String(err), code: cause?.code, failed: what });
}
