/**
 * Makes store chunks ahead for a ChunkSupply (chunk-supply.ts): each message on the port is a count; for each
 * chunk it makes the column buffers, writes every page once (the page faults happen here) and hands them over.
 */
import { type MessagePort, parentPort } from 'node:worker_threads';
import { chunkBuffers } from './store.js';
import { lowerThreadPriority } from './workers.js';

lowerThreadPriority();

parentPort!.once('message', ({ port }: { port: MessagePort }) => {
  port.on('message', (count: unknown) => {
    if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > 64) return;
    for (let k = 0; k < count; k++) {
      const buffers = chunkBuffers(true);
      port.postMessage(buffers, buffers);
    }
  });
});
