// Loads a PKCS#11 module once per path and initializes it for multi-threaded use.
import * as pkcs11js from 'pkcs11js';
import { describePkcs11Error, pkcs11Code } from './pkcs11-errors';

export type Pkcs11 = pkcs11js.PKCS11;
export type Handle = pkcs11js.Handle;

const loaded = new Map<string, Pkcs11>();

/**
 * CKF_OS_LOCKING_OK is required: signing runs concurrently on libuv's thread pool, and SoftHSM2
 * without it crashes as soon as two sessions sign at once.
 */
export function loadModule(path: string): Pkcs11 {
  const existing = loaded.get(path);
  if (existing) return existing;
  const p11 = new pkcs11js.PKCS11();
  try {
    p11.load(path);
  } catch (e) {
    throw new Error(`cannot load PKCS#11 module ${path}: ${(e as Error).message}`);
  }
  try {
    p11.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  } catch (e) {
    if (pkcs11Code(e) !== pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      throw new Error(`cannot initialize PKCS#11 module ${path}: ${describePkcs11Error(e)}`);
    }
  }
  loaded.set(path, p11);
  return p11;
}

/** Finalizes every loaded module; safe to call twice. */
export function finalizeModules(): void {
  for (const [path, p11] of loaded) {
    try {
      p11.C_Finalize();
    } catch {
      // Already finalized or the device is gone: nothing left to release.
    }
    try {
      p11.close();
    } catch {
      // pkcs11js throws if the library was already closed.
    }
    loaded.delete(path);
  }
}

/** Slot holding the initialized token with this label, or undefined. Labels are space-padded to 32 bytes. */
export function findSlotByLabel(p11: Pkcs11, label: string): Handle | undefined {
  for (const slot of p11.C_GetSlotList(true)) {
    const info = p11.C_GetTokenInfo(slot);
    if (info.label.trim() === label && info.flags & pkcs11js.CKF_TOKEN_INITIALIZED) return slot;
  }
  return undefined;
}
