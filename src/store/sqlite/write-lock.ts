// SQLite's one write lock, taken up front and waited for on a timer: writers take turns instead of failing.
import type Database from 'better-sqlite3';
import type { Clock } from '../../clock';

export interface WriteLockOptions {
  /** How long a write waits for another connection's write to finish before it fails (store.writeTimeout). */
  timeoutMs: number;
}

/** A write waited longer than store.writeTimeout for the lock: another process held it all that time. */
export class StoreBusyError extends Error {
  override name = 'StoreBusyError';
}

const DEFAULTS: WriteLockOptions = { timeoutMs: 30_000 };
// Between attempts: short at first (a pre-signer batch commits in milliseconds), never long.
const FIRST_RETRY_MS = 1;
const MAX_RETRY_MS = 25;

/**
 * Every write transaction goes through here. It begins IMMEDIATE: a deferred transaction that reads first and
 * writes later fails at once with "database is locked" when another writer got there first (SQLite cannot wait
 * there without risking deadlock). While another connection holds the lock, the wait happens on a timer, not in
 * SQLite's busy handler: better-sqlite3 is synchronous, so a busy wait inside SQLite would stop the event loop,
 * and every answer, for as long as another process writes.
 */
export class WriteLock {
  private readonly o: WriteLockOptions;

  constructor(
    private readonly db: Database.Database,
    private readonly clock: Clock,
    o: Partial<WriteLockOptions> = {},
  ) {
    this.o = { ...DEFAULTS, ...o };
  }

  /** Runs `fn` in one immediate transaction once the lock is had; rethrows what fn throws (rolled back). */
  async write<T>(fn: () => T): Promise<T> {
    const started = this.clock.monotonicMs();
    let delay = FIRST_RETRY_MS;
    for (;;) {
      const attempt = this.tryWrite(fn);
      if (attempt.done) return attempt.value;
      const waited = this.clock.monotonicMs() - started;
      if (waited >= this.o.timeoutMs) {
        throw new StoreBusyError(`the SQLite store stayed locked by another writer for ${Math.round(waited)} ms (store.writeTimeout)`);
      }
      await new Promise<void>((resolve) => this.clock.setTimer(resolve, Math.min(delay, this.o.timeoutMs - waited)));
      delay = Math.min(delay * 2, MAX_RETRY_MS);
    }
  }

  private tryWrite<T>(fn: () => T): { done: true; value: T } | { done: false } {
    const busyTimeout = this.db.pragma('busy_timeout', { simple: true }) as number;
    this.db.pragma('busy_timeout = 0');
    try {
      return { done: true, value: this.db.transaction(fn).immediate() };
    } catch (e) {
      // Only a BEGIN that found the lock taken is retried; anything fn threw was rolled back and goes up.
      if (isBusy(e) && !this.db.inTransaction) return { done: false };
      throw e;
    } finally {
      this.db.pragma(`busy_timeout = ${busyTimeout}`);
    }
  }
}

function isBusy(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}
