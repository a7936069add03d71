// Concurrent requests for the same answer share one piece of work, but never across a status change: a request
// that comes after a change was applied starts its own work instead of joining one begun before the change.
import type { ChangeSignal, Fill } from './applied-changes';

interface Flight<T> {
  promise: Promise<T>;
  fill: Fill | undefined;
}

export class Flights<T> {
  private readonly inflight = new Map<string, Flight<T>>();

  /** Without `changes` (nothing follows the feed), flights are joined whatever happened meanwhile. */
  constructor(private readonly changes: ChangeSignal | undefined) {}

  /** `certs`: the certificates the answer is about; a change to any of them ends sharing. */
  run(key: string, certs: readonly { ca: string; serial: string }[], work: () => Promise<T>): Promise<T> {
    const f = this.inflight.get(key);
    if (f && this.joinable(f, certs)) return f.promise;
    const fill = this.changes?.begin();
    const flight: Flight<T> = { promise: Promise.resolve(undefined as T), fill };
    flight.promise = work().finally(() => {
      fill?.end();
      if (this.inflight.get(key) === flight) this.inflight.delete(key);
    });
    this.inflight.set(key, flight);
    return flight.promise;
  }

  get size(): number {
    return this.inflight.size;
  }

  private joinable(f: Flight<T>, certs: readonly { ca: string; serial: string }[]): boolean {
    const c = this.changes;
    if (!c || !f.fill) return true;
    // Behind the feed: whatever the flight read may already be overtaken.
    if (c.pending()) return false;
    return !certs.some((x) => c.outdated(x.ca, x.serial, f.fill!.mark, f.fill!));
  }
}
