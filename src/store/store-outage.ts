// A store's outages: a failure to reach the store (store-unavailable.ts) marks it down, one broken connection has a
// probe say whether it is; while it is down every call is refused at once with StoreUnavailableError (no request waits
// for a connect timeout) and one probe at a time asks whether it is back. The log says so once when an outage starts
// and once when it ends. guarded-store.ts puts it in front of a store.
import type { Logger } from 'pino';
import type { Clock, Timer } from '../clock';
import { connectionFailure, StoreUnavailableError } from './store-unavailable';

/** Told of outages as they happen (metrics). */
export interface OutageObserver {
  began(): void;
  /** A call refused at once because the store is down. */
  refused(): void;
}

export interface StoreOutageOptions {
  clock: Clock;
  log: Pick<Logger, 'error' | 'warn' | 'info' | 'debug'>;
  observer?: OutageObserver;
  /** Pause between probes while the store is down. */
  probeEveryMs?: number;
  /**
   * How long the store must answer after a probe succeeded before the outage is logged as over: a store that fails
   * again within it (a flapping connection, a damaged SQLite page the probe does not read) is the same outage.
   */
  settleMs?: number;
  /** Takes secrets (a connection URL's password) out of error messages. */
  scrub?: (message: string) => string;
}

/** Distinct messages held while a probe decides what they mean (the store's warnings, broken connections). */
const MAX_HELD = 20;

type Phase = 'up' | 'down' | 'settling';

export class StoreOutage {
  private phase: Phase = 'up';
  private downSinceMs = 0;
  private downSince = new Date(0);
  private backAtMs = -Infinity;
  private lastError = '';
  private refusal: StoreUnavailableError | undefined;
  private refusedNow = 0;
  private probing = false;
  private probeTimer: Timer | undefined;
  private settleTimer: Timer | undefined;
  /** Message -> how many times, since the last probe began. */
  private held = new Map<string, number>();
  /** Change-feed listeners told of a change while the store was down: told again once it answers. */
  private readonly deferred = new Set<() => void>();
  private closed = false;
  private readonly clock: Clock;
  private readonly probeEveryMs: number;
  private readonly settleMs: number;
  private readonly scrub: (m: string) => string;

  constructor(
    /** A cheap read that proves the store answers (ChangeFeed.lastChange reads a real table, unlike `SELECT 1`). */
    private readonly probe: () => Promise<unknown>,
    private readonly o: StoreOutageOptions,
  ) {
    this.clock = o.clock;
    this.probeEveryMs = o.probeEveryMs ?? 250;
    this.settleMs = o.settleMs ?? 1_000;
    this.scrub = o.scrub ?? ((m) => m);
  }

  /** False while calls are refused. */
  get up(): boolean {
    return this.phase !== 'down';
  }

  /** Monotonic time at which the store last came back (-Infinity: never down): what the change feed must be proved after. */
  get upSinceMs(): number {
    return this.backAtMs;
  }

  /** Why the store cannot be used now ("unavailable since …: cause"), or undefined (readiness). */
  problem(): string | undefined {
    return this.phase === 'down' ? `unavailable since ${this.downSince.toISOString()}: ${this.lastError}` : undefined;
  }

  /** Runs a store call unless the store is down; a connection-level failure becomes StoreUnavailableError. */
  run<T>(call: () => T): T | Promise<never> {
    if (this.phase === 'down') return Promise.reject(this.refuse());
    const began = this.clock.monotonicMs();
    let result: T;
    try {
      result = call();
    } catch (e) {
      throw this.failed(e, began);
    }
    // Only promises are watched: the store's synchronous members never reach a connection.
    return result instanceof Promise ? (result.catch((e: unknown) => Promise.reject(this.failed(e, began))) as T) : result;
  }

  /** A synchronous call that failed just now: what it means for the store (see run); returns what to throw. */
  failedNow(e: unknown): unknown {
    return this.failed(e, this.clock.monotonicMs());
  }

  /**
   * A warning of the store itself (an idle connection lost, the change listener reconnecting). While the store is
   * down it is part of the outage already logged; otherwise a probe says whether it starts one (then it is folded
   * into the outage's line) or not (then it is logged on its own). Once closed (the store's own close is what speaks
   * then: connections not handed back) it is logged as it is.
   */
  warning(message: string): void {
    if (this.closed) return void this.o.log.warn(this.scrub(message));
    if (this.phase === 'down') return void this.o.log.debug({ warning: message }, 'store warning during an outage');
    this.suspect(message);
  }

  /**
   * A change-feed signal (PostgreSQL: a notification, or the listener reconnecting). While the store is down nothing
   * could read the change log anyway: the signal waits until a probe, started now, finds the store back. Passed on at
   * once it would only mark the feed pending and stop answers from memory that maxStaleness still allows.
   */
  changed(listener: () => void): void {
    if (this.closed || this.phase !== 'down') return listener();
    this.deferred.add(listener);
    this.runProbe();
  }

