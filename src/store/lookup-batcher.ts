// Lookups that arrive together are answered by one query: those of one event-loop turn, and those that arrive
// while the queries allowed at once are in flight, go out as one query for all of them.
//
// Freshness: a lookup only ever goes out in a query sent after it arrived; it never joins one already sent. A
// database statement reads a snapshot taken when it starts (PostgreSQL, READ COMMITTED), so every write committed
// before the lookup arrived is in its answer, as it would be for a query of its own.

export interface LookupBatchOptions {
  /** Queries in flight at once; lookups arriving meanwhile wait and go out together when one returns. */
  maxInFlight: number;
  /** Most distinct keys per query. */
  maxBatch: number;
  /** Runs `flush` once the current event-loop turn's lookups have arrived (setImmediate; tests: by hand). */
  schedule?: (flush: () => void) => void;
}

interface Waiting<K, V> {
  key: K;
  resolve(v: V): void;
  reject(e: unknown): void;
}

/**
 * `query(keys)` answers distinct keys (by `id`) with one value each, in their order; when it fails, every lookup of
 * that query fails with the same error.
 */
export class LookupBatcher<K, V> {
  private queue: Waiting<K, V>[] = [];
  private inFlight = 0;
  private scheduled = false;
  private readonly schedule: (flush: () => void) => void;
  /** Queries sent and the distinct keys they carried (tests). */
  readonly stats = { queries: 0, keys: 0 };

  constructor(
    private readonly query: (keys: K[]) => Promise<V[]>,
    private readonly id: (key: K) => string,
    private readonly o: LookupBatchOptions,
  ) {
    this.schedule = o.schedule ?? ((flush) => setImmediate(flush));
  }

  lookup(key: K): Promise<V> {
    return new Promise<V>((resolve, reject) => {
      this.queue.push({ key, resolve, reject });
      if (!this.scheduled && this.inFlight < this.o.maxInFlight) {
        this.scheduled = true;
        this.schedule(this.flush);
      }
    });
  }

  /** Lookups waiting to be sent (tests). */
  get waiting(): number {
    return this.queue.length;
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    while (this.queue.length > 0 && this.inFlight < this.o.maxInFlight) this.send(this.take());
  };

  /** The next lookups, at most maxBatch distinct keys, in arrival order. */
  private take(): Map<string, Waiting<K, V>[]> {
    const batch = new Map<string, Waiting<K, V>[]>();
    let n = 0;
    for (; n < this.queue.length; n++) {
      const w = this.queue[n]!;
      const k = this.id(w.key);
      const same = batch.get(k);
      if (same) same.push(w);
      else if (batch.size === this.o.maxBatch) break;
      else batch.set(k, [w]);
    }
    this.queue = n === this.queue.length ? [] : this.queue.slice(n);
    return batch;
  }

  private send(batch: Map<string, Waiting<K, V>[]>): void {
    this.inFlight++;
    this.stats.queries++;
    this.stats.keys += batch.size;
    const groups = [...batch.values()];
    let sent: Promise<V[]>;
    try {
      sent = this.query(groups.map((g) => g[0]!.key));
    } catch (e) {
      sent = Promise.reject(e);
    }
    sent.then(
      (values) => {
        groups.forEach((g, i) => {
          for (const w of g) w.resolve(values[i]!);
        });
      },
      (e: unknown) => {
        for (const g of groups) for (const w of g) w.reject(e);
      },
    ).finally(() => {
      this.inFlight--;
      // What arrived meanwhile goes out now, in a query sent after it arrived.
      this.flush();
    });
  }
}
