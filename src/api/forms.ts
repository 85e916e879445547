// The checks a client runs before it sends a form: the gateway's own (src/core is pure and runs in a
// browser), so the web form and the server refuse the same values with the same words. This file holds
// no schemas, so importing it brings no schema code into the web bundle.
export {
  BATCH_FIELD_LABELS,
  type BatchRequest,
  type BatchSource,
  MAX_JOB_NAME,
  MAX_PATH,
  MAX_SCRIPT_BYTES,
  validateBatchRequest,
} from '../core/batch-request.ts';
export { FIELD_LABELS, type FieldError, MAX_EXTRA_APPS, validateRequest } from '../core/request.ts';
