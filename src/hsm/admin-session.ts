// Token administration over graphene-pk11 (keys generate, keys list, csr): the module's slots and tokens, and one
// session on a token, logged in with the configured PIN. Never on the request path: signing uses token.ts.
import * as graphene from 'graphene-pk11';
import * as pkcs11js from 'pkcs11js';
import { Pkcs11Module } from './module';
import { describePkcs11Error, pkcs11Code } from './pkcs11-errors';

export class AdminError extends Error {
  override name = 'AdminError';
}

/** A PKCS#11 module through graphene, sharing Pkcs11Module's one C_Initialize (with OS locking) per library. */
export function openAdminModule(path: string): graphene.Module {
  const m = new graphene.Module(Pkcs11Module.load(path).p11);
  m.libFile = path;
  m.libName = path;
  m.initialize();
  return m;
}

export interface SlotEntry {
  slot: graphene.Slot;
  /** The slot id as the module numbers it (what softhsm2-util and pkcs11-tool print). */
  slotId: string;
  label: string;
  serial: string;
  initialized: boolean;
}

/** Every slot holding a token (SoftHSM2 always adds one uninitialized token for the next --init-token). */
export function slotsOf(m: graphene.Module): SlotEntry[] {
  const slots = m.getSlots(true);
  const out: SlotEntry[] = [];
  for (let i = 0; i < slots.length; i++) {
    const slot = slots.items(i);
    const token = slot.getToken();
    out.push({
      slot,
      slotId: slot.handle.readUIntLE(0, Math.min(6, slot.handle.length)).toString(),
      label: token.label.trim(),
      serial: token.serialNumber.trim(),
      initialized: (token.flags & graphene.TokenFlag.TOKEN_INITIALIZED) !== 0,
    });
  }
  return out;
}

export function findTokenSlot(m: graphene.Module, label: string): graphene.Slot | undefined {
  return slotsOf(m).find((s) => s.initialized && s.label === label)?.slot;
}

/** One session on a token; `login` with the user PIN; `close` logs out and closes, and is safe to call twice. */
export class AdminSession {
  private loggedIn = false;
  private closed = false;

  private constructor(
    readonly session: graphene.Session,
    /** e.g. 'token "main" (tokens[0], tokenLabel "x")', for messages. */
    readonly what: string,
  ) {}

  static open(slot: graphene.Slot, what: string, readWrite: boolean): AdminSession {
    const flags = graphene.SessionFlag.SERIAL_SESSION | (readWrite ? graphene.SessionFlag.RW_SESSION : 0);
    try {
      return new AdminSession(slot.open(flags), what);
    } catch (e) {
      throw new AdminError(`${what}: cannot open a session: ${describePkcs11Error(e)}`);
    }
  }

  get isLoggedIn(): boolean {
    return this.loggedIn;
  }

  /** Logs the user in; the error names the CKR code, never the PIN (its cause carries the code for exit codes). */
  login(pin: string): void {
    try {
      this.session.login(pin, graphene.UserType.USER);
    } catch (e) {
      if (pkcs11Code(e) !== pkcs11js.CKR_USER_ALREADY_LOGGED_IN) throw new AdminError(`${this.what}: login failed: ${describePkcs11Error(e)}`, { cause: e });
    }
    this.loggedIn = true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      if (this.loggedIn) this.session.logout();
    } catch {
      // The token may be gone; closing is what is left to do.
    }
    try {
      this.session.close();
    } catch {
      // Already closed by the token.
    }
  }
}
