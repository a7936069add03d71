// Requests waiting for a signing permit, one queue per client, served round-robin (RFC 9919 section 8.4): a client
// with many requests waiting takes turns with the others instead of going first.

export class ClientQueues<W extends { client: string }> {
  private readonly queues = new Map<string, W[]>();
  /** Clients in turn order: the one served last goes to the back. */
  private order: string[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  waitingFor(client: string): number {
    return this.queues.get(client)?.length ?? 0;
  }

  /** Each client's waiters, oldest first. */
  values(): IterableIterator<readonly W[]> {
    return this.queues.values();
  }

  push(w: W): void {
    let q = this.queues.get(w.client);
    if (!q) {
      this.queues.set(w.client, (q = []));
      this.order.push(w.client);
    }
    q.push(w);
    this.count++;
  }

  /**
   * Takes the oldest waiter `ready` accepts from the first client in turn order, preferring clients `preferred`
   * accepts; undefined if no waiter is ready.
   */
  take(preferred: (client: string) => boolean, ready: (w: W) => boolean): W | undefined {
    for (let pass = 0; pass < 2; pass++) {
      for (let i = 0; i < this.order.length; i++) {
        const client = this.order[i]!;
        if (pass === 0 && !preferred(client)) continue;
        const q = this.queues.get(client)!;
        const j = q.findIndex(ready);
        if (j < 0) continue;
        const w = q.splice(j, 1)[0]!;
        this.order.splice(i, 1);
        this.count--;
        if (q.length > 0) this.order.push(client);
        else this.queues.delete(client);
        return w;
      }
    }
    return undefined;
  }

  /** Takes `w` out (its deadline passed); false if it is no longer waiting. */
  remove(w: W): boolean {
    const q = this.queues.get(w.client);
    const i = q?.indexOf(w) ?? -1;
    if (!q || i < 0) return false;
    q.splice(i, 1);
    this.count--;
    if (q.length === 0) {
      this.queues.delete(w.client);
      this.order = this.order.filter((c) => c !== w.client);
    }
    return true;
  }

  /** Requests served before a new one of `client`, itself included. */
  turnsBefore(client: string): number {
    return turnsBefore(client, this.queues, (q) => q.length);
  }
}

/**
 * Round-robin puts a new request of `client` behind its own waiting requests and, per other client, at most one
 * turn per own request and its own: how many start before it, itself included, given what each client has waiting.
 */
export function turnsBefore<V>(client: string, waiting: ReadonlyMap<string, V>, count: (v: V) => number): number {
  const own = waiting.has(client) ? count(waiting.get(client)!) : 0;
  let n = own + 1;
  for (const [c, v] of waiting) if (c !== client) n += Math.min(count(v), own + 1);
  return n;
}
