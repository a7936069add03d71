// One configured token: activation, its sessions, signing with a time limit, and recovery from faults.
import { createHash, KeyObject, randomBytes, verify } from 'node:crypto';
import * as pkcs11js from 'pkcs11js';
import type { Clock, Timer } from '../clock';
import type { KeyRef } from '../config/schema';
import { faultKind, FaultKind, SignerUnavailableError } from './faults';
import { KeyNotFoundError, KeyTypeMismatchError } from './keys';
import type { Handle } from './module';
import { ModuleCalls } from './module-calls';
import { ckrName, describePkcs11Error, pkcs11Code } from './pkcs11-errors';
import { PinRejection, pinRejection } from './pin';
import { PooledSession, SessionCounts, SessionPool } from './session-pool';
import { SessionSigning } from './session-signing';
import { SessionThreadExitedError } from './session-thread';
import type { SignatureAlgorithm } from '../signing/signer';
import { KeyQuery, ModuleLoadError, NoTokenError, Request } from './thread/protocol';

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
  /** Deadline of every other PKCS#11 call (open, login, key lookup, probes); default max(5 s, signTimeout). */
  callTimeoutMs?: number;
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

/** A PKCS#11 call other than signing did not return within callTimeout; its session waits for it, set aside. */
export class CallTimeoutError extends Error {
  override name = 'CallTimeoutError';
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

/**
 * The token's lifecycle, one explicit state machine on the main thread; every PKCS#11 call runs in a session
 * thread (session-thread.ts), under a deadline kept here, so a call that hangs in the HSM never stalls the event
 * loop. Signing on the sessions is session-signing.ts.
 *
 *   inactive --activate--> up --device fault, module reset--> down --recovery--> up
 *                                                              down --wrong PIN, wrong key--> stopped
 *   any --close--> closed
 *
 * While up, a session fault or a stuck call starts a recovery too (reopening sessions), without leaving up.
 * Ready means up with at least one working session.
 */
export type TokenPhase = 'inactive' | 'up' | 'down' | 'stopped' | 'closed';

export class HsmToken {
  private readonly calls: ModuleCalls;
  private pin: string | undefined;
  private readonly pool: SessionPool;
  private readonly signing: SessionSigning;
  private readonly keys: TokenKey[] = [];
  private phase: TokenPhase = 'inactive';
  private lastReady = false;
  private bringingUp = false;
  private recoveryTimer: Timer | undefined;
  private healthTimer: Timer | undefined;
  private attempt = 0;
  private lastError: unknown;
  private readonly unsubscribe: () => void;

  constructor(private readonly o: TokenOptions) {
    this.pool = new SessionPool(o.sessions);
    this.calls = ModuleCalls.for(o.modulePath);
    this.unsubscribe = this.calls.attach(() => this.onModuleReset());
    this.signing = new SessionSigning({
      name: o.name,
      pool: this.pool,
      clock: o.clock,
      signTimeoutMs: o.signTimeoutMs,
      track: (c) => this.calls.track(c),
      signed: (key, mech, outcome, seconds) => o.observer.signed(o.name, key, mech, outcome, seconds),
      fault: (kind, e) => this.onFault(kind, e),
      stuck: () => {
        this.noteReadiness();
        o.log.warn({ token: o.name, timeoutMs: o.signTimeoutMs }, 'HSM sign call timed out; session set aside');
        this.scheduleRecovery();
      },
      changed: () => this.noteReadiness(),
    });
  }

  get name(): string {
    return this.o.name;
  }

  get state(): TokenPhase {
    return this.phase;
  }

  get ready(): boolean {
    const c = this.pool.counts();
    return this.phase === 'up' && c.idle + c.inUse > 0;
  }

  sessionCounts(): SessionCounts {
    return this.pool.counts();
  }

  private get callTimeoutMs(): number {
    return this.o.callTimeoutMs ?? Math.max(5000, this.o.signTimeoutMs);
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
    const generation = this.calls.generation;
    const commit: KeyCommit = {
      check: () => {
        if (this.calls.generation === generation) return;
        for (const k of fresh) k.handle = undefined;
        throw new ReloadRefusedError(`${this.o.describe}: the module was re-initialized while the reload proved its keys; reload again`);
      },
      apply: () => void this.keys.splice(0, this.keys.length, ...used),
    };
    if (fresh.length === 0) return commit;
    if (this.phase !== 'up') {
      throw new ReloadRefusedError(`${fresh[0]!.spec.describe}: token "${this.name}" is not ready, so the new key cannot be proved; reload again once it is`);
    }
    try {
      const handles = await this.findKeys(fresh, true);
      fresh.forEach((k, i) => (k.handle = handles[i]));
      for (const key of fresh) await this.proveKey(key, true);
    } catch (e) {
      for (const k of fresh) k.handle = undefined;
      if (e instanceof NoIdleSessionError) throw new ReloadRefusedError(`${this.o.describe}: every session is busy; reload again`);
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
        if (e instanceof TokenFatalError || this.phase === 'closed') throw e;
        const wait = Math.min(this.backoffMs(attempt), deadline - this.o.clock.monotonicMs());
        if (wait <= 0) throw new Error(`${(e as Error).message} (waited ${Math.round(ms / 1000)}s for the token)`);
        this.o.log.info({ token: this.name, retryInMs: Math.round(wait), reason: (e as Error).message }, 'waiting for token');
        await new Promise<void>((r) => this.o.clock.setTimer(r, wait));
      }
    }
  }

