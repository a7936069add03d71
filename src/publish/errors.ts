// Refusals of the publishing API: an HTTP status, the request field at fault, and a message for the CA's operator.

export class PublishError extends Error {
  override name = 'PublishError';
  constructor(
    readonly status: number,
    /** The request field at fault ("serial", "revokedAt", "ca", "(body)"), when there is one. */
    readonly field: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

/** The JSON body of every refusal: `{ "error": message, "field": name }`. */
export function errorBody(e: PublishError): { error: string; field?: string } {
  return e.field === undefined ? { error: e.message } : { error: e.message, field: e.field };
}
