// The one place where errors of the request path become OCSP response statuses.
import { MalformedRequestError, TryLaterError, UnauthorizedError } from '../ocsp/errors';
import { ERROR_RESPONSES, ErrorStatusName } from '../ocsp/status-responses';

export function statusForError(e: unknown): ErrorStatusName {
  if (e instanceof MalformedRequestError) return 'malformedRequest';
  if (e instanceof UnauthorizedError) return 'unauthorized';
  if (e instanceof TryLaterError) return 'tryLater';
  return 'internalError';
}

export function errorResponse(status: ErrorStatusName): Buffer {
  return ERROR_RESPONSES[status];
}
