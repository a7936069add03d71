// Time source passed to every component: wall time, monotonic time and timers, so tests can move time by hand.

export interface Timer {
  cancel(): void;
}

export interface Clock {
  now(): Date;
  /** Milliseconds on a monotonic scale, for deadlines and rates (never jumps with the wall clock). */
  monotonicMs(): number;
  setTimer(fn: () => void, ms: number): Timer;
}

export const systemClock: Clock = {
  now: () => new Date(),
  monotonicMs: () => performance.now(),
  setTimer(fn, ms) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};

/** A clock that only moves when told to; timers fire in order as it advances. For tests. */
export class FakeClock implements Clock {
  private wallMs: number;
  private mono = 0;
  private timers: { at: number; fn: () => void; seq: number }[] = [];
  private seq = 0;

  constructor(start: Date | string = '2026-01-01T00:00:00Z') {
    this.wallMs = new Date(start).getTime();
  }
  now(): Date {
    return new Date(this.wallMs);
  }
  monotonicMs(): number {
    return this.mono;
  }
  setTimer(fn: () => void, ms: number): Timer {
    const entry = { at: this.mono + Math.max(0, ms), fn, seq: this.seq++ };
    this.timers.push(entry);
    return { cancel: () => (this.timers = this.timers.filter((t) => t !== entry)) };
  }
  /** Moves both clocks forward, firing due timers (including ones they schedule) in time order. */
  advance(ms: number): void {
    const end = this.mono + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      // A timer overdue after jump() fires now, late, as a paused process's timers do.
      const at = Math.max(due.at, this.mono);
      this.wallMs += at - this.mono;
      this.mono = at;
      due.fn();
    }
    this.wallMs += end - this.mono;
    this.mono = end;
  }
  /**
   * Moves both clocks forward without firing timers: a process paused (SIGSTOP, a long GC) that has not run since.
   * The timers that fell due meanwhile fire, late and in order, at the next advance().
   */
  jump(ms: number): void {
    this.wallMs += ms;
    this.mono += ms;
  }
  set(at: Date | string): void {
    this.wallMs = new Date(at).getTime();
  }
}
