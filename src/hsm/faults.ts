// Classifies PKCS#11 errors: which ones break a session, which the whole device, which must never be retried.
import * as pkcs11js from 'pkcs11js';
import { TryLaterError } from '../ocsp/errors';
import { pkcs11Code } from './pkcs11-errors';

/** The session (or the handles it saw) is unusable; reopening sessions and logging in again may fix it. */
const SESSION_FAULTS = new Set([
  pkcs11js.CKR_SESSION_HANDLE_INVALID,
  pkcs11js.CKR_SESSION_CLOSED,
  pkcs11js.CKR_USER_NOT_LOGGED_IN,
  pkcs11js.CKR_OBJECT_HANDLE_INVALID,
  pkcs11js.CKR_KEY_HANDLE_INVALID,
]);

/** The token or module is in trouble; recovery may need to re-initialize the module. */
const DEVICE_FAULTS = new Set([
  pkcs11js.CKR_DEVICE_REMOVED,
  pkcs11js.CKR_DEVICE_ERROR,
  pkcs11js.CKR_DEVICE_MEMORY,
  pkcs11js.CKR_TOKEN_NOT_PRESENT,
  pkcs11js.CKR_TOKEN_NOT_RECOGNIZED,
  pkcs11js.CKR_FUNCTION_FAILED,
  pkcs11js.CKR_GENERAL_ERROR,
  pkcs11js.CKR_CRYPTOKI_NOT_INITIALIZED,
  pkcs11js.CKR_SLOT_ID_INVALID,
]);

/** Retrying these locks real HSM tokens (PIN retry counters): stop and tell the operator. */
const FATAL = new Set([
  pkcs11js.CKR_PIN_INCORRECT,
  pkcs11js.CKR_PIN_LOCKED,
  pkcs11js.CKR_PIN_EXPIRED,
  pkcs11js.CKR_PIN_INVALID,
  pkcs11js.CKR_PIN_LEN_RANGE,
]);

export type FaultKind = 'session' | 'device' | 'fatal';

export function faultKind(e: unknown): FaultKind | undefined {
  const code = pkcs11Code(e);
  if (code === undefined) return undefined;
  if (SESSION_FAULTS.has(code)) return 'session';
  if (DEVICE_FAULTS.has(code)) return 'device';
  if (FATAL.has(code)) return 'fatal';
  return undefined;
}

/** No session of the token can sign now (down, recovering, or all busy with stuck calls): a kind of tryLater. */
export class SignerUnavailableError extends TryLaterError {
  override name = 'SignerUnavailableError';
}

/** The token did not finish a signature within the configured time: a kind of tryLater. */
export class SignTimeoutError extends TryLaterError {
  override name = 'SignTimeoutError';
}
