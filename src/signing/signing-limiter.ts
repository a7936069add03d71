// Bounds the load put on an HSM: a signature-rate token bucket, a concurrency ceiling, and a bounded wait
// queue with deadlines. Live requests go first; pre-signing only gets what live traffic leaves. A key's own
// limits are checked at the instant its token would start the signature (gates), never waited at separately.
// Overload is refused at once (the caller answers tryLater), never queued without bound.
import type { Clock, Timer } from '../clock';
import { TryLaterError } from '../ocsp/errors';
import { ClientQueues, turnsBefore } from './client-queues';
import { TokenBucket } from './token-bucket';

export type Lane = 'live' | 'presign';
export type RejectReason = 'queue_full' | 'deadline' | 'client_share';

export interface SignContext {
  lane: Lane;
  /** Who asked (source address, or first untrusted X-Forwarded-For hop); fairness is per client. */
  client?: string;
  /** Monotonic time by which the signature must have started, else the request is refused. */
  deadlineMs?: number;
  /**
   * Take a permit only if one is free at once (freeNow()), never waiting: else PermitNotFreeError, and the caller
   * answers otherwise (a nonce request gets the pre-produced response, README "Pre-produced responses").
   */
  immediate?: boolean;
}

export interface LimiterOptions {
  name: string;
  /** Signatures per second; 0 means no rate ceiling. */
  ratePerSecond: number;
  burst: number;
  maxConcurrent: number;
  maxQueue: number;
  /** Longest a live request may wait in the queue. */
  queueTimeoutMs: number;
  /** Largest share (0-1] of live capacity one client may hold while other clients wait. */
  clientShare: number;
  /** Keep one concurrent slot free of pre-signing for live requests (default true; off in one-shot CLI runs). */
  reserveLiveSlot?: boolean;
  clock: Clock;
  onReject?: (limiter: string, reason: RejectReason) => void;
}

/** Overload refused by a limiter: a kind of tryLater, with the reason for the metrics and when to come back. */
export class LimiterRejectedError extends TryLaterError {
  override name = 'LimiterRejectedError';
  constructor(
    readonly reason: RejectReason,
    message: string,
    retryAfterSeconds = 1,
  ) {
    super(message, { retryAfterSeconds });
  }
}

/** No permit free at once for a request that may not wait (SignContext.immediate): not an overload refusal. */
export class PermitNotFreeError extends TryLaterError {
  override name = 'PermitNotFreeError';
}

const NOT_FREE = new PermitNotFreeError('no signing permit free now');

/** The longest Retry-After a refusal tells: beyond a minute the estimate says more about now than about then. */
export const MAX_RETRY_AFTER_SECONDS = 60;

/** Weight of the newest signature in the smoothed time a permit is held. */
const HOLD_SMOOTHING = 0.2;

const MESSAGES: Record<RejectReason, string> = {
  queue_full: 'signing queue is full',
  client_share: 'this client already holds its share of the signing queue',
  deadline: 'signing capacity exhausted until after the request deadline',
};

// Refusals are the hot path under overload: shared sentinels (one per reason and Retry-After, at most 180), no
// stack trace captured per request.
const REFUSED = new Map<string, LimiterRejectedError>();

export function limiterRefusal(reason: RejectReason, retryAfterSeconds: number): LimiterRejectedError {
  const key = `${reason}:${retryAfterSeconds}`;
  let e = REFUSED.get(key);
  if (!e) REFUSED.set(key, (e = new LimiterRejectedError(reason, MESSAGES[reason], retryAfterSeconds)));
  return e;
}

export interface Permit {
  release(): void;
}

const NO_GATES: readonly SigningLimiter[] = [];

interface Waiter {
  lane: Lane;
  client: string;
  deadline: number;
  timer: Timer | undefined;
  /** Other limiters (a key's own limits) whose permits are taken at the same instant as this one's. */
  gates: readonly SigningLimiter[];
  resolve(p: Permit): void;
  reject(e: Error): void;
}

