// A fixed set of PKCS#11 sessions on one token; each session serves one operation at a time.
import * as pkcs11js from 'pkcs11js';
import type { Handle, Pkcs11 } from './module';
import { describePkcs11Error, pkcs11Code } from './pkcs11-errors';

export class SessionPool {
  private readonly idle: Handle[] = [];
  private readonly waiters: ((s: Handle) => void)[] = [];
  private readonly all: Handle[] = [];

  constructor(
    readonly p11: Pkcs11,
    readonly slot: Handle,
    readonly size: number,
  ) {}

  /** Opens the sessions and logs the user in once (login state is shared by all sessions of the application). */
  open(pin: string): void {
    for (let i = 0; i < this.size; i++) {
      const s = this.p11.C_OpenSession(this.slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      this.all.push(s);
      this.idle.push(s);
    }
    try {
      this.p11.C_Login(this.all[0]!, pkcs11js.CKU_USER, pin);
    } catch (e) {
      if (pkcs11Code(e) !== pkcs11js.CKR_USER_ALREADY_LOGGED_IN) {
        this.close();
        throw new Error(`login failed: ${describePkcs11Error(e)}`);
      }
    }
  }

  /** A session for a short synchronous call (key lookup) without taking it from signers. */
  anySession(): Handle {
    const s = this.all[0];
    if (!s) throw new Error('session pool is not open');
    return s;
  }

  acquire(): Promise<Handle> {
    const s = this.idle.pop();
    if (s) return Promise.resolve(s);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  release(s: Handle): void {
    const next = this.waiters.shift();
    if (next) next(s);
    else this.idle.push(s);
  }

  close(): void {
    if (this.all.length === 0) return;
    try {
      this.p11.C_Logout(this.all[0]!);
    } catch {
      // Not logged in or session already gone.
    }
    for (const s of this.all.splice(0)) {
      try {
        this.p11.C_CloseSession(s);
      } catch {
        // Already closed by the token.
      }
    }
    this.idle.length = 0;
  }
}
