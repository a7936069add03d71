// A session thread: owns one PKCS#11 session and makes every call on it synchronously, off the main thread.
// A call that hangs in the HSM stalls this thread only; the main thread gives up on it at its deadline.
import { createPublicKey } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import * as pkcs11js from 'pkcs11js';
import { findSigningKey, KeyNotFoundError } from '../keys';
import { findSlotByLabel } from '../module';
import { ModuleLoadError, NoTokenError, Reply, Request, SignBatch, SignResults, toWire } from './protocol';

let p11: pkcs11js.PKCS11 | undefined;
let session: pkcs11js.Handle | undefined;

function load(path: string): pkcs11js.PKCS11 {
  if (p11) return p11;
  const m = new pkcs11js.PKCS11();
  try {
    m.load(path);
  } catch (e) {
    throw new ModuleLoadError(`cannot load PKCS#11 module ${path}: ${(e as Error).message}`);
  }
  initialize(m);
  return (p11 = m);
}

// CKF_OS_LOCKING_OK: sessions sign concurrently from several threads; SoftHSM2 crashes without it.
function initialize(m: pkcs11js.PKCS11): void {
  try {
    m.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  } catch (e) {
    if ((e as pkcs11js.Pkcs11Error).code !== pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED) throw e;
  }
}

function need(): { m: pkcs11js.PKCS11; s: pkcs11js.Handle } {
  if (!p11 || !session) throw new pkcs11js.Pkcs11Error('CKR_SESSION_HANDLE_INVALID', pkcs11js.CKR_SESSION_HANDLE_INVALID, 'session thread');
  return { m: p11, s: session };
}

/** Each signature straight into its place in one reply buffer, of its own so that only it is cloned back. */
function sign(b: SignBatch): SignResults {
  const { m, s } = need();
  let total = 0;
  for (const n of b.outLens) total += n;
  const data = Buffer.allocUnsafeSlow(total);
  const keys = b.keys.map((k) => Buffer.from(k.buffer, k.byteOffset, k.byteLength));
  const inputs = Buffer.from(b.inputs.buffer, b.inputs.byteOffset, b.inputs.byteLength);
  const r: SignResults = { data, starts: [], ends: [], failures: [] };
  let inStart = 0;
  let outStart = 0;
  b.mechanisms.forEach((mechanism, i) => {
    const outLen = b.outLens[i]!;
    let end = outStart;
    try {
      m.C_SignInit(s, { mechanism }, keys[b.keyOf[i]!]!);
      // C_Sign ends the operation whether it succeeds or fails, so the session is never left active.
      end += m.C_Sign(s, inputs.subarray(inStart, b.inputEnds[i]), data.subarray(outStart, outStart + outLen)).length;
    } catch (e) {
      r.failures.push({ index: i, error: toWire(e) });
    }
    r.starts.push(outStart);
    r.ends.push(end);
    inStart = b.inputEnds[i]!;
    outStart += outLen;
  });
  return r;
}

function handle(r: Request): unknown {
  switch (r.op) {
    case 'open': {
      const m = load(r.modulePath);
      const slot = findSlotByLabel(m, r.label);
      if (slot === undefined) throw new NoTokenError(`no initialized token with this label in module ${r.modulePath}`);
      session = m.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      return undefined;
    }
    case 'login': {
      const { m, s } = need();
      try {
        m.C_Login(s, pkcs11js.CKU_USER, r.pin);
      } catch (e) {
        if ((e as pkcs11js.Pkcs11Error).code !== pkcs11js.CKR_USER_ALREADY_LOGGED_IN) throw e;
      }
      return undefined;
    }
    case 'find': {
      const { m, s } = need();
      return r.keys.map((k) => {
        try {
          return findSigningKey(m, s, { ...k, publicKey: createPublicKey({ key: Buffer.from(k.spki), format: 'der', type: 'spki' }) });
        } catch (e) {
          if (e instanceof KeyNotFoundError) throw new KeyNotFoundError(`${k.describe}: ${e.message}`);
          throw e;
        }
      });
    }
    case 'sign':
      return sign(r.batch);
    case 'probe': {
      const { m, s } = need();
      m.C_GetSessionInfo(s);
      return undefined;
    }
    case 'close': {
      const s = session;
      session = undefined;
      if (!p11 || s === undefined) return undefined;
      if (r.logout) quietly(() => p11!.C_Logout(s));
      quietly(() => p11!.C_CloseSession(s));
      return undefined;
    }
    case 'reinitialize': {
      session = undefined;
      if (!p11) return undefined;
      // Already finalized or the device is gone: initializing again is what matters.
      quietly(() => p11!.C_Finalize());
      initialize(p11);
      return undefined;
    }
    case 'finalize':
      session = undefined;
      if (p11) quietly(() => p11!.C_Finalize());
      return undefined;
  }
}

function quietly(f: () => void): void {
  try {
    f();
  } catch {
    // Closing what the token already dropped.
  }
}

parentPort!.on('message', (r: Request) => {
  let reply: Reply;
  try {
    reply = { ok: true, value: handle(r) };
  } catch (e) {
    reply = { ok: false, error: toWire(e) };
  }
  parentPort!.postMessage(reply);
});