  close(): void {
    this.closed = true;
    this.deferred.clear();
    this.probeTimer?.cancel();
    this.settleTimer?.cancel();
  }

  private refuse(): StoreUnavailableError {
    this.refusedNow++;
    this.o.observer?.refused();
    return this.refusalFor();
  }

  /** One error per outage and cause, shared by every refusal: nothing to build per refused call. */
  private refusalFor(): StoreUnavailableError {
    this.refusal ??= new StoreUnavailableError(`store ${this.problem()}`);
    return this.refusal;
  }

  private failed(e: unknown, began: number): unknown {
    const kind = connectionFailure(e);
    if (kind === undefined) return e;
    const message = this.describe(e);
    // A call sent before the store came back that fails now says nothing about the store since.
    if (!this.closed && this.phase !== 'down' && began >= this.backAtMs) {
      if (kind === 'store') this.begin(message);
      else this.suspect(message);
    }
    return e instanceof StoreUnavailableError ? e : new StoreUnavailableError(`store unavailable: ${message}`, { cause: e });
  }

  /** Something went wrong with a connection: the store may be down, or only that connection. A probe tells. */
  private suspect(message: string): void {
    if (this.held.size < MAX_HELD || this.held.has(message)) this.held.set(message, (this.held.get(message) ?? 0) + 1);
    this.runProbe();
  }

  private begin(message: string): void {
    const settling = this.phase === 'settling';
    this.phase = 'down';
    this.lastError = message;
    this.refusal = undefined;
    this.settleTimer?.cancel();
    const held = this.takeHeld();
    if (!settling) {
      this.downSinceMs = this.clock.monotonicMs();
      this.downSince = this.clock.now();
      this.refusedNow = 0;
      this.o.observer?.began();
      this.o.log.error(
        { err: message, ...(held.length > 0 ? { before: held } : {}) },
        'store unavailable: requests that need it get tryLater, answers from memory go on within store.maxStaleness',
      );
    }
    this.scheduleProbe();
  }

  private scheduleProbe(): void {
    if (this.closed) return;
    this.probeTimer?.cancel();
    this.probeTimer = this.clock.setTimer(() => this.runProbe(), this.probeEveryMs);
  }

  /** At most one probe in flight; while down, the next one starts probeEveryMs after the last one ended. */
  private runProbe(again = false): void {
    if (this.probing || this.closed) return;
    this.probing = true;
    const done = (e?: unknown) => {
      this.probing = false;
      if (this.closed) return;
      if (e === undefined) return this.answered();
      if (this.phase === 'down') {
        const message = this.describe(e);
        if (message !== this.lastError) [this.lastError, this.refusal] = [message, undefined];
        return this.scheduleProbe();
      }
      const kind = connectionFailure(e);
      // The probe's own connection may be the one just cut (a pooled connection ended under it): ask once more.
      if (kind === 'connection' && !again) return this.runProbe(true);
      if (kind) return this.begin(this.describe(e));
      this.logHeld();
    };
    let probe: Promise<unknown>;
    try {
      probe = this.probe();
    } catch (e) {
      probe = Promise.reject(e);
    }
    probe.then(() => done(), (e: unknown) => done(e ?? new Error('probe failed')));
  }

  private answered(): void {
    if (this.phase !== 'down') return this.logHeld();
    this.phase = 'settling';
    this.backAtMs = this.clock.monotonicMs();
    this.settleTimer = this.clock.setTimer(() => this.settled(), this.settleMs);
    const signals = [...this.deferred];
    this.deferred.clear();
    for (const listener of signals) listener();
  }

  private settled(): void {
    if (this.phase !== 'settling') return;
    this.phase = 'up';
    this.o.log.info(
      { downForMs: Math.round(this.backAtMs - this.downSinceMs), refused: this.refusedNow, lastError: this.lastError },
      'store available again',
    );
  }

  /** The probe found the store answering: what was held was about single connections, logged as such. */
  private logHeld(): void {
    const settling = this.phase === 'settling';
    for (const m of this.takeHeld()) {
      // Right after an outage, connections of before it are still being found broken: part of the outage.
      if (settling) this.o.log.debug({ warning: m }, 'store warning as an outage ends');
      else this.o.log.warn(m);
    }
  }

  /** The held messages, each once with how many times it came ("… (3 times)"). */
  private takeHeld(): string[] {
    const out = [...this.held].map(([m, n]) => (n > 1 ? `${m} (${n} times)` : m));
    this.held.clear();
    return out;
  }

  private describe(e: unknown): string {
    if (e instanceof AggregateError && !e.message) return this.scrub(e.errors.map((x: unknown) => this.describe(x)).join('; '));
    if (e instanceof Error) return this.scrub(e.message || String((e as NodeJS.ErrnoException).code ?? e.name));
    return this.scrub(String(e));
  }
}
