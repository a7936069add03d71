// Follows status changes recorded by any process (CLI revoke/import, CRL downloads, the publishing API, other
// responders): drops cached answers for the certificate, records the change for in-flight work to check against, and
// where the CA asks for it, produces new responses upon issuance/revocation. Knows, at every moment, whether it may
// be behind: then nothing is answered from memory until it has caught up.
import type { Logger } from 'pino';
import type { Clock, Timer } from '../clock';
import type { LeaseFence } from '../store/lease-store';
import type { StatusChange, Store } from '../store/response-store';
import { StoreUnavailableError } from '../store/store-unavailable';
import { AppliedChanges, ChangeSignal, Fill } from './applied-changes';
import type { Authority } from './authority';
import type { IssuerRevocations } from './issuer-revocations';
import type { ResponseProducer } from './response-producer';
import { fromStored } from './stored-responses';
import type { OcspResponse } from './source';

const PAGE = 1000;
/** Productions waiting at most; beyond that (a bulk import) the pre-signer's next run covers the rest. */
const MAX_QUEUED = 10_000;
const CONCURRENCY = 8;
const RETRY_FIRST_MS = 100;
// Capped at a second: after an outage a responder is current within about a second of the store's return (on
// PostgreSQL the poll below comes sooner still), and a store that is down refuses at once, so retries cost nothing.
const RETRY_MAX_MS = 1_000;

/** A response to produce upon a change, and the lease hold it is produced under (none: unfenced). */
interface Production {
  a: Authority;
  serial: string;
  hold?: ProductionHold;
}

/** What the follower keeps current: the memory cache. */
export interface ChangeTarget {
  invalidate(ca: string, serial: string): void;
  clear(): void;
  /** Caches a produced response unless `outdated` says a change overtook it. */
  set(ca: string, serial: string, hash: string, r: OcspResponse, fill: Fill): void;
}

/** Told what the follower does (metrics). */
export interface FollowerObserver {
  /** A change was applied, `lagMs` after it was recorded. */
  applied(lagMs: number): void;
  /** Applying failed; it is retried. */
  failed(): void;
  /** A production upon a change failed (the pre-signer's next run or store-on-demand covers the certificate). */
  productionFailed(): void;
}

/** The lease hold production upon change runs under: its writes carry the fence, and stop when the signal aborts. */
export interface ProductionHold {
  fence: LeaseFence;
  signal: AbortSignal;
}

export interface FollowerOptions {
  /**
   * For a feed that pushes changes (PostgreSQL): answers from memory stop when the feed has not been proved current
   * for this long (store.maxStaleness). The head of the change log is read every quarter of it, at most 250 ms.
   */
  maxStalenessMs: number;
  /**
   * With several responders, production upon change is work done once per cluster: only while this returns a hold
   * (the lease), under it. Unset: always, unfenced (one process, tests).
   */
  hold?: () => ProductionHold | undefined;
  /**
   * While true, every answer from memory waits for a drain begun after it was asked, as if every request found the
   * feed stale (this responder's heartbeat is overdue: a publisher may have stopped waiting for it, README
   * "Consistent revocation across responders").
   */
  held?: () => boolean;
  /** Told the position after a drain moved it (the heartbeat records it at once). */
  advanced?: (seq: number) => void;
}

export class ChangeFollower implements ChangeSignal {
  private changes: AppliedChanges = new AppliedChanges(0);
  private applying: Promise<void> | undefined;
  /** The drain after the one under way, for callers that came while it was under way. */
  private following: Promise<void> | undefined;
  /** Something may be unapplied: set by the feed, cleared by a drain that started after it. */
  private dirty = 0;
  /** Monotonic time at which the applied position was last proved to be the log's head. */
  private currentAt = -Infinity;
  private readonly queue: Production[] = [];
  private running = 0;
  private stopWatching: (() => void) | undefined;
  private poller: Timer | undefined;
  private retry: Timer | undefined;
  private retryMs = RETRY_FIRST_MS;
  /** Failed attempts since the last success: only the first of a run is logged, and then its end. */
  private failures = 0;
  private failureLogged = false;
  private closed = false;
  private targets: ChangeTarget[] = [];
  private checkedThisTurn = false;
  private readonly endTurn = () => (this.checkedThisTurn = false);

  constructor(
    private readonly store: Store,
    private readonly authorities: ReadonlyMap<string, Authority>,
    private readonly producer: ResponseProducer,
    private readonly clock: Clock,
    private readonly log: Pick<Logger, 'warn' | 'info'>,
    private readonly o: FollowerOptions,
    private readonly issuerRevocations?: IssuerRevocations,
    private readonly observer?: FollowerObserver,
  ) {}