  sign(key: TokenKey, mechanism: number, input: Buffer, outLen: number): Promise<Buffer> {
    if (this.phase !== 'up' || key.handle === undefined) {
      this.o.observer.signed(this.name, key.name, mechanismName(mechanism), 'unavailable', 0);
      return Promise.reject(new SignerUnavailableError(`token "${this.name}" has no working session`));
    }
    return this.signing.sign(key.name, key.handle, mechanism, mechanismName(mechanism), input, outLen);
  }

  /** Logs out, closes the sessions and ends the session threads; threads stuck in a call end when it returns. */
  async close(): Promise<void> {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.unsubscribe();
    this.recoveryTimer?.cancel();
    this.healthTimer?.cancel();
    this.signing.failQueued(new SignerUnavailableError(`token "${this.name}" is closing`));
    const { quiet, inCall } = this.pool.drain();
    const withSession = quiet.filter((s) => s.state !== 'closed');
    let logout = true;
    for (const s of withSession) {
      await this.calls.track(s.thread.call({ op: 'close', logout })).catch(() => undefined);
      logout = false;
    }
    // Finalizing with a call still inside the module is undefined behaviour: left to process exit then.
    if (quiet.length > 0 && inCall.length === 0 && this.calls.inFlight === 0 && this.calls.attached === 0) {
      await this.calls.track(quiet[0]!.thread.call({ op: 'finalize' })).catch(() => undefined);
    }
    // Quiet threads are waited for: once close() resolves their copy of the module is unloaded, so nothing of it
    // runs on while the process loads the module again (the demo builds its token, then serves) or exits.
    for (const s of inCall) void s.thread.terminate();
    await Promise.all(quiet.map((s) => s.thread.terminate()));
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
    if (reinit && this.calls.inFlight === 0) await this.reinitialize();
    for (const s of this.pool.inState('broken')) {
      this.pool.mark(s, 'busy');
      await this.callOn(s, { op: 'close', logout: false }).catch(() => undefined);
    }
    this.pin ??= await this.o.pin();
    // Sessions open in parallel, each in its own thread, once one thread has initialized the module.
    const open = async (): Promise<PromiseSettledResult<unknown>[]> => {
      const s = this.pool.takeClosed();
      return s ? Promise.allSettled([this.callOn(s, { op: 'open', modulePath: this.o.modulePath, label: this.o.label })]) : [];
    };
    let missing = this.pool.missing();
    const results: PromiseSettledResult<unknown>[] = [];
    while (missing > 0 && !this.calls.initialized) {
      if (this.calls.initializing) {
        await this.calls.initializing.catch(() => undefined);
        continue;
      }
      const first = open();
      this.calls.initializing = first;
      try {
        results.push(...(await first));
      } finally {
        this.calls.initializing = undefined;
      }
      // A thread that loaded the module initialized it, whether or not the token was there.
      if (results.every((r) => r.status === 'fulfilled' || !(r.reason instanceof ModuleLoadError))) this.calls.initialized = true;
      missing--;
      break;
    }
    if (this.calls.initialized && !results.some((r) => r.status === 'rejected')) {
      const rest: Promise<PromiseSettledResult<unknown>[]>[] = [];
      for (; missing > 0; missing--) rest.push(open());
      for (const r of await Promise.all(rest)) results.push(...r);
    }
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      const e: unknown = failed.reason;
      if (e instanceof ModuleLoadError) throw new TokenFatalError(`${what}: ${e.message}`);
      if (e instanceof NoTokenError) throw new Error(`${what}: ${e.message}`);
      throw new Error(`${what}: cannot open a session: ${describeCallError(e)}`, { cause: e });
    }
    // Administration takes an idle session like any operation: a busy one belongs to a signature in flight.
    const taken = this.pool.take(true);
    if (!taken) throw new NoIdleSessionError(`${what}: every session is busy or stuck in a call`);
    try {
      await this.callOn(taken, { op: 'login', pin: this.pin });
    } catch (e) {
      const msg = `${what}: login failed: ${describeCallError(e)}`;
      const rejection = pinRejection(e);
      if (rejection) throw new PinRejectedError(msg, rejection);
      throw faultKind(e) === 'fatal' ? new TokenFatalError(msg) : new Error(msg, { cause: e });
    }
    const handles = await this.findKeys(this.keys, false);
    this.keys.forEach((k, i) => (k.handle = handles[i]));
    for (const key of this.keys) await this.proveKey(key);
    if (this.phase === 'closed') throw new Error(`${what} was closed while coming up`);
    this.pool.release();
    this.phase = 'up';
    this.attempt = 0;
    this.noteReadiness();
    this.signing.dispatch();
  }

  /** C_Finalize and C_Initialize in a thread, which every token of the module hears about (onModuleReset). */
  private async reinitialize(): Promise<void> {
    const s = this.pool.take(true) ?? this.pool.takeClosed();
    if (!s) return;
    await this.callOn(s, { op: 'reinitialize' }).catch(() => undefined);
    this.calls.reset();
  }

  /** The keys' handles, looked up on an idle session; errors name the key and say what the token holds. */
  private async findKeys(keys: readonly TokenKey[], candidate: boolean): Promise<Handle[]> {
    if (keys.length === 0) return [];
    const s = this.pool.take(true);
    if (!s) throw new NoIdleSessionError(`${this.o.describe}: every session is busy or stuck in a call`);
    const query: KeyQuery[] = keys.map((k) => ({
      ref: k.spec.ref, spki: k.spec.publicKey.export({ format: 'der', type: 'spki' }), describe: k.spec.describe, certDescribe: k.spec.certDescribe,
    }));
    try {
      return await this.callOn<Handle[]>(s, { op: 'find', keys: query }, candidate);
    } catch (e) {
      // Like a key that fails its test signature: no retry makes it the certificate's key.
      if (e instanceof KeyTypeMismatchError) throw new TokenFatalError(e.message, { cause: e });
      if (e instanceof KeyNotFoundError) throw new Error(e.message, { cause: e });
      throw new Error(`${this.o.describe}: key lookup failed: ${describeCallError(e)}`, { cause: e });
    }
  }

  /**
   * One call on a session the caller took, within callTimeout. Whenever the call ends, even long after its
   * deadline, the session's fate follows its result; until then a timed-out session is set aside as stuck.
   * A candidate's (a reload's new key's) failure is the key's, not the session's.
   */
  private async callOn<T>(s: PooledSession, req: Request, candidate = false): Promise<T> {
    if (this.phase === 'closed' && req.op !== 'close' && req.op !== 'finalize') throw new Error(`${this.o.describe} is closed`);
    const call = this.calls.track(s.thread.call<T>(req));
    call.then(
      () => {
        this.pool.give(s, req.op === 'close' || req.op === 'reinitialize' || req.op === 'finalize' ? 'closed' : 'ok');
        // A session opened late (its call outlived the bring-up that asked for it) joins a token that is up.
        if (req.op === 'open' && this.phase === 'up' && !this.bringingUp && this.ready) s.released = true;
        this.afterCall();
      },
      (e) => {
        if (e instanceof SessionThreadExitedError) this.pool.remove(s);
        else if (req.op === 'open') this.pool.give(s, 'closed');
        else {
          const kind = candidate ? undefined : faultKind(e);
          this.pool.give(s, kind === 'session' || kind === 'device' ? 'broken' : 'ok');
          if (kind === 'device') this.phase = this.phase === 'up' ? 'down' : this.phase;
        }
        this.afterCall();
      },
    );
    let timer: Timer | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = this.o.clock.setTimer(() => {
        this.pool.mark(s, 'stuck');
        this.noteReadiness();
        this.o.log.warn({ token: this.name, call: req.op, timeoutMs: this.callTimeoutMs }, 'HSM call timed out; session set aside');
        // Signatures queued behind this session are refused if no other session can take them.
        this.signing.dispatch();
        reject(new CallTimeoutError(`${req.op} did not return within ${this.callTimeoutMs} ms`));
      }, this.callTimeoutMs);
    });
    try {
      return await Promise.race([call, timeout]);
    } finally {
      timer?.cancel();
    }
  }

  private afterCall(): void {
    if (this.phase === 'closed') return;
    this.noteReadiness();
    this.signing.dispatch();
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
    const s = this.pool.take(true);
    if (!s) throw new NoIdleSessionError(`${describe}: no idle session to prove the key with`);
    let raw: Buffer;
    try {
      raw = await this.signing.signOn(s, key.handle!, mechanism, input, algorithm.maxSignatureBytes, candidate);
    } catch (e) {
      throw new Error(`${describe}: test signature failed: ${describeCallError(e)}`, { cause: e });
    }
    const ok = verify(algorithm.hash, probe, ec ? { key: publicKey, dsaEncoding: 'ieee-p1363' } : publicKey, raw);
    if (!ok) throw new TokenFatalError(`${describe} does not match the certificate in ${certDescribe}`);
  }

  private onModuleReset(): void {
    this.pool.forgetSessions();
    for (const k of this.keys) k.handle = undefined;
    if (this.phase === 'up') this.phase = 'down';
    this.noteReadiness();
    this.scheduleRecovery();
  }

  private onFault(kind: FaultKind, e: unknown): void {
    this.o.observer.hsmError(this.name, ckrName(pkcs11Code(e)!));
    this.o.log.warn({ token: this.name, code: ckrName(pkcs11Code(e)!), kind }, 'HSM fault');
    if (kind === 'device' && this.phase === 'up') this.phase = 'down';
    if (!this.ready) this.signing.failQueued(new SignerUnavailableError(`token "${this.name}" has no working session`));
    void this.checkIdleSessions();
    this.scheduleRecovery();
  }

  /** After a fault, or periodically: idle sessions the token no longer knows are marked broken. */
  private async checkIdleSessions(): Promise<void> {
    const probes: Promise<unknown>[] = [];
    for (const s of this.pool.inState('idle')) {
      if (!s.released) continue;
      this.pool.mark(s, 'busy');
      probes.push(
        this.callOn(s, { op: 'probe' }).catch((e) => {
          const kind = faultKind(e);
          if (!kind) return;
          // A probe can be the first to meet a fault: logged like one met by a signature.
          this.o.observer.hsmError(this.name, ckrName(pkcs11Code(e)!));
          this.o.log.warn({ token: this.name, code: ckrName(pkcs11Code(e)!), kind, call: 'probe' }, 'HSM fault');
        }),
      );
    }
    await Promise.all(probes);
    this.noteReadiness();
    if (!this.ready) this.scheduleRecovery();
  }

  private scheduleRecovery(): void {
    if (this.recoveryTimer || this.phase === 'closed' || this.phase === 'stopped' || this.phase === 'inactive' || this.bringingUp) return;
    const delay = this.attempt === 0 ? 0 : this.backoffMs(this.attempt);
    this.recoveryTimer = this.o.clock.setTimer(() => void this.recover(), delay);
  }

  private async recover(): Promise<void> {
    // Sessions all stuck in slow calls is no reason to re-initialize: wait for the calls to come back.
    const reinit = this.attempt > 0 && !(this.lastError instanceof NoIdleSessionError) && !(this.lastError instanceof Error && this.lastError.cause instanceof CallTimeoutError);
    try {
      await this.bringUp(reinit);
      this.recoveryTimer = undefined;
      this.lastError = undefined;
      this.o.log.info({ token: this.name, reinitialized: reinit, sessions: this.pool.counts() }, 'token recovered');
    } catch (e) {
      this.recoveryTimer = undefined;
      this.lastError = e;
      if (this.phase === 'closed') return;
      if (e instanceof TokenFatalError) {
        this.phase = 'stopped';
        this.signing.failQueued(new SignerUnavailableError(`token "${this.name}" has no working session`));
        this.noteReadiness();
        this.o.log.error({ token: this.name, reason: e.message }, 'token recovery stopped: operator action needed');
        return;
      }
      this.attempt++;
      this.o.log.warn({ token: this.name, attempt: this.attempt, reason: (e as Error).message }, 'token recovery failed; retrying');
      this.scheduleRecovery();
    }
  }

  private scheduleHealthCheck(): void {
    if (this.phase === 'closed' || this.o.healthCheckMs <= 0) return;
    this.healthTimer = this.o.clock.setTimer(() => {
      void this.checkIdleSessions();
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

/** The CKR name of a PKCS#11 error, else the message (never arguments, which may hold a PIN). */
function describeCallError(e: unknown): string {
  return describePkcs11Error(e);
}

function keyName(spec: TokenKeySpec): string {
  return 'label' in spec.ref ? spec.ref.label : `id:${spec.ref.id}`;
}

function mechanismName(m: number): string {
  return m === pkcs11js.CKM_ECDSA ? 'CKM_ECDSA' : m === pkcs11js.CKM_SHA256_RSA_PKCS ? 'CKM_SHA256_RSA_PKCS' : `0x${m.toString(16)}`;
}