export class SigningLimiter {
  private readonly bucket: TokenBucket;
  private inFlight = 0;
  private readonly inFlightByClient = new Map<string, number>();
  private readonly live = new ClientQueues<Waiter>();
  private readonly presign: Waiter[] = [];
  private refillTimer: Timer | undefined;
  private refillAt = Infinity;
  /** As a gate: the limiters whose waiters need a permit of this one too, woken when one is released. */
  private readonly watchers = new Set<SigningLimiter>();
  /** As a gate: live requests waiting (in a watcher's queue) for a permit of this one, per client. */
  private readonly gatedLive = new Map<string, number>();
  /** Waiters here that need a gate's permit too: while none, the queue's head is all that can start. */
  private gated = 0;
  /** How long a permit has been held lately (smoothed; undefined until one was released): a signature's time. */
  private holdMs: number | undefined;

  constructor(private readonly o: LimiterOptions) {
    this.bucket = new TokenBucket(o.ratePerSecond, o.burst, o.clock);
  }

  get name(): string {
    return this.o.name;
  }

  /** Signatures holding a permit now, and how many may at once: how near the HSM's ceiling this limiter runs. */
  get inFlightCount(): number {
    return this.inFlight;
  }

  get maxConcurrent(): number {
    return this.o.maxConcurrent;
  }

  queueDepth(lane: Lane): number {
    return lane === 'live' ? this.live.size : this.presign.length;
  }

  availableTokens(): number {
    return this.bucket.available();
  }

  /**
   * A permit of this limiter and of each of `gates` (a key's own limits on top of its token's), all taken at the
   * instant the signature may start. The request waits in this limiter's queue only, holding nothing meanwhile.
   */
  acquire(ctx: SignContext, gates: readonly SigningLimiter[] = NO_GATES): Promise<Permit> {
    const now = this.o.clock.monotonicMs();
    const lane = ctx.lane;
    const client = lane === 'live' ? (ctx.client ?? '') : '';
    if (ctx.immediate) return this.freeNow(client, gates) ? Promise.resolve(this.grant(client, gates)) : Promise.reject(NOT_FREE);
    if (this.idle() && this.startsInMs(lane, gates) === 0) return Promise.resolve(this.grant(client, gates));
    if (lane === 'presign') {
      // Pre-signing waits as long as it must: it has no client at the other end.
      return new Promise((resolve, reject) => {
        this.enqueue({ lane, client, deadline: Infinity, timer: undefined, gates, resolve, reject });
        this.pump();
      });
    }
    const deadline = Math.min(ctx.deadlineMs ?? Infinity, now + this.o.queueTimeoutMs);
    if (this.live.size >= this.o.maxQueue) return this.refuse('queue_full', client, gates);
    if (this.live.waitingFor(client) >= this.clientQueueCap()) return this.refuse('client_share', client, gates);
    // Refuse now what could only fail later: the expected wait at the configured rates exceeds the deadline.
    if (deadline <= now || this.expectedWaitMs(client, gates) > deadline - now) return this.refuse('deadline', client, gates);
    return new Promise((resolve, reject) => {
      const w: Waiter = { lane, client, deadline, timer: undefined, gates, resolve, reject };
      w.timer = this.o.clock.setTimer(() => this.expire(w), deadline - now);
      this.enqueue(w);
      this.pump();
    });
  }

  /**
   * Whether a request that may not wait could start now: no live request waiting (a live miss goes first), the slot
   * and token kept for live requests left free as pre-signing leaves them, and `client` (undefined: not checked)
   * below its share of in-flight signatures here and at each gate.
   */
  freeNow(client: string | undefined, gates: readonly SigningLimiter[] = NO_GATES): boolean {
    if (this.live.size > 0 || this.startsInMs('presign', gates) !== 0) return false;
    if (client === undefined) return true;
    if (!this.belowShare(client)) return false;
    for (const g of gates) if (!g.belowShare(client)) return false;
    return true;
  }

