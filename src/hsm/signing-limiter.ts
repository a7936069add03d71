// Bounds the load put on an HSM: a signature-rate token bucket, a concurrency ceiling, and a bounded wait
// queue with deadlines. Live requests go first; pre-signing only gets what live traffic leaves.
// Overload is refused at once (the caller answers tryLater), never queued without bound.
import type { Clock, Timer } from '../clock';

export type Lane = 'live' | 'presign';
export type RejectReason = 'queue_full' | 'deadline' | 'client_share';

export interface SignContext {
  lane: Lane;
  /** Who asked (source address, or first untrusted X-Forwarded-For hop); fairness is per client. */
  client?: string;
  /** Monotonic time by which the signature must have started, else the request is refused. */
  deadlineMs?: number;
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

export class LimiterRejectedError extends Error {
  override name = 'LimiterRejectedError';
  constructor(
    readonly reason: RejectReason,
    message: string,
  ) {
    super(message);
  }
}

// Refusals are the hot path under overload: shared sentinels, no stack trace captured per request.
const REFUSED: Record<RejectReason, LimiterRejectedError> = {
  queue_full: new LimiterRejectedError('queue_full', 'signing queue is full'),
  client_share: new LimiterRejectedError('client_share', 'this client already holds its share of the signing queue'),
  deadline: new LimiterRejectedError('deadline', 'signing capacity exhausted until after the request deadline'),
};

export interface Permit {
  release(): void;
}

interface Waiter {
  client: string;
  deadline: number;
  timer: Timer | undefined;
  resolve(p: Permit): void;
  reject(e: Error): void;
}

export class SigningLimiter {
  private tokens: number;
  private lastRefill: number;
  private inFlight = 0;
  private readonly inFlightByClient = new Map<string, number>();
  /** Live waiters per client, served round-robin in `order`. */
  private readonly live = new Map<string, Waiter[]>();
  private order: string[] = [];
  private liveCount = 0;
  private readonly presign: Waiter[] = [];
  private refillTimer: Timer | undefined;

  constructor(private readonly o: LimiterOptions) {
    this.tokens = o.burst;
    this.lastRefill = o.clock.monotonicMs();
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
    return lane === 'live' ? this.liveCount : this.presign.length;
  }

  availableTokens(): number {
    this.refill();
    return this.o.ratePerSecond > 0 ? Math.floor(this.tokens) : Infinity;
  }

  acquire(ctx: SignContext): Promise<Permit> {
    const now = this.o.clock.monotonicMs();
    const client = ctx.lane === 'live' ? (ctx.client ?? '') : '';
    if (this.idle() && this.canStart(ctx.lane)) return Promise.resolve(this.grant(client));
    if (ctx.lane === 'presign') {
      // Pre-signing waits as long as it must: it has no client at the other end.
      return new Promise((resolve, reject) => {
        this.presign.push({ client, deadline: Infinity, timer: undefined, resolve, reject });
        this.pump();
      });
    }
    const deadline = Math.min(ctx.deadlineMs ?? Infinity, now + this.o.queueTimeoutMs);
    if (this.liveCount >= this.o.maxQueue) return this.refuse('queue_full');
    if ((this.live.get(client)?.length ?? 0) >= this.clientQueueCap()) return this.refuse('client_share');
    // Refuse now what could only fail later: the expected wait at the configured rate exceeds the deadline.
    if (deadline <= now || this.expectedWaitMs(client) > deadline - now) return this.refuse('deadline');
    return new Promise((resolve, reject) => {
      const w: Waiter = { client, deadline, timer: undefined, resolve, reject };
      w.timer = this.o.clock.setTimer(() => this.expire(w), deadline - now);
      let q = this.live.get(client);
      if (!q) {
        this.live.set(client, (q = []));
        this.order.push(client);
      }
      q.push(w);
      this.liveCount++;
      this.pump();
    });
  }

  private idle(): boolean {
    return this.liveCount === 0 && this.presign.length === 0;
  }

