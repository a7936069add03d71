// Requests being answered, and the one timer that answers tryLater for any still unanswered at its deadline
// (cheaper than a timer per request on the hot path).
import type { ServerResponse } from 'node:http';
import type { Clock, Timer } from '../clock';

interface Entry {
  res: ServerResponse;
  started: number;
  method: string;
}

export class InflightRequests {
  private readonly entries = new Set<Entry>();
  private timer: Timer | undefined;
  private closed = false;

  constructor(
    private readonly clock: Clock,
    private readonly timeoutMs: number,
    private readonly onTimeout: (res: ServerResponse, started: number, method: string) => void,
  ) {}

  add(res: ServerResponse, started: number, method: string): Entry {
    const e = { res, started, method };
    this.entries.add(e);
    this.arm();
    return e;
  }

  /** False when the deadline already answered this request. */
  remove(e: Entry): boolean {
    return this.entries.delete(e);
  }

  get size(): number {
    return this.entries.size;
  }

  close(): void {
    this.closed = true;
    this.timer?.cancel();
  }

  private arm(): void {
    if (this.timer || this.closed) return;
    // A tenth of the timeout: a request is answered at most 10% after its deadline.
    this.timer = this.clock.setTimer(() => this.sweep(), Math.max(10, this.timeoutMs / 10));
  }

  private sweep(): void {
    this.timer = undefined;
    const now = this.clock.monotonicMs();
    for (const e of this.entries) {
      if (now - e.started >= this.timeoutMs) {
        this.entries.delete(e);
        this.onTimeout(e.res, e.started, e.method);
      }
    }
    if (this.entries.size > 0) this.arm();
  }
}
