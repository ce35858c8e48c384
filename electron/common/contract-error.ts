/** Any thrown value as the contract's error shape: the WebSocket server and Electron's IPC both answer with it. */
import { type ContractError, ServiceError } from './contract.js';

export function contractError(err: unknown): ContractError {
  if (err instanceof ServiceError) return err.toJSON();
  const message = err instanceof Error ? err.message : String(err);
  return { code: 'internal', message };
}
