/** How the service's failures become the contract's errors. */
import { ServiceError } from '../../common/contract.js';
import { FilterSyntaxError } from '../filter/index.js';
import { FilterCancelled, SortCancelled } from '../view.js';

export function filterError(err: unknown): ServiceError {
  if (err instanceof FilterSyntaxError) return new ServiceError('filter-syntax', err.message, err.position);
  if (err instanceof FilterCancelled) return new ServiceError('bad-request', 'replaced by a newer filter');
  if (err instanceof SortCancelled)
    return new ServiceError('cancelled', 'replaced by a newer filter or sort, or cancelled');
  return new ServiceError('internal', errorMessage(err));
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
