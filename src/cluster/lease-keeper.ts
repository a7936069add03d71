// Keeps this responder's claim on a lease in the shared store: the work done once per cluster (schedules, production
// upon change) runs while it is held. Claims every third of the lease, renews while held, and ends a hold at a local
// deadline even when the store cannot be reached, before any other responder can take the lease over.
import type { Logger } from 'pino';
import type { Clock, Timer } from '../clock';
import type { Lease, LeaseFence, LeaseStore } from '../store/lease-store';
import { StoreUnavailableError } from '../store/store-unavailable';

/** One continuous hold of the lease: writes made under it carry its fence; its signal aborts when it ends. */
export interface LeaseHold {
  fence: LeaseFence;
  signal: AbortSignal;
}

/** Told of each hold; `gainedNow` is false for a listener that subscribed while the hold was already running. */
export type HoldListener = (hold: LeaseHold, gainedNow: boolean) => void;

/** Told whether the lease is held (metrics). */
export interface LeaseObserver {
  held(name: string, held: boolean): void;
}

export interface LeaseKeeperOptions {
  name: string;
  /** This responder's id (cluster/responder-id.ts). */
  holder: string;
  /** cluster.lease: how long a hold lasts without renewal. */
  leaseMs: number;
}

/**
 * The share of the lease a hold ends before its expiry in the store. It covers the clock skew between responders
 * (another one sees the expiry by its own clock) and the moment between the deadline and work noticing it; what
 * still reaches the store after that is stopped by the fence.
 */
export const LEASE_MARGIN = 0.2;

interface Held {
  hold: LeaseHold;
  controller: AbortController;
  deadline?: Timer;
}

export class LeaseKeeper {
  private held: Held | undefined;
  /** The highest epoch whose hold ended here: never resumed, even if a slow renewal of it succeeds afterwards. */
  private lastEnded = 0;
  private readonly listeners = new Set<HoldListener>();
  private timer: Timer | undefined;
  private attempt: Promise<void> | undefined;
  private closed = false;
  private otherHolder: string | undefined;
  private unreachable = false;

  constructor(
    private readonly store: LeaseStore,
    private readonly clock: Clock,
    private readonly o: LeaseKeeperOptions,
    private readonly log: Pick<Logger, 'info' | 'warn'>,
    private readonly observer?: LeaseObserver,
  ) {
    observer?.held(o.name, false);
  }

  /** Starts claiming (at once, then every third of the lease); resolves when the first attempt has settled. */
  start(): Promise<void> {
    return this.tick();
  }

  /** The hold in force, if any. */
  current(): LeaseHold | undefined {
    return this.held?.hold;
  }

  /** Calls `listener` for every hold from now on, and at once for the hold in force; returns the unsubscribe. */
  subscribe(listener: HoldListener): () => void {
    this.listeners.add(listener);
    if (this.held) this.tell(listener, this.held.hold, false);
    return () => this.listeners.delete(listener);
  }

  /**
   * Stops claiming and releases a hold in force, so the next responder takes over without waiting for expiry. Waits
   * at most one lease for a store that does not answer: the lease then expires by itself.
   */
  async close(): Promise<void> {
    this.closed = true;
    this.timer?.cancel();
    let timer: Timer | undefined;
    const gaveUp = new Promise<void>((resolve) => (timer = this.clock.setTimer(resolve, this.o.leaseMs)));
    const closing = (async () => {
      await this.attempt;
      const fence = this.held?.hold.fence;
      if (!fence) return;
      this.end('shutdown', true);
      await this.release(fence);
    })();
    await Promise.race([closing, gaveUp]);
    timer?.cancel();
    this.end('shutdown: the store did not answer');
  }

  private tick(): Promise<void> {
    const attempt = this.claim().finally(() => {
      this.attempt = undefined;
      if (!this.closed) this.timer = this.clock.setTimer(() => void this.tick(), this.o.leaseMs / 3);
    });
    this.attempt = attempt;
    return attempt;
  }

