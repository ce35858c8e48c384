/**
 * The preload: the only bridge between the sandboxed page and the main process. A sandboxed preload
 * cannot load other files, so it is self-contained; its channel names are checked against the contract
 * by electron/preload/preload.test.ts.
 */
import { contextBridge, ipcRenderer } from 'electron';
import type { ContractError, EventName, Events, IcmpcapApi, PageRequestName } from '../common/contract.js';

const REQUEST_CHANNEL = 'icmpcap:request';
const EVENT_CHANNEL = 'icmpcap:event';

type Reply = { ok: true; result: unknown } | { ok: false; error: ContractError };

class RemoteError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly position?: number,
  ) {
    super(message);
  }
}

const listeners = new Map<string, Set<(data: unknown) => void>>();
ipcRenderer.on(EVENT_CHANNEL, (_event, name: unknown, data: unknown) => {
  if (typeof name !== 'string') return;
  for (const listener of listeners.get(name) ?? []) listener(data);
});

export const api: IcmpcapApi = {
  async request(method: PageRequestName, params?: unknown) {
    const reply = (await ipcRenderer.invoke(REQUEST_CHANNEL, method, params ?? {})) as Reply;
    if (reply.ok) return reply.result as never;
    throw new RemoteError(reply.error.code, reply.error.message, reply.error.position);
  },
  onEvent<E extends EventName>(event: E, listener: (data: Events[E]) => void) {
    let set = listeners.get(event);
    if (!set) listeners.set(event, (set = new Set()));
    const wrapped = listener as (data: unknown) => void;
    set.add(wrapped);
    return () => set.delete(wrapped);
  },
};

contextBridge.exposeInMainWorld('icmpcap', api);
