// One configured token: activation, the session pool, signing with a time limit, and recovery from faults.
import { createHash, KeyObject, randomBytes, verify } from 'node:crypto';
import * as pkcs11js from 'pkcs11js';
import type { Clock, Timer } from '../clock';
import type { KeyRef } from '../config/schema';
import { faultKind, FaultKind, SignerUnavailableError, SignTimeoutError } from './faults';
import { Handle, Pkcs11Module } from './module';
import { ckrName, describePkcs11Error, pkcs11Code } from './pkcs11-errors';
import { findSigningKey, KeyNotFoundError, KeyTypeMismatchError } from './keys';
import { PinRejection, pinRejection } from './pin';
import { PooledSession, SessionCounts, SessionPool } from './session-pool';
import type { SignatureAlgorithm } from './signer';

/** Push-style hooks for counters; gauges (sessions, readiness) are read from the token when scraped. */
export interface HsmObserver {
  signed(token: string, key: string, mechanism: string, outcome: 'ok' | 'error' | 'timeout' | 'unavailable', seconds: number): void;
  hsmError(token: string, code: string): void;
  readinessChanged(token: string, ready: boolean): void;
}

export interface TokenLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export const NULL_OBSERVER: HsmObserver = { signed: () => undefined, hsmError: () => undefined, readinessChanged: () => undefined };
export const SILENT_LOG: TokenLog = { info: () => undefined, warn: () => undefined, error: () => undefined };

export interface TokenKeySpec {
  ref: KeyRef;
  publicKey: KeyObject;
  algorithm: SignatureAlgorithm;
  /** e.g. 'CA "one": cas[0].signer.key (label "x" on token "main")', used in errors. */
  describe: string;
  /** The config field of the certificate the key must match, used in errors. */
  certDescribe: string;
}

export interface TokenKey {
  readonly spec: TokenKeySpec;
  readonly name: string;
  handle: Handle | undefined;
}

export interface TokenOptions {
  name: string;
  /** 'token "main" (tokens[0], tokenLabel "x")', used in errors. */
  describe: string;
  modulePath: string;
  label: string;
  sessions: number;
  pin: () => Promise<string>;
  signTimeoutMs: number;
  backoff: { initialMs: number; maxMs: number };
  healthCheckMs: number;
  clock: Clock;
  observer: HsmObserver;
  log: TokenLog;
}

/** No session is free for administration: all are signing or stuck in calls that outlived their deadline. */
class NoIdleSessionError extends Error {
  override name = 'NoIdleSessionError';
}

/** Puts a reload's keys in use: check() every token first (it throws if a handle went stale), then apply(). */
export interface KeyCommit {
  check(): void;
  apply(): void;
}

/** A reload's new keys could not be found or proved: the running configuration stays, untouched. */
export class ReloadRefusedError extends Error {
  override name = 'ReloadRefusedError';
}

/** Activation failed in a way retrying cannot fix (wrong PIN, wrong key, unloadable module). */
export class TokenFatalError extends Error {
  override name = 'TokenFatalError';
}

/** The token refused the PIN at login, or has it locked: fatal, and the CLI exits with a code of its own. */
export class PinRejectedError extends TokenFatalError {
  override name = 'PinRejectedError';
  constructor(message: string, readonly rejection: PinRejection) {
    super(message);
  }
}

export class HsmToken {
  private module: Pkcs11Module | undefined;
  private slot: Handle | undefined;
  private pin: string | undefined;
  private readonly pool: SessionPool;
  private readonly keys: TokenKey[] = [];
  private up = false;
  private lastReady = false;
  private bringingUp = false;
  private recoveryTimer: Timer | undefined;
  private healthTimer: Timer | undefined;
  private attempt = 0;
  private lastError: unknown;
  private closed = false;

  constructor(private readonly o: TokenOptions) {
    this.pool = new SessionPool(o.sessions);
  }

  get name(): string {
    return this.o.name;
  }

