// Signing on a token's sessions: signatures are handed to idle session threads, which make C_SignInit and
// C_Sign synchronously; while every session is busy, signatures queue and the next free session takes them as
// one batch (one message each way), so the main thread's cost per signature falls as load rises.
import type { Clock, Timer } from '../clock';
import { faultKind, FaultKind, SignerUnavailableError, SignTimeoutError } from './faults';
import type { Handle } from './module';
import { describePkcs11Error } from './pkcs11-errors';
import type { PooledSession, SessionPool } from './session-pool';
import { fromWire, packSignJobs, SignJob, SignOutcome, SignResults, unpackResults } from './thread/protocol';

/** Largest batch one session takes: bounds how long a signature waits behind others in the same call. */
export const MAX_BATCH = 32;

export interface SigningHost {
  readonly name: string;
  readonly pool: SessionPool;
  readonly clock: Clock;
  readonly signTimeoutMs: number;
  /** Counts the call as in progress on the module until it settles (re-initialization waits for none). */
  track<T>(call: Promise<T>): Promise<T>;
  signed(key: string, mechanism: string, outcome: 'ok' | 'error' | 'timeout', seconds: number): void;
  /** A PKCS#11 error that says the session or the device is in trouble. */
  fault(kind: FaultKind, e: unknown): void;
  /** A call outlived its deadline: its session is set aside until the call returns. */
  stuck(): void;
  /** A session changed state: readiness may have moved. */
  changed(): void;
}

interface Job {
  key: string;
  mechanismName: string;
  wire: SignJob;
  started: number;
  resolve(sig: Buffer): void;
  reject(e: Error): void;
}

export class SessionSigning {
  private queue: Job[] = [];
  private dispatchScheduled = false;

  constructor(private readonly host: SigningHost) {}

  /** Queued, not yet on a session. */
  get queued(): number {
    return this.queue.length;
  }

  sign(key: string, keyHandle: Handle, mechanism: number, mechanismName: string, input: Buffer, outLen: number): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      this.queue.push({ key, mechanismName, wire: { mechanism, key: keyHandle, input, outLen }, started: this.host.clock.monotonicMs(), resolve, reject });
      this.dispatchSoon();
    });
  }

  /** Signs on the session the caller took, alone (key proofs). A failure of a candidate key leaves the session as it was. */
  async signOn(s: PooledSession, keyHandle: Handle, mechanism: number, input: Buffer, outLen: number, candidate: boolean): Promise<Buffer> {
    let out: Buffer | undefined;
    let err: Error | undefined;
    await this.run(s, [{
      key: '', mechanismName: '', wire: { mechanism, key: keyHandle, input, outLen }, started: this.host.clock.monotonicMs(),
      resolve: (b) => (out = b), reject: (e) => (err = e),
    }], candidate);
    if (err) throw err;
    return out!;
  }

  /** Refuses every queued signature (the token went down). */
  failQueued(e: Error): void {
    const q = this.queue;
    this.queue = [];
    for (const j of q) this.settle(j, 'error', e);
  }

  /**
   * Dispatches once the signatures asked for in this turn of the event loop are all queued: handed over one by
   * one as they came, most found a session idle and went alone (2.2 per message to the session threads in the
   * pre-signer bench); gathered first, 6.2 (README "Benchmarks").
   */
  private dispatchSoon(): void {
    if (this.dispatchScheduled) return;
    this.dispatchScheduled = true;
    setImmediate(() => {
      this.dispatchScheduled = false;
      this.dispatch();
    });
  }

  /** Hands queued signatures to idle sessions; refuses them when no session can ever take them. */
  dispatch(): void {
    while (this.queue.length > 0) {
      const s = this.host.pool.take();
      if (!s) break;
      const n = this.queue.length === 1 ? 1 : Math.min(MAX_BATCH, Math.ceil(this.queue.length / (this.host.pool.count('idle') + 1)));
      void this.run(s, this.queue.splice(0, n), false);
    }
    if (this.queue.length > 0 && this.host.pool.count('busy') === 0) {
      this.failQueued(new SignerUnavailableError(`token "${this.host.name}" has no working session`));
    }
  }

  /**
   * One batch on one session, limited to signTimeout. Whenever the call ends, even long after a timeout, the
   * session's fate follows its result; until then a timed-out session is set aside as stuck.
   */
  private async run(s: PooledSession, batch: Job[], candidate: boolean): Promise<void> {
    const h = this.host;
    const call = h.track(s.thread.call<SignResults>({ op: 'sign', batch: packSignJobs(batch.map((j) => j.wire)) }));
    let timedOut = false;
    let timer: Timer | undefined = h.clock.setTimer(() => {
      timer = undefined;
      timedOut = true;
      h.pool.mark(s, 'stuck');
      const e = new SignTimeoutError(`token "${h.name}" did not sign within ${h.signTimeoutMs} ms`);
      for (const j of batch) this.settle(j, 'timeout', e);
      h.stuck();
      this.dispatch();
    }, h.signTimeoutMs);
    let outcomes: SignOutcome[] | undefined;
    let callError: Error | undefined;
    try {
      outcomes = unpackResults(await call);
    } catch (e) {
      callError = e as Error;
    }
    timer?.cancel();
    let fault: { kind: FaultKind; e: Error } | undefined;
    if (callError) {
      // The thread itself failed (it exited): its session is lost with it.
      h.pool.remove(s);
      if (!timedOut) for (const j of batch) this.settle(j, 'error', new SignerUnavailableError(`token "${h.name}": ${callError.message}`, { cause: callError }));
    } else {
      outcomes!.forEach((o, i) => {
        const j = batch[i]!;
        if (o.ok) {
          if (!timedOut) this.settle(j, 'ok', undefined, Buffer.from(o.signature.buffer, o.signature.byteOffset, o.signature.byteLength));
          return;
        }
        const e = fromWire(o.error);
        const kind = candidate ? undefined : faultKind(e);
        if (kind && !fault) fault = { kind, e };
        if (!timedOut) this.settle(j, 'error', kind ? new SignerUnavailableError(`token "${h.name}": ${describePkcs11Error(e)}`, { cause: e }) : e);
      });
      h.pool.give(s, fault ? 'broken' : 'ok');
    }
    if (fault) h.fault(fault.kind, fault.e);
    h.changed();
    this.dispatch();
  }

  private settle(j: Job, outcome: 'ok' | 'error' | 'timeout', e?: Error, sig?: Buffer): void {
    if (j.key) this.host.signed(j.key, j.mechanismName, outcome, (this.host.clock.monotonicMs() - j.started) / 1000);
    if (outcome === 'ok') j.resolve(sig!);
    else j.reject(e!);
  }
}
