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

/**
 * Signatures as they cross to a session thread: a few arrays for the whole batch. An object and two typed arrays
 * per signature, each way, cost about 10 µs of cloning per signature (bench/README "Benchmarks"); this about 3.
 */
export interface SignBatch {
  mechanisms: number[];
  /** The batch's key handles (usually one), and which one each signature uses. */
  keys: Uint8Array[];
  keyOf: number[];
  /** Every input back to back, in a buffer of its own: a slice of Node's buffer pool would clone the whole pool. */
  inputs: Uint8Array;
  inputEnds: number[];
  outLens: number[];
}

/** A batch's outcomes, in order: signature i is [starts[i], ends[i]) of `data`, unless a failure names i. */
export interface SignResults {
  data: Uint8Array;
  starts: number[];
  ends: number[];
  failures: { index: number; error: WireError }[];
}

export type Request =
  /** Loads the module (once per thread), finds the token by label and opens a session on it. */
  | { op: 'open'; modulePath: string; label: string }
  | { op: 'login'; pin: string }
  | { op: 'find'; keys: KeyQuery[] }
  /** C_SignInit and C_Sign for each job, synchronously, in order; one reply (SignResults) with every outcome. */
  | { op: 'sign'; batch: SignBatch }
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

export function packSignJobs(jobs: readonly SignJob[]): SignBatch {
  const keys: Uint8Array[] = [];
  const b: SignBatch = { mechanisms: [], keys, keyOf: [], inputs: EMPTY, inputEnds: [], outLens: [] };
  let total = 0;
  for (const j of jobs) {
    let k = keys.indexOf(j.key);
    if (k < 0) k = keys.push(j.key) - 1;
    b.mechanisms.push(j.mechanism);
    b.keyOf.push(k);
    b.outLens.push(j.outLen);
    total += j.input.length;
    b.inputEnds.push(total);
  }
  const inputs = Buffer.allocUnsafeSlow(total);
  let off = 0;
  for (const j of jobs) {
    inputs.set(j.input, off);
    off += j.input.length;
  }
  b.inputs = inputs;
  return b;
}

export function unpackSignJobs(b: SignBatch): SignJob[] {
  return b.mechanisms.map((mechanism, i) => ({
    mechanism,
    key: b.keys[b.keyOf[i]!]!,
    input: b.inputs.subarray(i === 0 ? 0 : b.inputEnds[i - 1], b.inputEnds[i]),
    outLen: b.outLens[i]!,
  }));
}

export function packOutcomes(outcomes: readonly SignOutcome[]): SignResults {
  const r: SignResults = { data: EMPTY, starts: [], ends: [], failures: [] };
  let total = 0;
  for (const o of outcomes) if (o.ok) total += o.signature.length;
  const data = Buffer.allocUnsafeSlow(total);
  let off = 0;
  outcomes.forEach((o, index) => {
    r.starts.push(off);
    if (o.ok) {
      data.set(o.signature, off);
      off += o.signature.length;
    } else r.failures.push({ index, error: o.error });
    r.ends.push(off);
  });
  r.data = data;
  return r;
}

export function unpackResults(r: SignResults): SignOutcome[] {
  const out: SignOutcome[] = r.starts.map((start, i) => ({ ok: true, signature: r.data.subarray(start, r.ends[i]) }));
  for (const f of r.failures) out[f.index] = { ok: false, error: f.error };
  return out;
}

const EMPTY = new Uint8Array(0);
