// Errors across the IPC channel keep their type: a refusal made in the primary (limiter, token down, timeout) is
// the same error in the serving process, so http/ocsp-status.ts maps it to the same OCSP status as in one process.
import { SignerUnavailableError, SignTimeoutError } from '../hsm/faults';
import { LimiterRejectedError, PermitNotFreeError, RejectReason } from '../signing/signing-limiter';
import { MalformedRequestError, TryLaterError, UnauthorizedError } from '../ocsp/errors';

export interface EncodedError {
  /** One of KINDS, or "other". */
  kind: string;
  message: string;
  reason?: RejectReason;
  /** A tryLater's Retry-After, where the refusal knows one. */
  retryAfterSeconds?: number;
}

const KINDS: Record<string, new (message: string) => Error> = {
  SignerUnavailableError,
  SignTimeoutError,
  PermitNotFreeError,
  TryLaterError,
  MalformedRequestError,
  UnauthorizedError,
};

export function encodeError(e: unknown): EncodedError {
  if (e instanceof LimiterRejectedError) return { kind: 'LimiterRejectedError', message: e.message, reason: e.reason, retryAfterSeconds: e.retryAfterSeconds ?? 1 };
  for (const [kind, type] of Object.entries(KINDS)) if (e instanceof type) return { kind, message: (e as Error).message };
  return { kind: 'other', message: e instanceof Error ? e.message : String(e) };
}

// Refusals come back by the thousand under overload: one shared object per reason and Retry-After, as the limiter
// does (3 reasons × 60 s).
const REFUSED = new Map<string, LimiterRejectedError>();

export function decodeError(e: EncodedError): Error {
  if (e.kind === 'LimiterRejectedError' && e.reason) {
    const seconds = e.retryAfterSeconds ?? 1;
    const key = `${e.reason}\0${seconds}\0${e.message}`;
    let refused = REFUSED.get(key);
    if (refused) return refused;
    refused = new LimiterRejectedError(e.reason, e.message, seconds);
    if (REFUSED.size < 256) REFUSED.set(key, refused);
    return refused;
  }
  const type = KINDS[e.kind];
  return type ? new type(e.message) : new Error(e.message);
}
