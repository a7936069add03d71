// The PKCS#11 sessions of one token and what each is doing; a session serves one operation at a time.
import type { Handle } from './module';

export type SessionState = 'idle' | 'busy' | 'stuck' | 'broken';

export interface PooledSession {
  handle: Handle;
  state: SessionState;
}

export interface SessionCounts {
  idle: number;
  inUse: number;
  /** Broken, or stuck in a call that outlived its deadline. */
  broken: number;
}

export class SessionPool {
  private sessions: PooledSession[] = [];

  constructor(readonly size: number) {}

  add(handle: Handle): void {
    this.sessions.push({ handle, state: 'idle' });
  }

  /** An idle session, now busy; undefined when none is idle. */
  take(): PooledSession | undefined {
    const s = this.sessions.find((x) => x.state === 'idle');
    if (s) s.state = 'busy';
    return s;
  }

  /** Ends an operation. A session dropped by clear() while busy stays dropped. */
  give(s: PooledSession, outcome: 'ok' | 'broken'): void {
    if (!this.sessions.includes(s)) return;
    s.state = outcome === 'ok' ? 'idle' : 'broken';
  }

  markBroken(s: PooledSession): void {
    if (this.sessions.includes(s)) s.state = 'broken';
  }

  idleSessions(): PooledSession[] {
    return this.sessions.filter((s) => s.state === 'idle');
  }

  markStuck(s: PooledSession): void {
    if (this.sessions.includes(s)) s.state = 'stuck';
  }

  /** Removes broken sessions and returns their handles for closing. */
  takeBroken(): Handle[] {
    const broken = this.sessions.filter((s) => s.state === 'broken');
    this.sessions = this.sessions.filter((s) => s.state !== 'broken');
    return broken.map((s) => s.handle);
  }

  /** Sessions needed to get back to `size` working ones; stuck ones count against a cap of twice the size. */
  missing(): number {
    const working = this.sessions.filter((s) => s.state === 'idle' || s.state === 'busy').length;
    return Math.max(0, Math.min(this.size - working, 2 * this.size - this.sessions.length));
  }

  /** Forgets every session (after C_CloseAllSessions or a module re-initialization) and returns their handles. */
  clear(): Handle[] {
    const all = this.sessions.map((s) => s.handle);
    this.sessions = [];
    return all;
  }

  counts(): SessionCounts {
    const c = { idle: 0, inUse: 0, broken: 0 };
    for (const s of this.sessions) {
      if (s.state === 'idle') c.idle++;
      else if (s.state === 'busy') c.inUse++;
      else c.broken++;
    }
    return c;
  }
}
