/**
 * Makes store chunks and page buffers ahead for a ChunkSupply (chunk-supply.ts). A number on the port asks for
 * that many chunks: for each it makes the column buffers, writes every page once (the page faults happen here)
 * and hands them over, an array of buffers. `{ buffers, bytes }` asks for page buffers of `bytes` bytes, each
 * written page by page and handed over alone.
 */
import { type MessagePort, parentPort } from 'node:worker_threads';
import { chunkBuffers, newBuffer } from './store.js';
import { lowerThreadPriority } from './workers.js';

lowerThreadPriority();

parentPort!.once('message', ({ port }: { port: MessagePort }) => {
  port.on('message', (asked: unknown) => {
    if (typeof asked === 'number') {
      if (!Number.isInteger(asked) || asked < 1 || asked > 64) return;
      for (let k = 0; k < asked; k++) {
        const buffers = chunkBuffers(true);
        port.postMessage(buffers, buffers);
      }
      return;
    }
    const { buffers, bytes } = (asked ?? {}) as { buffers?: unknown; bytes?: unknown };
    if (typeof buffers !== 'number' || !Number.isInteger(buffers) || buffers < 1 || buffers > 64) return;
    if (typeof bytes !== 'number' || !Number.isInteger(bytes) || bytes < 1 || bytes > 64 << 20) return;
    for (let k = 0; k < buffers; k++) {
      const buffer = newBuffer(bytes, true);
      port.postMessage(buffer, [buffer]);
    }
  });
});
