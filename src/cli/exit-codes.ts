// The CLI's exit codes (README "Exit codes"): which failures a supervisor may retry and which it must not.
import { PinRejectedError } from '../hsm/token';
import { pinRejection } from '../hsm/pin';

export const EXIT_OK = 0;
/** Anything else that failed: a bad config, a missing file or PIN source, a port in use, a token not found. */
export const EXIT_FAILURE = 1;
/** Bad command-line arguments. */
export const EXIT_USAGE = 2;
/** The token refused the PIN (CKR_PIN_INCORRECT, CKR_PIN_INVALID, CKR_PIN_LEN_RANGE): fix the PIN source. */
export const EXIT_PIN_REFUSED = 3;
/** The token's PIN is locked or expired (CKR_PIN_LOCKED, CKR_PIN_EXPIRED): the security officer must act. */
export const EXIT_PIN_LOCKED = 4;

/**
 * The exit code for an error that ended a command. A PIN rejection gets its own code however deep it sits in
 * the error's causes (a command that logs in through another layer wraps it), so that systemd's
 * RestartPreventExitStatus= can keep a wrong PIN from being tried again: real HSMs lock a token after a few.
 */
export function exitCodeFor(e: unknown): number {
  for (let c: unknown = e, depth = 0; c !== undefined && c !== null && depth < 8; c = (c as { cause?: unknown }).cause, depth++) {
    const rejection = c instanceof PinRejectedError ? c.rejection : pinRejection(c);
    if (rejection) return rejection === 'locked' ? EXIT_PIN_LOCKED : EXIT_PIN_REFUSED;
    if (typeof c !== 'object') break;
  }
  return EXIT_FAILURE;
}