  private belowShare(client: string): boolean {
    return (this.inFlightByClient.get(client) ?? 0) < this.inFlightCap();
  }

  /** In-flight signatures one client may hold while others wait (clientShare of maxConcurrent, at least one). */
  private inFlightCap(): number {
    return Math.max(1, Math.ceil(this.o.clientShare * this.o.maxConcurrent));
  }

  private idle(): boolean {
    return this.live.size === 0 && this.presign.length === 0;
  }

  /**
   * When a signature of `lane` could start as far as this limiter goes: 0 now; else in how many ms the bucket
   * will hold enough; Infinity when only a release can let it start (no slot, or only the one kept for live).
   * Pre-signing leaves live traffic one concurrency slot and the bucket's last token, so a live request never
   * waits behind it for either.
   */
  private waitMs(lane: Lane): number {
    const keep = lane === 'presign' && this.o.reserveLiveSlot !== false;
    const slots = keep && this.o.maxConcurrent > 1 ? this.o.maxConcurrent - 1 : this.o.maxConcurrent;
    if (this.inFlight >= slots) return Infinity;
    return this.bucket.msUntil(keep && this.o.burst >= 2 ? 2 : 1);
  }

  private startsInMs(lane: Lane, gates: readonly SigningLimiter[]): number {
    let ms = this.waitMs(lane);
    for (const g of gates) ms = Math.max(ms, g.waitMs(lane));
    return ms;
  }

  private gatesWaitMs(w: Waiter): number {
    let ms = 0;
    for (const g of w.gates) ms = Math.max(ms, g.waitMs(w.lane));
    return ms;
  }

