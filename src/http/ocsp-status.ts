// The one place where errors of the request path become OCSP response statuses.
import { MalformedRequestError, TryLaterError, UnauthorizedError } from '../ocsp/errors';
import { ERROR_RESPONSES, ErrorStatusName } from '../ocsp/status-responses';

export function statusForError(e: unknown): ErrorStatusName {
  if (e instanceof MalformedRequestError) return 'malformedRequest';
  if (e instanceof UnauthorizedError) return 'unauthorized';
  // Overload (LimiterRejectedError) and HSM trouble (SignerUnavailableError, SignTimeoutError) are kinds of
  // TryLaterError: transient, the client should come back (RFC 6960 section 2.3).
  if (e instanceof TryLaterError) return 'tryLater';
  return 'internalError';
}

/** Retry-After of a tryLater answer, in whole seconds: the refusal's estimate (the signing limiter's), else 1. */
export function retryAfterFor(e: unknown): number {
  return e instanceof TryLaterError && e.retryAfterSeconds !== undefined ? e.retryAfterSeconds : 1;
}

export function errorResponse(status: ErrorStatusName): Buffer {
  return ERROR_RESPONSES[status];
}
