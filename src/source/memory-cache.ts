// Hot pre-produced responses in memory (lru-cache, bounded by entries and bytes); an entry never outlives its
// usable time (nextUpdate, or BR 4.9.9's update time under compliance: cabf: usable-until.ts), and a status change recorded anywhere is applied before the next hit is served.
import { LRUCache } from 'lru-cache';
import type { Clock } from '../clock';
import { CERT_ID_HASHES } from '../ocsp/oids';
import type { ChangeSignal, Fill } from './applied-changes';
import type { ChangeTarget } from './change-follower';
import { etagOf, type HotAnswer, type OcspResponse, type RequestContext, type ResolvedRequest, type ServedResponse, type Source } from './source';

export interface CacheOptions {
  /** undefined: bounded by bytes alone (lru-cache then allocates nothing per potential entry). */
  maxEntries?: number;
  maxBytes: number;
}

/**
 * What the cache keeps per response: its own copy of the DER (a slice of a store row would keep the row's
 * whole buffer alive) and numbers, not the Date objects of an OcspResponse.
 */
class Entry implements ServedResponse {
  private tag: string | undefined;

  constructor(
    readonly der: Buffer,
    readonly thisUpdateMs: number,
    readonly nextUpdateMs: number,
    readonly usableUntilMs: number,
    readonly maxAgeMs: number | undefined,
  ) {}

  etag(): string {
    return (this.tag ??= etagOf(this.der));
  }

  toResponse(): OcspResponse {
    const thisUpdate = new Date(this.thisUpdateMs);
    // A pre-produced response's thisUpdate is its producedAt (response-signing.ts).
    return {
      der: this.der, producedAt: thisUpdate, thisUpdate, nextUpdate: new Date(this.nextUpdateMs), usableUntilMs: this.usableUntilMs, preProduced: true,
      httpCacheable: true, source: 'cache',
      ...(this.maxAgeMs !== undefined ? { maxAgeMs: this.maxAgeMs } : {}),
    };
  }
}

// Heap cost of an entry beside its DER: key string, Entry, Buffer and ArrayBuffer objects, lru-cache slots
// (heap snapshots of 100k+ entries, bench/memory.ts). Counted so that maxSize bounds what memory really holds.
const ENTRY_OVERHEAD_BYTES = 400;

export class MemoryCache implements Source, ChangeTarget {
  private readonly lru: LRUCache<string, Entry>;
  /** Cacheable requests answered from memory, and those that had to ask the store or the signer (metrics). */
  readonly stats = { hits: 0, misses: 0 };

  constructor(
    private readonly next: Source,
    private readonly clock: Clock,
    o: CacheOptions,
    /** Without it (tests), nothing outside tells the cache of changes. */
    private readonly changes?: ChangeSignal,
  ) {
    this.lru = new LRUCache<string, Entry>({
      ...(o.maxEntries ? { max: o.maxEntries } : {}),
      maxSize: o.maxBytes,
      sizeCalculation: (r) => r.der.length + ENTRY_OVERHEAD_BYTES,
      perf: { now: () => clock.monotonicMs() },
    });
  }

  async response(req: ResolvedRequest, ctx: RequestContext): Promise<OcspResponse> {
    const key = cacheable(req);
    if (key === undefined) return this.next.response(req, ctx);
    // A feed that cannot be brought up to date: memory neither answers nor is filled until it can.
    if (!(await this.caughtUp())) return this.next.response(req, ctx);
    const hit = this.live(key);
    if (hit) {
      this.stats.hits++;
      return hit.toResponse();
    }
    this.stats.misses++;
    const fill = this.changes?.begin();
    try {
      const r = await this.next.response(req, ctx);
      this.putUnlessOutdated(req.authority.name, req.certIds[0]!.serial, key, r, fill);
      return r;
    } finally {
      fill?.end();
    }
  }

  private async caughtUp(): Promise<boolean> {
    const changes = this.changes;
    if (!changes?.pending()) return true;
    return changes.apply().then(
      () => true,
      // A failed read of the log leaves a known change pending, or a feed past maxStaleness; a poll that met a
      // database going away leaves neither, and memory may answer as it did before the poll began.
      () => !changes.pending(),
    );
  }

  /** Pre-produced answers can be held here; whether one is, its der() says each time it is asked. */
  hot(req: ResolvedRequest): HotAnswer | undefined {
    const key = cacheable(req);
    return key === undefined ? undefined : new CachedAnswer(this, key);
  }

  /** The response cached under key, unless status changes wait to be applied (response() applies them first). */
  current(key: string): ServedResponse | undefined {
    const hit = this.changes?.pending() ? undefined : this.live(key);
    // A hot miss is not counted: response() follows and counts it.
    if (hit) this.stats.hits++;
    return hit;
  }

  private live(key: string): Entry | undefined {
    const hit = this.lru.get(key);
    return hit && hit.usableUntilMs > this.clock.now().getTime() ? hit : undefined;
  }

  /** Caches a pre-produced response under its certificate and hash, for as long as it may be served. */
  set(ca: string, serial: string, hash: string, r: OcspResponse, fill?: Fill): void {
    this.putUnlessOutdated(ca, serial, cacheKey(ca, serial, hash), r, fill);
  }

  /** `fill` began before the response was made: a change applied since then to its certificate keeps it out. */
  private putUnlessOutdated(ca: string, serial: string, key: string, r: OcspResponse, fill: Fill | undefined): void {
    if (fill && this.changes?.outdated(ca, serial, r.statusVersion ?? 0, fill)) return;
    this.put(key, r);
  }

  invalidate(ca: string, serial: string): void {
    for (const h of CERT_ID_HASHES) this.lru.delete(cacheKey(ca, serial, h));
  }

  /** Drops everything: a CA certificate's revocation changes the answer for all it issued. */
  clear(): void {
    this.lru.clear();
  }

  get size(): { entries: number; bytes: number } {
    return { entries: this.lru.size, bytes: this.lru.calculatedSize };
  }

  private put(key: string, r: OcspResponse): void {
    if (!r.preProduced || !r.nextUpdate || r.usableUntilMs === undefined) return;
    const ttl = r.usableUntilMs - this.clock.now().getTime();
    if (ttl <= 0) return;
    const entry = new Entry(Buffer.from(r.der), r.thisUpdate.getTime(), r.nextUpdate.getTime(), r.usableUntilMs, r.maxAgeMs);
    this.lru.set(key, entry, { ttl: Math.min(ttl, 2 ** 31 - 1) });
  }
}

/** A cache key and the cache: it holds no response itself, so whatever the cache drops, it stops answering. */
class CachedAnswer implements HotAnswer {
  constructor(
    private readonly cache: MemoryCache,
    private readonly key: string,
  ) {}

  served(): ServedResponse | undefined {
    return this.cache.current(this.key);
  }
}

/** The cache key of a request whose answer is pre-produced (one certificate, pre-production on), else undefined. */
function cacheable(req: ResolvedRequest): string | undefined {
  const id = req.certIds[0]!;
  return req.authority.preProduction.enabled && req.certIds.length === 1 && id.hash ? cacheKey(req.authority.name, id.serial, id.hash) : undefined;
}

// join() makes one flat string; a template literal would keep a chain of pieces alive as the stored key.
function cacheKey(ca: string, serial: string, hash: string): string {
  return [ca, serial, hash].join('\0');
}
