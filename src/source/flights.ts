// Concurrent requests for the same answer share one piece of work, but never across a status change: a request
// that comes after a change was applied starts its own work instead of joining one begun before the change. Nor
// across clients when the signing limiter refuses the request whose work it was: that refusal is its client's.
import { LimiterRejectedError } from '../signing/signing-limiter';
import type { ChangeSignal, Fill } from './applied-changes';
import type { RequestContext } from './source';

interface Flight<T> {
  promise: Promise<T>;
  fill: Fill | undefined;
  /** The request whose work it is: the limiter judged its client and deadline. */
  ctx: RequestContext;
}

export class Flights<T> {
  private readonly inflight = new Map<string, Flight<T>>();

  /** Without `changes` (nothing follows the feed), flights are joined whatever happened meanwhile. */
  constructor(private readonly changes: ChangeSignal | undefined) {}

  /**
   * `certs`: the certificates the answer is about; a change to any of them ends sharing. `work` is this request's
   * own (its `ctx`): run when it leads, or when the flight it joined was refused for another client.
   */
  run(key: string, certs: readonly { ca: string; serial: string }[], ctx: RequestContext, work: () => Promise<T>): Promise<T> {
    const f = this.inflight.get(key);
    if (f && this.joinable(f, certs)) {
      // A flooding client's share, or its request's deadline, is no answer for another client: that one asks
      // again under its own name (joining whoever asks first). Its own client's requests share the refusal.
      return f.promise.catch((e: unknown) => {
        if (!(e instanceof LimiterRejectedError) || clientOf(f.ctx) === clientOf(ctx)) throw e;
        return this.run(key, certs, ctx, work);
      });
    }
    const fill = this.changes?.begin();
    const flight: Flight<T> = { promise: Promise.resolve(undefined as T), fill, ctx };
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

/** Worked out only upon a refusal: the HTTP edge computes the client address lazily. */
function clientOf(ctx: RequestContext): string {
  return ctx.lane === 'live' ? (ctx.client ?? '') : '';
}