  /** Set once wiring is done. */
  keep(target: ChangeTarget): void {
    this.targets.push(target);
  }

  /** Starts from the log's head: what was recorded before is read directly from the store by whoever needs it. */
  async start(): Promise<void> {
    const t0 = this.clock.monotonicMs();
    this.store.mayHaveChanged(); // the baseline: commits after this are seen
    this.changes = new AppliedChanges(await this.store.lastChange());
    // After the position is fixed: a CA certificate revoked from here on is also seen as a change.
    await this.issuerRevocations?.refresh(this.store);
    this.currentAt = t0;
    this.stopWatching = this.store.watch(() => this.markDirty());
    if (!this.store.exact) this.poll();
  }

  pending(): boolean {
    if (this.closed) return true;
    if (this.applying || this.dirty > 0 || this.o.held?.()) return true;
    if (!this.store.exact) {
      if (this.clock.monotonicMs() - this.currentAt <= this.o.maxStalenessMs) return false;
      this.applyInBackground();
      return true;
    }
    // Asking SQLite costs two file-lock system calls (data_version), so once per event-loop turn: a change
    // committed during a turn is seen by the first hit of the next one.
    if (this.checkedThisTurn) return false;
    if (this.store.mayHaveChanged()) {
      this.markDirty();
      return true;
    }
    this.checkedThisTurn = true;
    setImmediate(this.endTurn);
    return false;
  }

  /**
   * Resolves once every change committed before the call is applied. A drain already under way may have read the
   * log's head before the caller's change (SQLite does not tell a connection of its own writes; a NOTIFY may come
   * late): the caller waits for the next drain, which every caller that comes meanwhile shares.
   */
  apply(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the change follower is closed'));
    if (!this.applying) return this.applyNow();
    const next = () => {
      this.following = undefined;
      return this.closed ? Promise.reject(new Error('the change follower is closed')) : this.applyNow();
    };
    this.following ??= this.applying.then(next, next);
    return this.following;
  }

  /** Forget that the feed was proved current: answers from memory wait for a drain begun after this. */
  distrust(): void {
    this.currentAt = -Infinity;
    this.markDirty();
  }

  /** Starts a drain, or joins the one under way (the feed's own triggers: a notification, the poll, a retry). */
  private applyNow(): Promise<void> {
    this.applying ??= this.drain().finally(() => (this.applying = undefined));
    return this.applying;
  }

  begin(): Fill {
    return this.changes.begin();
  }

  outdated(ca: string, serial: string, version: number, fill: Fill): boolean {
    return this.changes.outdated(ca, serial, version, fill);
  }

  /** The position applied (tests, metrics). */
  get seq(): number {
    return this.changes.seq;
  }

  /**
   * True when the applied position was proved to be the log's head by a read that began at or after `sinceMs`
   * (monotonic): after a store outage, nothing recorded while this responder could not read the log is unapplied.
   */
  currentSince(sinceMs: number): boolean {
    return !this.closed && this.currentAt >= sinceMs;
  }

  /** Milliseconds since the feed was last proved current; 0 while a change-exact feed has nothing pending. */
  lagMs(): number {
    if (this.store.exact && !this.applying && this.dirty === 0) return 0;
    return Math.max(0, this.clock.monotonicMs() - this.currentAt);
  }

  close(): void {
    this.closed = true;
    this.stopWatching?.();
    this.poller?.cancel();
    this.retry?.cancel();
    this.queue.length = 0;
  }

  private markDirty(): void {
    this.dirty++;
    this.applyInBackground();
  }

  private applyInBackground(): void {
    if (this.closed) return;
    this.applyNow().catch(() => undefined); // drain() logs and schedules the retry
  }

  /** Reads the log's head every quarter of maxStaleness: a lost or silent listener costs at most that. */
  private poll(): void {
    const every = Math.min(250, Math.max(10, this.o.maxStalenessMs / 4));
    const tick = () => {
      if (this.closed) return;
      this.applyNow()
        .catch(() => undefined)
        .finally(() => {
          if (!this.closed) this.poller = this.clock.setTimer(tick, every);
        });
    };
    this.poller = this.clock.setTimer(tick, every);
  }

  /** Applies every change up to the head read at its start; the position moves only past applied changes. */
  private async drain(): Promise<void> {
    const from = this.changes.seq;
    try {
      await this.drainRounds();
    } finally {
      if (this.changes.seq !== from) this.o.advanced?.(this.changes.seq);
    }
  }

