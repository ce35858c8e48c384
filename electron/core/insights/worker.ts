/**
 * The insights worker: the answer engines (engines.ts) on a thread of their own, so that what they cost per
 * record (passive traceroute's echo runs, error and neighbour decoding: a third of the service's time per
 * record on its own thread) is not taken from the capture. Started by index.ts; messages in worker-protocol.ts.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { InsightEngines } from './engines.js';
import { lowerThreadPriority } from '../workers.js';
import type { EngineRequest, FromWorker, ToWorker, WorkerSetup } from './worker-protocol.js';

const port = parentPort;
if (port === null) throw new Error('insights/worker.ts runs as a worker thread (see insights/index.ts)');
const setup = workerData as WorkerSetup;
// The capture's thread comes first: the insights may fall behind (bounded, see index.ts), a record may not.
lowerThreadPriority();
const engines = new InsightEngines({ learnSeconds: setup.learnSeconds });
const names = new Map<number, string>();
const ifname = (ifindex: number): string => names.get(ifindex) ?? String(ifindex);
const send = (message: FromWorker): void => port.postMessage(message);

function answer(request: EngineRequest): unknown {
  switch (request.method) {
    case 'problems.list':
      return engines.problemList();
    case 'paths.list':
      return engines.pathList();
    case 'neighbours.get':
      return engines.neighbours();
    case 'neighbours.configure':
      return engines.configure(request.params);
  }
}

port.on('message', (message: ToWorker) => {
  switch (message.t) {
    case 'batch': {
      for (const [id, name] of message.names) names.set(id, name);
      engines.fromFile = message.file;
      try {
        if (message.length > 0) engines.onBatch(message.batch, message.firstNo, ifname, 0, message.length);
      } catch (err) {
        // One batch the engines could not take (a defect) costs the insights that batch, not the rest.
        send({ t: 'log', line: `icmpcap insights: a batch was skipped: ${String(err)}` });
      }
      port.postMessage({ t: 'done', bytes: message.length, buffer: message.batch } satisfies FromWorker, [
        message.batch,
      ]);
      return;
    }
    case 'reset':
      engines.reset();
      return;
    case 'request':
      try {
        send({ t: 'reply', id: message.id, value: answer(message.request) });
      } catch (err) {
        send({ t: 'failed', id: message.id, message: err instanceof Error ? err.message : String(err) });
      }
      return;
    case 'sync':
      send({ t: 'reply', id: message.id, value: null });
      return;
  }
});

setInterval(() => {
  const changed = engines.takeChanges();
  if (!changed.problems && !changed.paths && !changed.neighbours) return;
  send({
    t: 'push',
    ...(changed.problems ? { problems: engines.problemList() } : {}),
    ...(changed.paths ? { paths: engines.pathList() } : {}),
    ...(changed.neighbours ? { neighbours: engines.neighbours() } : {}),
  });
}, setup.pushMs).unref();