  private async claim(): Promise<void> {
    const started = this.clock.monotonicMs();
    const heldEpoch = this.held?.hold.fence.epoch;
    let lease: Lease;
    try {
      lease = await this.store.acquireLease({ name: this.o.name, holder: this.o.holder, ttlMs: this.o.leaseMs, ...(heldEpoch !== undefined ? { heldEpoch } : {}) });
    } catch (e) {
      // A store outage is logged once, by the store's guard; its consequence for the lease is the line of its loss.
      if (!this.unreachable && !(e instanceof StoreUnavailableError)) this.log.warn({ lease: this.o.name, err: (e as Error).message }, 'cannot claim the lease: the store does not answer; a hold in force ends at its local deadline');
      this.unreachable = true;
      return;
    }
    if (this.unreachable) this.log.info({ lease: this.o.name }, 'the store answers lease claims again');
    this.unreachable = false;
    if (lease.holder !== this.o.holder) return this.heldElsewhere(lease);
    this.otherHolder = undefined;
    // The store's expiry counts from after the attempt started; the local deadline from its start, short of the margin.
    const left = started + this.o.leaseMs * (1 - LEASE_MARGIN) - this.clock.monotonicMs();
    if (this.held && this.held.hold.fence.epoch === lease.epoch) {
      if (left > 0) this.arm(this.held, left);
      return;
    }
    if (this.held) this.end(`the store began a new hold (epoch ${lease.epoch})`);
    if (this.closed) return void (await this.release(fenceOf(lease)));
    // A hold that ended here stays ended; the next attempt claims a new one.
    if (lease.epoch <= this.lastEnded || left <= 0) return;
    this.begin(lease, left);
  }

  private heldElsewhere(lease: Lease): void {
    if (this.held) this.end(`taken over by ${lease.holder}`);
    if (this.otherHolder !== lease.holder) {
      this.log.info({ lease: this.o.name, holder: lease.holder, epoch: lease.epoch, expiresAt: lease.expiresAt.toISOString() }, 'lease held by another responder');
    }
    this.otherHolder = lease.holder;
  }

  private begin(lease: Lease, leftMs: number): void {
    const controller = new AbortController();
    const held: Held = { hold: { fence: fenceOf(lease), signal: controller.signal }, controller };
    this.arm(held, leftMs);
    this.held = held;
    this.observer?.held(this.o.name, true);
    this.log.info({ lease: this.o.name, holder: this.o.holder, epoch: lease.epoch }, 'lease gained: this responder runs the work done once per cluster');
    for (const l of [...this.listeners]) this.tell(l, held.hold, true);
  }

  private arm(held: Held, leftMs: number): void {
    held.deadline?.cancel();
    held.deadline = this.clock.setTimer(() => {
      if (this.held === held) this.end('not renewed by its local deadline (the store did not answer in time)');
    }, leftMs);
  }

  /** Ends the hold in force: its work stops (its signal), and whatever of it still reaches the store is fenced off. */
  private end(reason: string, released = false): void {
    const held = this.held;
    if (!held) return;
    this.held = undefined;
    held.deadline?.cancel();
    this.lastEnded = Math.max(this.lastEnded, held.hold.fence.epoch);
    held.controller.abort();
    this.observer?.held(this.o.name, false);
    const fields = { lease: this.o.name, epoch: held.hold.fence.epoch, reason };
    if (released) this.log.info(fields, 'lease released: another responder takes over the work done once per cluster');
    else this.log.warn(fields, 'lease lost: this responder stops the work done once per cluster');
  }

  private async release(fence: LeaseFence): Promise<void> {
    try {
      await this.store.releaseLease(fence);
    } catch (e) {
      this.log.warn({ lease: this.o.name, err: (e as Error).message }, 'could not release the lease: another responder takes over once it expires');
    }
  }

  private tell(listener: HoldListener, hold: LeaseHold, gainedNow: boolean): void {
    try {
      listener(hold, gainedNow);
    } catch (e) {
      this.log.warn({ lease: this.o.name, err: (e as Error).message }, 'could not start the work done under the lease');
    }
  }
}

function fenceOf(lease: Lease): LeaseFence {
  return { name: lease.name, holder: lease.holder, epoch: lease.epoch };
}
