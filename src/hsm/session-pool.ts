// The sessions of one token, each owned by a session thread, and what each is doing; a session serves one call at a time.
import { SessionThread, SessionThreadLike } from './session-thread';

/**
 * closed: the thread has no session (new, or after close/re-initialization); opening: it is opening one;
 * idle: a session ready for a call;
 * busy: in a call within its deadline; stuck: in a call past its deadline; broken: the session failed.
 */
export type SessionState = 'closed' | 'opening' | 'idle' | 'busy' | 'stuck' | 'broken';

export interface PooledSession {
  readonly thread: SessionThreadLike;
  state: SessionState;
  /**
   * Signing may use it: set once the bring-up that opened it has logged in and proved the keys. A session opened
   * while the token's login was lost would otherwise sign before the login and fail (CKR_USER_NOT_LOGGED_IN).
   */
  released: boolean;
}

export interface SessionCounts {
  idle: number;
  inUse: number;
  /** Broken, or stuck in a call that outlived its deadline. */
  broken: number;
}

export class SessionPool {
  private sessions: PooledSession[] = [];

  constructor(
    readonly size: number,
    private readonly spawn: () => SessionThreadLike = () => new SessionThread(),
  ) {}

  /** An idle session for signing, now busy; undefined when none is idle. `admin`: also one not yet released. */
  take(admin = false): PooledSession | undefined {
    const s = this.sessions.find((x) => x.state === 'idle' && (admin || x.released));
    if (s) s.state = 'busy';
    return s;
  }

  /** Ends a call: the session's state follows its outcome. A session dropped by removal stays dropped. */
  give(s: PooledSession, outcome: 'ok' | 'broken' | 'closed'): void {
    if (!this.sessions.includes(s)) return;
    s.state = outcome === 'ok' ? 'idle' : outcome;
    if (s.state !== 'idle') s.released = false;
    // A stuck call that came back late may leave more working sessions than wanted: end the spare thread.
    if (s.state === 'idle' && this.working() > this.size) this.remove(s);
  }

  mark(s: PooledSession, state: 'broken' | 'stuck' | 'busy'): void {
    if (this.sessions.includes(s)) s.state = state;
  }

  /** Sessions in `state` that signing may use. */
  count(state: SessionState): number {
    let n = 0;
    for (const s of this.sessions) if (s.state === state && s.released) n++;
    return n;
  }

  /** After a bring-up logged in and proved the keys: every open session may sign. */
  release(): void {
    for (const s of this.sessions) if (s.state === 'idle' || s.state === 'busy') s.released = true;
  }

  inState(state: SessionState): PooledSession[] {
    return this.sessions.filter((s) => s.state === state);
  }

  /**
   * A thread without a session, now opening, to open one on: a closed one, else a new thread while the pool holds
   * fewer than twice its size (stuck threads count against that cap); undefined when neither.
   */
  takeClosed(): PooledSession | undefined {
    let s = this.sessions.find((x) => x.state === 'closed');
    if (!s && this.sessions.length < 2 * this.size) {
      s = { thread: this.spawn(), state: 'closed', released: false };
      this.sessions.push(s);
    }
    if (s) s.state = 'opening';
    return s;
  }

  /** Sessions to open to get back to `size` working ones. */
  missing(): number {
    return Math.max(0, this.size - this.working());
  }

  /** After a module re-initialization: every session is gone; threads not in a call can open new ones. */
  forgetSessions(): void {
    for (const s of this.sessions) {
      if (s.state === 'idle' || s.state === 'broken') s.state = 'closed';
      s.released = false;
    }
  }

  /** Every thread that is not in a call, for closing at shutdown; the pool is empty afterwards. */
  drain(): { quiet: PooledSession[]; inCall: PooledSession[] } {
    const all = this.sessions;
    this.sessions = [];
    return { quiet: all.filter((s) => !s.thread.inCall), inCall: all.filter((s) => s.thread.inCall) };
  }

  /** Drops a session whose thread is gone (it exited) or is not wanted, ending the thread. */
  remove(s: PooledSession): void {
    this.sessions = this.sessions.filter((x) => x !== s);
    void s.thread.terminate();
  }

  counts(): SessionCounts {
    const c = { idle: 0, inUse: 0, broken: 0 };
    for (const s of this.sessions) {
      if (s.state === 'idle' && s.released) c.idle++;
      else if (s.state === 'busy' && s.released) c.inUse++;
      else if (s.state === 'stuck' || s.state === 'broken') c.broken++;
    }
    return c;
  }

  private working(): number {
    return this.sessions.filter((s) => s.state === 'idle' || s.state === 'busy').length;
  }
}