  /** Pre-signing leaves one concurrency slot to live traffic, so a live request never waits behind it. */
  private canStart(lane: Lane): boolean {
    const reserve = lane === 'presign' && this.o.reserveLiveSlot !== false && this.o.maxConcurrent > 1;
    const slots = reserve ? this.o.maxConcurrent - 1 : this.o.maxConcurrent;
    if (this.inFlight >= slots) return false;
    this.refill();
    return this.o.ratePerSecond <= 0 || this.tokens >= 1;
  }

  private grant(client: string): Permit {
    if (this.o.ratePerSecond > 0) this.tokens -= 1;
    this.inFlight++;
    this.inFlightByClient.set(client, (this.inFlightByClient.get(client) ?? 0) + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.inFlight--;
        const n = this.inFlightByClient.get(client)! - 1;
        if (n === 0) this.inFlightByClient.delete(client);
        else this.inFlightByClient.set(client, n);
        this.pump();
      },
    };
  }

  private pump(): void {
    while (!this.idle()) {
      const lane: Lane = this.liveCount > 0 ? 'live' : 'presign';
      if (!this.canStart(lane)) {
        this.scheduleRefill();
        return;
      }
      const next = lane === 'live' ? this.nextLive()! : this.presign.shift()!;
      next.timer?.cancel();
      next.resolve(this.grant(next.client));
    }
  }

  /** Round-robin over clients; a client holding its share of in-flight signatures yields to others waiting. */
  private nextLive(): Waiter | undefined {
    if (this.order.length === 0) return undefined;
    const cap = Math.max(1, Math.ceil(this.o.clientShare * this.o.maxConcurrent));
    const eligible = this.order.findIndex((c) => (this.inFlightByClient.get(c) ?? 0) < cap);
    const client = this.order.splice(Math.max(0, eligible), 1)[0]!;
    const q = this.live.get(client)!;
    const w = q.shift()!;
    this.liveCount--;
    if (q.length > 0) this.order.push(client);
    else this.live.delete(client);
    return w;
  }

  private expire(w: Waiter): void {
    const q = this.live.get(w.client);
    const i = q?.indexOf(w) ?? -1;
    if (!q || i < 0) return;
    q.splice(i, 1);
    this.liveCount--;
    if (q.length === 0) {
      this.live.delete(w.client);
      this.order = this.order.filter((c) => c !== w.client);
    }
    this.o.onReject?.(this.o.name, 'deadline');
    w.reject(REFUSED.deadline);
  }

  private refuse(reason: RejectReason): Promise<never> {
    this.o.onReject?.(this.o.name, reason);
    return Promise.reject(REFUSED[reason]);
  }

  private clientQueueCap(): number {
    return Math.max(1, Math.floor(this.o.clientShare * this.o.maxQueue));
  }

  /** Wait at the configured rate for a new request of `client`: round-robin puts it behind at most one turn per other client per own queued request. */
  private expectedWaitMs(client: string): number {
    if (this.o.ratePerSecond <= 0) return 0;
    this.refill();
    const own = this.live.get(client)?.length ?? 0;
    let ahead = own + 1;
    for (const [c, q] of this.live) if (c !== client) ahead += Math.min(q.length, own + 1);
    ahead -= this.tokens;
    return ahead <= 0 ? 0 : (ahead / this.o.ratePerSecond) * 1000;
  }

  private refill(): void {
    if (this.o.ratePerSecond <= 0) return;
    const now = this.o.clock.monotonicMs();
    this.tokens = Math.min(this.o.burst, this.tokens + ((now - this.lastRefill) / 1000) * this.o.ratePerSecond);
    this.lastRefill = now;
  }

  private scheduleRefill(): void {
    if (this.refillTimer || this.o.ratePerSecond <= 0 || this.inFlight >= this.o.maxConcurrent) return;
    const ms = Math.max(1, ((1 - this.tokens) / this.o.ratePerSecond) * 1000);
    this.refillTimer = this.o.clock.setTimer(() => {
      this.refillTimer = undefined;
      this.pump();
    }, ms);
  }
}
