// Messages between the main thread and a session thread (session-worker.ts), and how errors cross between them.
import * as pkcs11js from 'pkcs11js';
import type { KeyRef } from '../../config/schema';
import { KeyNotFoundError, KeyTypeMismatchError } from '../keys';

/** The key a session thread looks up: its reference, the certificate's public key (SPKI DER), names for errors. */
export interface KeyQuery {
  ref: KeyRef;
  spki: Uint8Array;
  describe: string;
  certDescribe: string;
}

/** One signature: mechanism, key handle, input (a digest for CKM_ECDSA, the data for CKM_SHA256_RSA_PKCS). */
export interface SignJob {
  mechanism: number;
  key: Uint8Array;
  input: Uint8Array;
  outLen: number;
}

export type Request =
  /** Loads the module (once per thread), finds the token by label and opens a session on it. */
  | { op: 'open'; modulePath: string; label: string }
  | { op: 'login'; pin: string }
  | { op: 'find'; keys: KeyQuery[] }
  /** C_SignInit and C_Sign for each job, synchronously, in order; one reply with every outcome. */
  | { op: 'sign'; jobs: SignJob[] }
  /** C_GetSessionInfo: is the session still known to the token? */
  | { op: 'probe' }
  /** Closes the session (logging out first when asked); the thread may open another. */
  | { op: 'close'; logout: boolean }
  /** C_Finalize then C_Initialize: every session of the module, in every thread, is gone after it. */
  | { op: 'reinitialize' }
  /** C_Finalize, at shutdown. */
  | { op: 'finalize' };

export interface WireError {
  name: string;
  message: string;
  /** CKR_ code for PKCS#11 errors. */
  code?: number;
  method?: string;
}

export type SignOutcome = { ok: true; signature: Uint8Array } | { ok: false; error: WireError };

export type Reply = { ok: true; value?: unknown } | { ok: false; error: WireError };

export function toWire(e: unknown): WireError {
  if (e instanceof pkcs11js.Pkcs11Error) return { name: 'Pkcs11Error', message: e.message, code: e.code, method: e.method };
  if (e instanceof Error) return { name: e.name, message: e.message };
  return { name: 'Error', message: String(e) };
}

/** The error as the main thread handles it: pkcs11js's Pkcs11Error keeps its code, so faults classify the same. */
export function fromWire(w: WireError): Error {
  if (w.name === 'Pkcs11Error') return new pkcs11js.Pkcs11Error(w.message, w.code ?? 0, w.method ?? '');
  if (w.name === 'KeyNotFoundError') return new KeyNotFoundError(w.message);
  if (w.name === 'KeyTypeMismatchError') return new KeyTypeMismatchError(w.message);
  if (w.name === 'ModuleLoadError') return new ModuleLoadError(w.message);
  if (w.name === 'NoTokenError') return new NoTokenError(w.message);
  return new Error(w.message);
}

/** The PKCS#11 library could not be loaded or initialized: no retry fixes it. */
export class ModuleLoadError extends Error {
  override name = 'ModuleLoadError';
}

/** No initialized token with the configured label in the module (yet). */
export class NoTokenError extends Error {
  override name = 'NoTokenError';
}