  get ready(): boolean {
    const c = this.pool.counts();
    return this.up && c.idle + c.inUse > 0;
  }

  sessionCounts(): SessionCounts {
    return this.pool.counts();
  }

  /** Registers the key named by `spec.ref` for `spec.publicKey` for use (startup); the same one when asked twice. */
  addKey(spec: TokenKeySpec): TokenKey {
    const known = this.keyFor(spec, this.keys);
    if (known) return known;
    const key: TokenKey = { spec, name: keyName(spec), handle: undefined };
    this.keys.push(key);
    return key;
  }

  /**
   * For a reload: the key in use when it is the same one, else a candidate (one of `pending` when asked twice)
   * that nothing uses, proves or recovers until prepareKeys' commit puts it in use.
   */
  candidateKey(spec: TokenKeySpec, pending: Iterable<TokenKey>): TokenKey {
    return this.keyFor(spec, this.keys) ?? this.keyFor(spec, pending) ?? { spec, name: keyName(spec), handle: undefined };
  }

  private keyFor(spec: TokenKeySpec, keys: Iterable<TokenKey>): TokenKey | undefined {
    const name = keyName(spec);
    for (const k of keys) if (k.name === name && ('id' in k.spec.ref) === ('id' in spec.ref) && k.spec.publicKey.equals(spec.publicKey)) return k;
    return undefined;
  }

  /**
   * A reload's keys: finds and proves the new ones without touching the keys in use, and returns the commit that
   * puts exactly `used` in use (and forgets the others). Any failure leaves the token as it was: a refused reload
   * changes nothing, and recovery only ever proves keys of the configuration in force. A new key needs the token
   * up to be proved: a reload that brings one while the token is down is refused.
   */
  async prepareKeys(used: ReadonlySet<TokenKey>): Promise<KeyCommit> {
    const fresh = [...used].filter((k) => !this.keys.includes(k));
    const module = this.module;
    const generation = module?.generation;
    const commit: KeyCommit = {
      check: () => {
        if (this.module?.generation === generation) return;
        for (const k of fresh) k.handle = undefined;
        throw new ReloadRefusedError(`${this.o.describe}: the module was re-initialized while the reload proved its keys; reload again`);
      },
      apply: () => void this.keys.splice(0, this.keys.length, ...used),
    };
    if (fresh.length === 0) return commit;
    if (!this.up || !module) {
      throw new ReloadRefusedError(`${fresh[0]!.spec.describe}: token "${this.name}" is not ready, so the new key cannot be proved; reload again once it is`);
    }
    const taken = this.pool.take();
    if (!taken) throw new ReloadRefusedError(`${this.o.describe}: every session is busy; reload again`);
    try {
      for (const key of fresh) key.handle = this.findKey(module.p11, taken.handle, key);
    } catch (e) {
      for (const k of fresh) k.handle = undefined;
      throw new ReloadRefusedError((e as Error).message, { cause: e });
    } finally {
      this.pool.give(taken, 'ok');
    }
    try {
      for (const key of fresh) await this.proveKey(key, true);
    } catch (e) {
      for (const k of fresh) k.handle = undefined;
      throw new ReloadRefusedError((e as Error).message, { cause: e });
    }
    return commit;
  }

  /** One attempt; throws with a message naming the token, key or field. */
  async activate(): Promise<void> {
    await this.bringUp(false);
    this.scheduleHealthCheck();
  }

