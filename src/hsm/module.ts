// A PKCS#11 module loaded once per path, initialized for multi-threaded use, and re-initializable for recovery.
import * as pkcs11js from 'pkcs11js';
import { describePkcs11Error, pkcs11Code } from './pkcs11-errors';

export type Pkcs11 = pkcs11js.PKCS11;
export type Handle = pkcs11js.Handle;

export class Pkcs11Module {
  private static readonly loaded = new Map<string, Pkcs11Module>();
  /** Bumped on every re-initialization: handles from an older generation are dead. */
  generation = 0;
  /** Calls in progress on any thread, across all tokens of this module. */
  inFlight = 0;
  private readonly resetListeners = new Set<() => void>();

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
   * CKF_OS_LOCKING_OK is required: signing runs concurrently on libuv's thread pool, and SoftHSM2
   * without it crashes as soon as two sessions sign at once.
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

  /**
   * Finalizes and initializes again: the only way many modules (SoftHSM2 among them) notice a token
   * that was removed, restored or created after they started. Every session of every token is gone after it.
   */
  reinitialize(): void {
    // C_Finalize while another thread is inside the module is undefined behaviour (SoftHSM2 frees what
    // that call is using): callers wait until inFlight is 0.
    if (this.inFlight > 0) throw new Error(`not re-initializing ${this.path}: ${this.inFlight} call(s) still in progress`);
    try {
      this.p11.C_Finalize();
    } catch {
      // Already finalized or the device is gone: initializing again is what matters.
    }
    this.generation++;
    for (const listener of this.resetListeners) listener();
    this.initialize();
  }

  onReset(listener: () => void): void {
    this.resetListeners.add(listener);
  }

  /** Slot holding the initialized token with this label (labels are blank-padded to 32 bytes). */
  findSlot(label: string): Handle | undefined {
    return findSlotByLabel(this.p11, label);
  }

  /** Finalizes every loaded module; safe to call twice. A module with calls still running is left to the OS. */
  static finalizeAll(): void {
    for (const [path, m] of Pkcs11Module.loaded) {
      if (m.inFlight > 0) continue;
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
