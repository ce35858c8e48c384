/**
 * The capture service (service/capture-service.ts) and what other modules import of it. Each concern of the
 * service has one home in service/: the capture state machine and ingest path (capture-service.ts), request
 * dispatch (dispatch.ts), spool ownership (spool-owner.ts), the ring-buffer policy (ring-policy.ts), export
 * and open jobs (file-jobs.ts), the capture rate (rates.ts), push throttling (push-throttle.ts) and errors
 * (errors.ts).
 */
export {
  CaptureService,
  type EventListener,
  type RecordTap,
  type ServiceOptions,
} from './service/capture-service.js';
export { errorMessage } from './service/errors.js';
