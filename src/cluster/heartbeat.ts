// This responder process's heartbeat row (store/responder-store.ts): written every cluster.heartbeat and, debounced,
// right after its change follower applied changes, so a publisher waiting for every responder (`?wait=all`) learns
// at once; deleted at a clean shutdown. A row not written for the liveness window counts as gone: until a write
// succeeds again (held()), and once more after it, answers from memory wait for a fresh read of the change log, so
// that a responder the others stopped waiting for cannot answer from a cache that missed a change. README
// "Consistent revocation across responders".
import type { Logger } from 'pino';
import type { Clock, Timer } from '../clock';
import type { ResponderStore } from '../store/responder-store';
import { StoreUnavailableError } from '../store/store-unavailable';

/** Changes applied in a burst (an import) are recorded by one write. */
const DEBOUNCE_MS = 10;
/** While changes keep coming, a write at most this often (a waiting publisher reads the rows every 50 ms). */
const APPLIED_SPACING_MS = 50;
/** Rows of responders not heard of for this long are removed (by any responder, now and then). */
export const PRUNE_AFTER_MS = 3_600_000;
const PRUNE_EVERY_MS = 60_000;
/** held() starts this much before the liveness window is over: the store's and this host's clocks run at slightly different rates. */
const HOLD_MARGIN_MS = 100;
/** The longest a stop waits for the store to remove the row. */
const STOP_WAIT_MS = 2_000;

/**
 * How long after its last heartbeat a responder still counts as live (waited for by `?wait=all`, listed live): two
 * heartbeats, so one late write is not a death, plus store.maxStaleness, the longest its change follower may go
 * unproved before it stops answering from memory by itself.
 */
export function livenessWindowMs(heartbeatMs: number, maxStalenessMs: number): number {
  return 2 * heartbeatMs + maxStalenessMs;
}

export interface HeartbeatIdentity {
  id: string;
  host: string;
  pid: number;
  worker: number;
}

/** What the heartbeat tells the follower in force (a reload builds a new one). */
export interface HeartbeatFollower {
  readonly seq: number;
  distrust(): void;
}

export interface HeartbeatOptions {
  store: Pick<ResponderStore, 'beat' | 'forgetResponder' | 'pruneResponders'>;
  clock: Clock;
  identity: HeartbeatIdentity;
  everyMs: number;
  livenessMs: number;
  follower: () => HeartbeatFollower;
  /** What this process's /readyz says: no problem. Asked once per heartbeat, never waited for by a write. */
  ready: () => Promise<boolean>;
  log: Pick<Logger, 'warn' | 'info'>;
  /** Told each write's result (metrics). */
  wrote?: (ok: boolean) => void;
}

export class Heartbeat {
  private readonly startedAt: Date;
  /** Monotonic time the last write that succeeded was sent: its row is at least this recent. */
  private lastSentOk = -Infinity;
  /** Monotonic time the last write for applied changes was asked for. */
  private lastApplied = -Infinity;
  private inFlight: Promise<void> | undefined;
  private again = false;
  private soon: Timer | undefined;
  private tick: Timer | undefined;
  private lastPrune = -Infinity;
  private isReady = false;
  private failing = false;
  private stopped = false;

  constructor(private readonly o: HeartbeatOptions) {
    this.startedAt = o.clock.now();
  }

  /** Writes the first row (before the process answers anything: a responder without one is not waited for). */
  async start(): Promise<void> {
    await this.refreshReady();
    await this.beat();
    this.schedule();
  }

  /** The follower applied changes: record its position soon. */
  applied(): void {
    if (this.stopped || this.soon) return;
    const spaced = this.lastApplied + APPLIED_SPACING_MS - this.o.clock.monotonicMs();
    this.soon = this.o.clock.setTimer(() => {
      this.soon = undefined;
      this.lastApplied = this.o.clock.monotonicMs();
      void this.beat();
    }, Math.max(DEBOUNCE_MS, spaced));
  }

  /**
   * True once no write has succeeded for the liveness window: others may count this responder as gone and not wait
   * for it. Decided at each call from the monotonic clock, so a process that was stopped (SIGSTOP) and resumes
   * knows it before it answers anything.
   */
  held(): boolean {
    return this.o.clock.monotonicMs() - this.lastSentOk > this.o.livenessMs - HOLD_MARGIN_MS;
  }

  /** Milliseconds since the last write that succeeded was sent (metrics). */
  sinceLastMs(): number {
    return this.o.clock.monotonicMs() - this.lastSentOk;
  }

  /**
   * Stops writing and removes the row: call once the process answers nothing any more. A store that does not answer
   * within STOP_WAIT_MS does not hold the shutdown up: the row goes stale, then is pruned.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.soon?.cancel();
    this.tick?.cancel();
    const forget = (async () => {
      await this.inFlight;
      await this.o.store.forgetResponder(this.o.identity.id);
    })().then(
      () => undefined,
      (e: Error) => e.message,
    );
    let timer: Timer | undefined;
    const late = new Promise<string>((r) => (timer = this.o.clock.setTimer(() => r(`no answer within ${STOP_WAIT_MS} ms`), STOP_WAIT_MS)));
    const problem = await Promise.race([forget, late]);
    timer?.cancel();
    if (problem) this.o.log.warn({ err: problem }, 'could not remove this responder\'s heartbeat row');
  }

  private schedule(): void {
    if (this.stopped) return;
    this.tick = this.o.clock.setTimer(() => {
      void this.refreshReady();
      void this.beat().finally(() => this.schedule());
      void this.prune();
    }, this.o.everyMs);
  }

  /** One write at a time; a call during a write makes another follow it (the position may have moved since it was read). */
  private beat(): Promise<void> {
    if (this.inFlight) {
      this.again = true;
      return this.inFlight;
    }
    this.inFlight = (async () => {
      do {
        this.again = false;
        await this.writeOnce();
      } while (this.again && !this.stopped);
    })().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  private async writeOnce(): Promise<void> {
    const { identity } = this.o;
    const sentAt = this.o.clock.monotonicMs();
    try {
      await this.o.store.beat({ ...identity, startedAt: this.startedAt, appliedSeq: this.o.follower().seq, ready: this.isReady });
    } catch (e) {
      this.o.wrote?.(false);
      // A store outage is logged once, by the store's guard; anything else is this row's own trouble.
      if (!this.failing && !(e instanceof StoreUnavailableError)) this.o.log.warn({ err: (e as Error).message }, 'could not record this responder\'s heartbeat; retried at the next one');
      this.failing = true;
      return;
    }
    this.o.wrote?.(true);
    if (this.failing) this.o.log.info('heartbeat recorded again');
    this.failing = false;
    // Others may have counted this responder as gone meanwhile: what its memory holds must be proved current anew.
    if (this.held()) this.o.follower().distrust();
    this.lastSentOk = Math.max(this.lastSentOk, sentAt);
  }

  private async refreshReady(): Promise<void> {
    this.isReady = await this.o.ready().catch(() => false);
  }

  private async prune(): Promise<void> {
    const now = this.o.clock.monotonicMs();
    if (now - this.lastPrune < PRUNE_EVERY_MS) return;
    this.lastPrune = now;
    await this.o.store.pruneResponders(PRUNE_AFTER_MS).catch(() => undefined);
  }
}