  private grant(client: string, gates: readonly SigningLimiter[]): Permit {
    this.take(client);
    for (const g of gates) g.take(client);
    const granted = this.o.clock.monotonicMs();
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.held(this.o.clock.monotonicMs() - granted);
        this.give(client);
        for (const g of gates) g.give(client);
        this.wake();
        for (const g of gates) g.wake();
      },
    };
  }

  private take(client: string): void {
    this.bucket.take();
    this.inFlight++;
    this.inFlightByClient.set(client, (this.inFlightByClient.get(client) ?? 0) + 1);
  }

  private held(ms: number): void {
    this.holdMs = this.holdMs === undefined ? ms : this.holdMs + HOLD_SMOOTHING * (ms - this.holdMs);
  }

  private give(client: string): void {
    this.inFlight--;
    count(this.inFlightByClient, client, -1);
  }

  /** A permit was released: waiters here, and waiters elsewhere that also need this limiter, may start. */
  private wake(): void {
    this.pump();
    for (const l of this.watchers) l.pump();
  }

  private enqueue(w: Waiter): void {
    if (w.gates.length > 0) this.gated++;
    for (const g of w.gates) {
      g.watchers.add(this);
      if (w.lane === 'live') count(g.gatedLive, w.client, 1);
    }
    if (w.lane === 'live') this.live.push(w);
    else this.presign.push(w);
  }

  /** A waiter is off the queue (started or refused). */
  private left(w: Waiter): void {
    if (w.gates.length > 0) this.gated--;
    if (w.lane === 'live') for (const g of w.gates) count(g.gatedLive, w.client, -1);
  }

  private pump(): void {
    for (let w = this.next(); w; w = this.next()) {
      this.left(w);
      w.timer?.cancel();
      w.resolve(this.grant(w.client, w.gates));
    }
    this.armRefill();
  }

  /**
   * The waiter to start now, taken off its queue. Live first, round-robin over clients, a client holding its share
   * of in-flight signatures yielding to others; pre-signing only in what live traffic leaves. A request whose key
   * is at its own ceiling is passed over, not waited behind.
   */
  private next(): Waiter | undefined {
    if (this.live.size > 0 && this.waitMs('live') === 0) {
      const cap = this.inFlightCap();
      const w = this.live.take((c) => (this.inFlightByClient.get(c) ?? 0) < cap, (x) => this.gatesWaitMs(x) === 0);
      if (w) return w;
    }
    if (this.presign.length > 0 && this.waitMs('presign') === 0) {
      const i = this.presign.findIndex((x) => this.gatesWaitMs(x) === 0);
      if (i >= 0) return this.presign.splice(i, 1)[0];
    }
    return undefined;
  }

  /**
   * One timer, for the earliest moment a refill (here or at a waiter's key) lets a waiter start. None when only a
   * release can: a release pumps the queue itself, and a timer would only wake up to find nothing to do.
   */
  private armRefill(): void {
    let soonest = Infinity;
    for (const q of this.live.values()) {
      soonest = Math.min(soonest, this.soonestMs('live', q));
      if (this.gated === 0) break; // every client's head could start as soon as the token can
    }
    if (this.presign.length > 0) soonest = Math.min(soonest, this.soonestMs('presign', this.presign));
    if (soonest === Infinity) return;
    const now = this.o.clock.monotonicMs();
    // Whole milliseconds, as Node's timers are; a hair of float error must not cost a second turn.
    const at = now + Math.max(1, Math.ceil(soonest - 1e-6));
    if (this.refillTimer && this.refillAt <= at) return;
    this.refillTimer?.cancel();
    this.refillAt = at;
    this.refillTimer = this.o.clock.setTimer(() => {
      this.refillTimer = undefined;
      this.refillAt = Infinity;
      this.pump();
    }, at - now);
  }

  private soonestMs(lane: Lane, waiters: readonly Waiter[]): number {
    const own = this.waitMs(lane);
    if (own === Infinity || this.gated === 0) return own;
    let soonest = Infinity;
    for (const w of waiters) {
      soonest = Math.min(soonest, Math.max(own, this.gatesWaitMs(w)));
      if (soonest <= own) break;
    }
    return soonest;
  }

  private expire(w: Waiter): void {
    if (!this.live.remove(w)) return;
    this.left(w);
    this.o.onReject?.(this.o.name, 'deadline');
    w.reject(limiterRefusal('deadline', this.retryAfterSeconds(w.client, w.gates)));
  }

  private refuse(reason: RejectReason, client: string, gates: readonly SigningLimiter[]): Promise<never> {
    this.o.onReject?.(this.o.name, reason);
    return Promise.reject(limiterRefusal(reason, this.retryAfterSeconds(client, gates)));
  }

  /**
   * When a refused client may come back (README "Protecting the HSM"): the time the live requests waiting now, and
   * one more, take to start: at the rate ceilings (this limiter's, and the key's for the client's turn), and at the
   * concurrency ceiling, one batch of maxConcurrent per recent signature time. Whole seconds, 1 to 60.
   */
  retryAfterSeconds(client: string, gates: readonly SigningLimiter[] = NO_GATES): number {
    const ahead = this.live.size + 1;
    const byRate = Math.max(this.bucket.msUntil(ahead), this.expectedWaitMs(client, gates));
    const bySlots = Math.ceil(ahead / this.o.maxConcurrent) * (this.holdMs ?? 0);
    return Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(1, Math.ceil(Math.max(byRate, bySlots) / 1000)));
  }

  private clientQueueCap(): number {
    return Math.max(1, Math.floor(this.o.clientShare * this.o.maxQueue));
  }

  /** Wait at the configured rates for a new live request of `client`, here and at each of its gates. */
  private expectedWaitMs(client: string, gates: readonly SigningLimiter[]): number {
    let ms = this.bucket.msUntil(this.live.turnsBefore(client));
    for (const g of gates) ms = Math.max(ms, g.bucket.msUntil(turnsBefore(client, g.gatedLive, (n) => n)));
    return ms;
  }
}

function count(m: Map<string, number>, key: string, by: 1 | -1): void {
  const n = (m.get(key) ?? 0) + by;
  if (n === 0) m.delete(key);
  else m.set(key, n);
}
