// Hot pre-produced responses in memory (lru-cache, bounded by entries and bytes); an entry never outlives its
// nextUpdate, and a status change recorded anywhere is applied before the next hit is served.
import { LRUCache } from 'lru-cache';
import type { Clock } from '../clock';
import { CERT_ID_HASHES } from '../ocsp/oids';
import type { OcspResponse, RequestContext, ResolvedRequest, Source } from './source';

export interface CacheOptions {
  maxEntries: number;
  maxBytes: number;
}

/** Where the cache learns of status changes: `pending()` is cheap and synchronous, `apply()` reads them. */
export interface ChangeSignal {
  pending(): boolean;
  apply(): Promise<void>;
}

// Key, Buffer and entry objects cost about this much beside the DER itself (measured with 1M entries).
const ENTRY_OVERHEAD_BYTES = 220;

export class MemoryCache implements Source {
  private readonly lru: LRUCache<string, OcspResponse>;
  private changes: ChangeSignal | undefined;

  constructor(
    private readonly next: Source,
    private readonly clock: Clock,
    o: CacheOptions,
  ) {
    this.lru = new LRUCache<string, OcspResponse>({
      max: o.maxEntries,
      maxSize: o.maxBytes,
      sizeCalculation: (r) => r.der.length + ENTRY_OVERHEAD_BYTES,
      perf: { now: () => clock.monotonicMs() },
    });
  }

  /** Set once wiring is done (the change follower also invalidates this cache). */
  follow(changes: ChangeSignal): void {
    this.changes = changes;
  }

  async response(req: ResolvedRequest, ctx: RequestContext): Promise<OcspResponse> {
    const a = req.authority;
    const id = req.certIds[0]!;
    if (!a.preProduction.enabled || req.certIds.length !== 1 || !id.hash) return this.next.response(req, ctx);
    if (this.changes?.pending()) await this.changes.apply();
    const key = cacheKey(a.name, id.serial, id.hash);
    const hit = this.valid(key);
    if (hit) return hit;
    const r = await this.next.response(req, ctx);
    this.put(key, r);
    return r;
  }

  /** A hit, unless status changes wait to be applied (then response() applies them first). */
  peek(req: ResolvedRequest): OcspResponse | undefined {
    const a = req.authority;
    const id = req.certIds[0]!;
    if (!a.preProduction.enabled || req.certIds.length !== 1 || !id.hash || this.changes?.pending()) return undefined;
    return this.valid(cacheKey(a.name, id.serial, id.hash));
  }

  private valid(key: string): OcspResponse | undefined {
    const hit = this.lru.get(key);
    return hit && hit.nextUpdate!.getTime() > this.clock.now().getTime() ? hit : undefined;
  }

  /** Caches a pre-produced response under its certificate and hash, for as long as it is valid. */
  set(ca: string, serial: string, hash: string, r: OcspResponse): void {
    this.put(cacheKey(ca, serial, hash), r);
  }

  invalidate(ca: string, serial: string): void {
    for (const h of CERT_ID_HASHES) this.lru.delete(cacheKey(ca, serial, h));
  }

  get size(): { entries: number; bytes: number } {
    return { entries: this.lru.size, bytes: this.lru.calculatedSize };
  }

  private put(key: string, r: OcspResponse): void {
    if (!r.preProduced || !r.nextUpdate) return;
    const ttl = r.nextUpdate.getTime() - this.clock.now().getTime();
    if (ttl > 0) this.lru.set(key, r, { ttl: Math.min(ttl, 2 ** 31 - 1) });
  }
}

function cacheKey(ca: string, serial: string, hash: string): string {
  return `${ca}\0${serial}\0${hash}`;
}
