// Follows status changes recorded by any process (CLI revoke/import, other responders): drops cached responses
// for the certificate at once and, where the CA asks for it, produces new responses upon issuance/revocation.
import type { Logger } from 'pino';
import type { Store } from '../store/response-store';
import type { Authority } from './authority';
import type { ChangeSignal, MemoryCache } from './memory-cache';
import type { ResponseProducer } from './response-producer';
import type { IssuerRevocations } from './issuer-revocations';
import { fromStored } from './stored-responses';

const PAGE = 1000;
/** Productions waiting at most; beyond that (a bulk import) the pre-signer's next run covers the rest. */
const MAX_QUEUED = 10_000;
const CONCURRENCY = 8;

export class ChangeFollower implements ChangeSignal {
  private seq = 0;
  private applying: Promise<void> | undefined;
  private again = false;
  private readonly queue: { a: Authority; serial: string }[] = [];
  private running = 0;
  private stopWatching: (() => void) | undefined;
  private closed = false;

  constructor(
    private readonly store: Store,
    private readonly authorities: ReadonlyMap<string, Authority>,
    private readonly producer: ResponseProducer,
    private readonly cache: MemoryCache | undefined,
    private readonly log: Pick<Logger, 'warn' | 'info'>,
    private readonly issuerRevocations?: IssuerRevocations,
  ) {}

  async start(): Promise<void> {
    this.seq = await this.store.lastChange();
    this.stopWatching = this.store.watch(() => this.applyInBackground());
  }

  /** True while changes may be unapplied: a cache must not answer until apply() has run. */
  pending(): boolean {
    if (this.applying) return true;
    // Asking the store costs two file-lock system calls (SQLite data_version), so it is asked once per
    // event-loop turn: a change committed during a turn is seen by the first cache hit of the next one.
    if (this.checkedThisTurn) return false;
    // The store says "changed" once per change: start applying now, so every later caller sees it pending.
    if (this.store.mayHaveChanged()) {
      this.applyInBackground();
      return true;
    }
    this.checkedThisTurn = true;
    setImmediate(this.endTurn);
    return false;
  }

  private checkedThisTurn = false;
  private readonly endTurn = () => (this.checkedThisTurn = false);

  apply(): Promise<void> {
    if (this.applying) {
      this.again = true;
      return this.applying;
    }
    this.applying = this.drain().finally(() => {
      this.applying = undefined;
      if (this.again) {
        this.again = false;
        this.applyInBackground();
      }
    });
    return this.applying;
  }

  /** Nobody waits on it: a failure is logged (a waiting request gets it from its own apply()). */
  private applyInBackground(): void {
    this.apply().catch((e: Error) => this.log.warn({ err: e.message }, 'could not read status changes'));
  }

  close(): void {
    this.closed = true;
    this.stopWatching?.();
    this.queue.length = 0;
  }

  private async drain(): Promise<void> {
    for (;;) {
      const changes = await this.store.changesSince(this.seq, PAGE);
      for (const c of changes) {
        this.seq = c.seq;
        this.cache?.invalidate(c.ca, c.serial);
        // A CA certificate we answer for changed status: every answer for what it issued may change.
        if (this.issuerRevocations?.concerns(c.ca, c.serial) && (await this.issuerRevocations.refresh(this.store))) {
          this.cache?.clear();
          this.log.info({ ca: c.ca, serial: c.serial }, 'a CA certificate we answer for changed status: cache cleared');
        }
        const a = this.authorities.get(c.ca);
        const p = a?.preProduction;
        if (!a || !p?.enabled) continue;
        if ((c.kind === 'revoked' && p.onRevocation) || (c.kind === 'issued' && p.onIssuance)) this.enqueue(a, c.serial);
      }
      if (changes.length < PAGE) return;
    }
  }

  private enqueue(a: Authority, serial: string): void {
    if (this.queue.length >= MAX_QUEUED) return;
    this.queue.push({ a, serial });
    while (this.running < CONCURRENCY && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.running++;
      this.produce(job.a, job.serial)
        .catch((e: Error) => this.log.warn({ ca: job.a.name, serial: job.serial, err: e.message }, 'could not produce a response upon a status change'))
        .finally(() => {
          this.running--;
          const next = this.queue.shift();
          if (next && !this.closed) this.enqueue(next.a, next.serial);
        });
    }
  }

  private async produce(a: Authority, serial: string): Promise<void> {
    const rec = await this.store.getCertificate(a.name, serial);
    if (!rec || this.closed) return;
    const final = this.producer.inFinalWindow(a);
    const fresh = await Promise.all(a.preProduction.hashes.map((h) => this.producer.produce(a, rec, h, { lane: 'presign' }, final)));
    // A further change while signing (a hold released at once) wins: its own production follows.
    const after = await this.store.getCertificate(a.name, serial);
    if (after?.status !== rec.status || after.reason !== rec.reason) return;
    await this.store.putResponses(fresh);
    // Only if nothing changed meanwhile: a newer change has already dropped the cache entry and queued its own.
    if (!this.pending()) for (const r of fresh) this.cache?.set(a.name, serial, r.hash, fromStored(r, a, 'live'));
  }
}
