/** The preload exposes exactly one small API over the contract's channels (stand-in `electron`). */
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { IPC_EVENT_CHANNEL, IPC_REQUEST_CHANNEL } from '../../electron/common/contract.js';

const exposed = new Map<string, unknown>();
const invoked: unknown[][] = [];
const rendererListeners = new Map<string, (...a: unknown[]) => void>();
let reply: unknown = { ok: true, result: { version: '1' } };

vi.mock('electron', () => ({
  contextBridge: { exposeInMainWorld: (key: string, api: unknown) => exposed.set(key, api) },
  ipcRenderer: {
    invoke: (...args: unknown[]) => {
      invoked.push(args);
      return Promise.resolve(reply);
    },
    on: (channel: string, l: (...a: unknown[]) => void) => rendererListeners.set(channel, l),
  },
}));

describe('preload', () => {
  beforeEach(async () => {
    await import('../../electron/preload/preload.js');
  });

  it('exposes only `icmpcap` with request and onEvent', () => {
    expect([...exposed.keys()]).toEqual(['icmpcap']);
    expect(Object.keys(exposed.get('icmpcap') as object).sort()).toEqual(['onEvent', 'request']);
  });

  it('sends requests on the contract channel and unwraps errors', async () => {
    const api = exposed.get('icmpcap') as { request(m: string, p?: unknown): Promise<unknown> };
    await expect(api.request('hello')).resolves.toEqual({ version: '1' });
    expect(invoked.at(-1)).toEqual([IPC_REQUEST_CHANNEL, 'hello', {}]);
    reply = { ok: false, error: { code: 'bad-request', message: 'nope' } };
    await expect(api.request('view.rows', { start: -1, count: 1 })).rejects.toMatchObject({
      code: 'bad-request',
      message: 'nope',
    });
  });

  it('delivers events from the contract channel to listeners until they unsubscribe', () => {
    const api = exposed.get('icmpcap') as { onEvent(e: string, l: (d: unknown) => void): () => void };
    const got: unknown[] = [];
    const off = api.onEvent('counts', (d) => got.push(d));
    const deliver = rendererListeners.get(IPC_EVENT_CHANNEL)!;
    deliver({}, 'counts', { total: 1 });
    deliver({}, 'state', { state: 'running' });
    off();
    deliver({}, 'counts', { total: 2 });
    expect(got).toEqual([{ total: 1 }]);
  });
});
