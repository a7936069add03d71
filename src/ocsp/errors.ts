// Typed errors of the request path; src/http/ocsp-status.ts maps each to an OCSP response status.

export class MalformedRequestError extends Error {
  override name = 'MalformedRequestError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The request names an issuer this responder has no authority for (RFC 9919 section 3.2.3). */
export class UnauthorizedError extends Error {
  override name = 'UnauthorizedError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Transient inability to answer: overload or HSM unavailable. */
export class TryLaterError extends Error {
  override name = 'TryLaterError';
  /** When the client may come back, in whole seconds (HTTP Retry-After), where the refusal knows; else unset. */
  readonly retryAfterSeconds: number | undefined;
  constructor(message: string, options?: { cause?: unknown; retryAfterSeconds?: number }) {
    super(message, options);
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }
}