  /** Retries (re-initializing the module, which is how new tokens become visible) until ready or `ms` passed. */
  async activateWithin(ms: number): Promise<void> {
    const deadline = this.o.clock.monotonicMs() + ms;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.bringUp(attempt > 0);
        this.scheduleHealthCheck();
        return;
      } catch (e) {
        if (e instanceof TokenFatalError || this.closed) throw e;
        const wait = Math.min(this.backoffMs(attempt), deadline - this.o.clock.monotonicMs());
        if (wait <= 0) throw new Error(`${(e as Error).message} (waited ${Math.round(ms / 1000)}s for the token)`);
        this.o.log.info({ token: this.name, retryInMs: Math.round(wait), reason: (e as Error).message }, 'waiting for token');
        await new Promise<void>((r) => this.o.clock.setTimer(r, wait));
      }
    }
  }

  async sign(key: TokenKey, mechanism: number, input: Buffer, outLen: number): Promise<Buffer> {
    const mech = mechanismName(mechanism);
    const started = this.o.clock.monotonicMs();
    const elapsed = () => (this.o.clock.monotonicMs() - started) / 1000;
    const s = this.up && key.handle !== undefined ? this.pool.take() : undefined;
    if (!s) {
      this.o.observer.signed(this.name, key.name, mech, 'unavailable', 0);
      throw new SignerUnavailableError(`token "${this.name}" has no working session`);
    }
    try {
      const sig = await this.signOn(s, key.handle!, mechanism, input, outLen);
      this.o.observer.signed(this.name, key.name, mech, 'ok', elapsed());
      return sig;
    } catch (e) {
      this.o.observer.signed(this.name, key.name, mech, e instanceof SignTimeoutError ? 'timeout' : 'error', elapsed());
      if (faultKind(e)) throw new SignerUnavailableError(`token "${this.name}": ${describePkcs11Error(e)}`, { cause: e });
      throw e;
    }
  }

  /**
   * One signature on a pooled session, limited to signTimeout. Whenever the call ends, even long after a
   * timeout, the session's fate follows its result; until then a timed-out session is set aside as stuck.
   */
  private async signOn(s: PooledSession, keyHandle: Handle, mechanism: number, input: Buffer, outLen: number, candidate = false): Promise<Buffer> {
    const module = this.module!;
    const p11 = module.p11;
    module.inFlight++;
    const call = (async () => {
      p11.C_SignInit(s.handle, { mechanism }, keyHandle);
      // C_Sign ends the operation whether it succeeds or fails, so the session is never left active.
      return p11.C_SignAsync(s.handle, input, Buffer.alloc(outLen));
    })();
    call.then(
      () => {
        module.inFlight--;
        this.pool.give(s, 'ok');
        this.noteReadiness();
      },
      (e) => {
        module.inFlight--;
        // A candidate key's failure says nothing about the session unless the session itself is gone.
        const kind = candidate && this.sessionAlive(s) ? undefined : faultKind(e);
        this.pool.give(s, kind ? 'broken' : 'ok');
        if (kind) this.onFault(kind, e);
        else this.noteReadiness();
      },
    );
    let timer: Timer | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = this.o.clock.setTimer(() => reject(new SignTimeoutError(`token "${this.name}" did not sign within ${this.o.signTimeoutMs} ms`)), this.o.signTimeoutMs);
    });
    try {
      return Buffer.from(await Promise.race([call, timeout]));
    } catch (e) {
      if (e instanceof SignTimeoutError) {
        this.pool.markStuck(s);
        this.noteReadiness();
        this.o.log.warn({ token: this.name, timeoutMs: this.o.signTimeoutMs }, 'HSM sign call timed out; session set aside');
        this.scheduleRecovery();
      }
      throw e;
    } finally {
      timer?.cancel();
    }
  }

  close(): void {
    this.closed = true;
    this.recoveryTimer?.cancel();
    this.healthTimer?.cancel();
    const handles = this.pool.clear();
    if (!this.module || handles.length === 0) return;
    try {
      this.module.p11.C_Logout(handles[0]!);
    } catch {
      // Not logged in, or the device is gone.
    }
    for (const h of handles) {
      try {
        this.module.p11.C_CloseSession(h);
      } catch {
        // Already closed by the token.
      }
    }
  }

  private async bringUp(reinit: boolean): Promise<void> {
    this.bringingUp = true;
    try {
      await this.bringUpOnce(reinit);
    } finally {
      this.bringingUp = false;
    }
  }

  private async bringUpOnce(reinit: boolean): Promise<void> {
    const what = this.o.describe;
    if (!this.module) {
      try {
        this.module = Pkcs11Module.load(this.o.modulePath);
      } catch (e) {
        throw new TokenFatalError(`${what}: ${(e as Error).message}`);
      }
      this.module.onReset(() => this.onModuleReset());
    } else if (reinit && this.module.inFlight === 0) {
      this.module.reinitialize();
    }
    const p11 = this.module.p11;
    this.slot = this.module.findSlot(this.o.label);
    if (this.slot === undefined) throw new Error(`${what}: no initialized token with this label in module ${this.o.modulePath}`);
    for (const h of this.pool.takeBroken()) closeQuietly(p11, h);
    this.pin ??= await this.o.pin();
    for (let n = this.pool.missing(); n > 0; n--) {
      this.pool.add(p11.C_OpenSession(this.slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION));
    }
    // Administration takes an idle session like any operation: a busy one belongs to a signature in flight.
    const taken = this.pool.take();
    if (!taken) throw new NoIdleSessionError(`${what}: every session is busy or stuck in a call`);
    const session = taken.handle;
    try {
      try {
        p11.C_Login(session, pkcs11js.CKU_USER, this.pin);
      } catch (e) {
        if (pkcs11Code(e) !== pkcs11js.CKR_USER_ALREADY_LOGGED_IN) {
          const msg = `${what}: login failed: ${describePkcs11Error(e)}`;
          const rejection = pinRejection(e);
          if (rejection) throw new PinRejectedError(msg, rejection);
          throw faultKind(e) === 'fatal' ? new TokenFatalError(msg) : new Error(msg);
        }
      }
      for (const key of this.keys) key.handle = this.findKey(p11, session, key);
    } finally {
      this.pool.give(taken, 'ok');
    }
    for (const key of this.keys) await this.proveKey(key);
    this.up = true;
    this.attempt = 0;
    this.noteReadiness();
  }

  private findKey(p11: pkcs11js.PKCS11, session: Handle, key: TokenKey): Handle {
    try {
      return findSigningKey(p11, session, key.spec);
    } catch (e) {
      // Like a key that fails its test signature: no retry makes it the certificate's key.
      if (e instanceof KeyTypeMismatchError) throw new TokenFatalError(e.message, { cause: e });
      throw e instanceof KeyNotFoundError ? new Error(`${key.spec.describe}: ${e.message}`) : e;
    }
  }

  /** Reports readiness edges (not levels) to the observer and the log. */
  private noteReadiness(): void {
    const ready = this.ready;
    if (ready === this.lastReady) return;
    this.lastReady = ready;
    this.o.observer.readinessChanged(this.name, ready);
    if (!ready) this.o.log.warn({ token: this.name, sessions: this.pool.counts() }, 'token not ready: no working session');
  }

  // Startup and every recovery prove each key is still the one its certificate names.
  // A candidate (a reload's new key) failing its proof is the key's fault, not the token's: no recovery is started.
  private async proveKey(key: TokenKey, candidate = false): Promise<void> {
    const { algorithm, publicKey, describe, certDescribe } = key.spec;
    const probe = randomBytes(32);
    const ec = algorithm.keyType === 'ec';
    const input = ec ? createHash(algorithm.hash).update(probe).digest() : probe;
    const mechanism = ec ? pkcs11js.CKM_ECDSA : pkcs11js.CKM_SHA256_RSA_PKCS;
    const s = this.pool.take();
    if (!s) throw new Error(`${describe}: no idle session to prove the key with`);
    let raw: Buffer;
    try {
      raw = await this.signOn(s, key.handle!, mechanism, input, algorithm.maxSignatureBytes, candidate);
    } catch (e) {
      throw new Error(`${describe}: test signature failed: ${describePkcs11Error(e)}`, { cause: e });
    }
    const ok = verify(algorithm.hash, probe, ec ? { key: publicKey, dsaEncoding: 'ieee-p1363' } : publicKey, raw);
    if (!ok) throw new TokenFatalError(`${describe} does not match the certificate in ${certDescribe}`);
  }

  private onModuleReset(): void {
    this.pool.clear();
    for (const k of this.keys) k.handle = undefined;
    this.up = false;
    this.noteReadiness();
    this.scheduleRecovery();
  }

  private onFault(kind: FaultKind, e: unknown): void {
    this.o.observer.hsmError(this.name, ckrName(pkcs11Code(e)!));
    this.o.log.warn({ token: this.name, code: ckrName(pkcs11Code(e)!), kind }, 'HSM fault');
    if (kind === 'device') this.up = false;
    this.checkIdleSessions();
    this.scheduleRecovery();
  }

  private sessionAlive(s: PooledSession): boolean {
    try {
      this.module?.p11.C_GetSessionInfo(s.handle);
      return true;
    } catch {
      return false;
    }
  }

  /** After a fault, or periodically: idle sessions the token no longer knows are marked broken. */
  private checkIdleSessions(): void {
    if (!this.module) return;
    for (const s of this.pool.idleSessions()) {
      try {
        this.module.p11.C_GetSessionInfo(s.handle);
      } catch (e) {
        if (faultKind(e)) {
          this.pool.markBroken(s);
          this.o.observer.hsmError(this.name, ckrName(pkcs11Code(e)!));
          if (faultKind(e) === 'device') this.up = false;
        }
      }
    }
    this.noteReadiness();
    if (!this.ready) this.scheduleRecovery();
  }

  private scheduleRecovery(): void {
    if (this.recoveryTimer || this.closed || this.bringingUp) return;
    const delay = this.attempt === 0 ? 0 : this.backoffMs(this.attempt);
    this.recoveryTimer = this.o.clock.setTimer(() => void this.recover(), delay);
  }

  private async recover(): Promise<void> {
    // Sessions all stuck in slow calls is no reason to re-initialize: wait for the calls to come back.
    const reinit = this.attempt > 0 && !(this.lastError instanceof NoIdleSessionError);
    try {
      await this.bringUp(reinit);
      this.recoveryTimer = undefined;
      this.lastError = undefined;
      this.o.log.info({ token: this.name, reinitialized: reinit, sessions: this.pool.counts() }, 'token recovered');
    } catch (e) {
      this.recoveryTimer = undefined;
      this.lastError = e;
      if (e instanceof TokenFatalError) {
        this.o.log.error({ token: this.name, reason: e.message }, 'token recovery stopped: operator action needed');
        return;
      }
      this.attempt++;
      this.o.log.warn({ token: this.name, attempt: this.attempt, reason: (e as Error).message }, 'token recovery failed; retrying');
      this.scheduleRecovery();
    }
  }

  private scheduleHealthCheck(): void {
    if (this.closed || this.o.healthCheckMs <= 0) return;
    this.healthTimer = this.o.clock.setTimer(() => {
      this.checkIdleSessions();
      this.scheduleHealthCheck();
    }, this.o.healthCheckMs);
  }

  /** Capped exponential backoff with jitter: half fixed, half random, so many responders do not retry in step. */
  private backoffMs(attempt: number): number {
    const { initialMs, maxMs } = this.o.backoff;
    const cap = Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt - 1));
    return cap / 2 + (Math.random() * cap) / 2;
  }
}

function keyName(spec: TokenKeySpec): string {
  return 'label' in spec.ref ? spec.ref.label : `id:${spec.ref.id}`;
}

function closeQuietly(p11: pkcs11js.PKCS11, h: Handle): void {
  try {
    p11.C_CloseSession(h);
  } catch {
    // A broken session is often already gone.
  }
}

function mechanismName(m: number): string {
  return m === pkcs11js.CKM_ECDSA ? 'CKM_ECDSA' : m === pkcs11js.CKM_SHA256_RSA_PKCS ? 'CKM_SHA256_RSA_PKCS' : `0x${m.toString(16)}`;
}