  private async drainRounds(): Promise<void> {
    for (;;) {
      const dirtyAtStart = this.dirty;
      const t0 = this.clock.monotonicMs();
      try {
        if (this.store.exact) this.store.mayHaveChanged(); // re-arm: commits from here on are seen
        const head = await this.store.lastChange();
        while (this.changes.seq < head && !this.closed) {
          const page = await this.store.changesSince(this.changes.seq, PAGE);
          if (page.length === 0) {
            // The records between were pruned before this process read them: anything may have changed.
            this.lostChanges(head);
            break;
          }
          for (const c of page) await this.applyOne(c);
        }
      } catch (e) {
        this.observer?.failed();
        // Once per run of failures; a store outage is logged by the store's guard (store-outage.ts) already.
        if (this.failures++ === 0 && !(e instanceof StoreUnavailableError)) {
          this.failureLogged = true;
          this.log.warn({ err: (e as Error).message, retryInMs: this.retryMs }, 'could not apply status changes; answers from memory wait until they are');
        }
        this.scheduleRetry();
        throw e;
      }
      if (this.failureLogged) this.log.info({ failedAttempts: this.failures }, 'status changes applied again');
      this.failures = 0;
      this.failureLogged = false;
      this.retryMs = RETRY_FIRST_MS;
      this.currentAt = t0;
      if (this.dirty === dirtyAtStart) {
        this.dirty = 0;
        return;
      }
    }
  }

  private scheduleRetry(): void {
    if (this.closed) return;
    this.retry?.cancel();
    this.retry = this.clock.setTimer(() => this.applyInBackground(), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }

  private async applyOne(c: StatusChange): Promise<void> {
    for (const t of this.targets) t.invalidate(c.ca, c.serial);
    // A CA certificate we answer for changed status: every answer for what it issued may change.
    if (this.issuerRevocations?.concerns(c.ca, c.serial) && (await this.issuerRevocations.refresh(this.store))) {
      for (const t of this.targets) t.clear();
      this.log.info({ ca: c.ca, serial: c.serial }, 'a CA certificate we answer for changed status: cache cleared');
    }
    this.changes.record(c.ca, c.serial, c.seq);
    this.observer?.applied(Math.max(0, this.clock.now().getTime() - c.at.getTime()));
    const a = this.authorities.get(c.ca);
    const p = a?.preProduction;
    if (!a || !p?.enabled || !((c.kind === 'revoked' && p.onRevocation) || (c.kind === 'issued' && p.onIssuance))) return;
    // Not the lease holder: the holder produces it (or, if it dies first, the next holder's pre-signer run does:
    // a revocation deleted the certificate's responses, so it is due).
    if (!this.o.hold) return this.enqueue({ a, serial: c.serial });
    const hold = this.o.hold();
    if (hold) this.enqueue({ a, serial: c.serial, hold });
  }

  private lostChanges(head: number): void {
    this.log.warn({ from: this.changes.seq, to: head }, 'status change records were pruned before they were applied: cache cleared');
    for (const t of this.targets) t.clear();
    this.changes.skipTo(head);
  }

  private enqueue(job: Production): void {
    if (this.queue.length >= MAX_QUEUED) return;
    this.queue.push(job);
    while (this.running < CONCURRENCY && this.queue.length > 0) {
      const next = this.queue.shift()!;
      this.running++;
      this.produce(next)
        .catch((e: Error) => {
          this.observer?.productionFailed();
          this.log.warn({ ca: next.a.name, serial: next.serial, err: e.message }, 'could not produce a response upon a status change');
        })
        .finally(() => {
          this.running--;
          const queued = this.queue.shift();
          if (queued && !this.closed) this.enqueue(queued);
        });
    }
  }

  private async produce({ a, serial, hold }: Production): Promise<void> {
    const fill = this.begin();
    try {
      const rec = await this.store.getCertificate(a.name, serial);
      // The lease lost meanwhile: left to the new holder.
      if (!rec || this.closed || hold?.signal.aborted) return;
      const final = this.producer.inFinalWindow(a);
      const fresh = await Promise.all(a.preProduction.hashes.map((h) => this.producer.produce(a, rec, h, { lane: 'presign' }, final)));
      // Stored only if the status is still the one signed; cached only if no change was applied since.
      const put = await this.producer.store(fresh, hold?.fence);
      if (put.stale > 0) return;
      for (const r of fresh) for (const t of this.targets) t.set(a.name, serial, r.hash, fromStored(r, a, 'live'), fill);
    } finally {
      fill.end();
    }
  }
}
