// A PKCS#11 module loaded on the main thread, once per path, for one-shot administration (keys, csr, demo set-up,
// config check's token listing). The daemon's tokens make every call in session threads (session-thread.ts).
import * as pkcs11js from 'pkcs11js';
import { describePkcs11Error, pkcs11Code } from './pkcs11-errors';

export type Pkcs11 = pkcs11js.PKCS11;
export type Handle = pkcs11js.Handle;

export class Pkcs11Module {
  private static readonly loaded = new Map<string, Pkcs11Module>();
  private constructor(
    readonly path: string,
    readonly p11: Pkcs11,
  ) {}

  static load(path: string): Pkcs11Module {
    const existing = Pkcs11Module.loaded.get(path);
    if (existing) return existing;
    const p11 = new pkcs11js.PKCS11();
    try {
      p11.load(path);
    } catch (e) {
      throw new Error(`cannot load PKCS#11 module ${path}: ${(e as Error).message}`);
    }
    const m = new Pkcs11Module(path, p11);
    m.initialize();
    Pkcs11Module.loaded.set(path, m);
    return m;
  }

  /**
   * CKF_OS_LOCKING_OK is required: session threads call the module concurrently, and SoftHSM2 without it
   * crashes as soon as two sessions sign at once.
   */
  private initialize(): void {
    try {
      this.p11.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
    } catch (e) {
      if (pkcs11Code(e) !== pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        throw new Error(`cannot initialize PKCS#11 module ${this.path}: ${describePkcs11Error(e)}`);
      }
    }
  }

  /** Slot holding the initialized token with this label (labels are blank-padded to 32 bytes). */
  findSlot(label: string): Handle | undefined {
    return findSlotByLabel(this.p11, label);
  }

  /** Finalizes every module loaded on this thread; safe to call twice. */
  static finalizeAll(): void {
    for (const [path, m] of Pkcs11Module.loaded) {
      try {
        m.p11.C_Finalize();
      } catch {
        // Already finalized or the device is gone: nothing left to release.
      }
      try {
        m.p11.close();
      } catch {
        // pkcs11js throws if the library was already closed.
      }
      Pkcs11Module.loaded.delete(path);
    }
  }
}

export function loadModule(path: string): Pkcs11 {
  return Pkcs11Module.load(path).p11;
}

export function finalizeModules(): void {
  Pkcs11Module.finalizeAll();
}

export function findSlotByLabel(p11: Pkcs11, label: string): Handle | undefined {
  for (const slot of p11.C_GetSlotList(true)) {
    const info = p11.C_GetTokenInfo(slot);
    if (info.label.trim() === label && info.flags & pkcs11js.CKF_TOKEN_INITIALIZED) return slot;
  }
  return undefined;
}
