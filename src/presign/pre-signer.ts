// The pre-signer service (RFC 6960 section 2.5; EJBCA's OCSP Response Pre-Signer): produces and stores a response
// for every certificate of the CAs with pre-production on whose stored response is missing, due for refresh, or
// (before the CA expires) not yet final. Resumable by construction: a rerun finds only what is still due.
import type { Logger } from 'pino';
import type { Clock } from '../clock';
import type { HashName } from '../ocsp/oids';
import type { Authority } from '../source/authority';
import type { ResponseProducer } from '../source/response-producer';
import { signerProblem } from '../source/signer-validity';
import type { LeaseFence } from '../store/lease-store';
import { DueQuery, EVERYTHING_DUE, Store, StoredResponse } from '../store/response-store';
import type { CertificateRecord } from '../store/status-store';

export interface PreSignerOptions {
  /** Refresh once this fraction of the validity has passed. */
  refreshAfter: number;
  concurrency: number;
  batchSize: number;
}

export interface RunOptions {
  /** Only these CAs (names); default: every CA with pre-production on. */
  cas?: readonly string[];
  /** Re-sign every certificate, fresh or not (final responses stay). */
  all?: boolean;
  onProgress?: (p: Progress) => void;
  /** Run under the lease: every batch is stored only while this hold is the lease's (others count as stale). */
  fence?: LeaseFence;
  /** Aborted (the lease lost): the run takes no further certificate, stores what it signed and ends. */
  signal?: AbortSignal;
}

export interface Progress {
  total: number;
  done: number;
  failed: number;
}

export interface RunResult extends Progress {
  stored: number;
  skippedFinal: number;
  /** Signed, but not stored: the certificate's status changed meanwhile (its change produces anew, or the next run). */
  stale: number;
  final: number;
  /** First failure, for the log: the rest are usually the same. */
  firstError?: string;
}

/** Batches that may wait for the store at once before signing waits too. */
const UNSTORED_BATCHES = 2;

export class PreSignerError extends Error {
  override name = 'PreSignerError';
}

/** What stored responses look like per CA: certificates due for (re-)signing, and the earliest nextUpdate. */
export interface ResponseHealth {
  due: ReadonlyMap<string, number>;
  earliestNextUpdate: ReadonlyMap<string, Date | undefined>;
  /** CAs under compliance: cabf: served responses past the update time BR 4.9.9 requires. */
  pastUpdateTime: ReadonlyMap<string, number>;
}

/** Told of runs and of what was stored (metrics). */
export interface PreSignerObserver {
  runStarted(dueByCa: ReadonlyMap<string, number>): void;
  stored(ca: string, n: number): void;
  runFinished(ok: boolean, endedAt: Date, seconds: number): void;
  healthChecked(h: ResponseHealth): void;
}

export class PreSigner {
  private running: { result: Promise<RunResult>; signal: AbortSignal | undefined } | undefined;
  private stopping = false;

  constructor(
    private readonly store: Store,
    private readonly authorities: readonly Authority[],
    private readonly producer: ResponseProducer,
    private readonly clock: Clock,
    private readonly o: PreSignerOptions,
    private readonly log: Pick<Logger, 'info' | 'warn'>,
    private readonly observer?: PreSignerObserver,
  ) {}

  /**
   * Shutdown: a run in progress takes no further certificate, stores what it signed and ends; resolved then.
   * Nothing is lost: the next run finds what is still due.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.running?.result.catch(() => undefined);
  }

  /**
   * One run; a second call while one is going returns the same run, unless that one was cut off (its signal
   * aborted: the lease lost), when the new run starts once it has ended, so the two never sign the same certificate.
   */
  run(opts: RunOptions = {}): Promise<RunResult> {
    if (this.stopping) return Promise.reject(new PreSignerError('the pre-signer is stopping'));
    const going = this.running;
    if (going && !going.signal?.aborted) return going.result;
    const result: Promise<RunResult> = (going ? going.result.then(noop, noop) : Promise.resolve())
      .then(() => this.runOnce(opts))
      .finally(() => {
        if (this.running?.result === result) this.running = undefined;
      });
    this.running = { result, signal: opts.signal };
    return result;
  }

  private async runOnce(opts: RunOptions): Promise<RunResult> {
    const started = this.clock.monotonicMs();
    let ok = false;
    try {
      const targets = this.targets(opts.cas);
      const work = targets.flatMap((a) => a.preProduction.hashes.map((hash) => ({ a, hash, q: this.query(a, hash, !!opts.all) })));
      const result: RunResult = { total: 0, done: 0, failed: 0, stored: 0, skippedFinal: 0, stale: 0, final: 0 };
      const dueByCa = new Map<string, number>();
      for (const w of work) {
        const n = await this.store.countDue(w.q);
        result.total += n;
        dueByCa.set(w.a.name, (dueByCa.get(w.a.name) ?? 0) + n);
      }
      this.observer?.runStarted(dueByCa);
      opts.onProgress?.(result);
      for (const w of work) await this.runOne(w.a, w.hash, w.q, result, opts);
      ok = result.failed === 0;
      return result;
    } finally {
      this.observer?.runFinished(ok, this.clock.now(), (this.clock.monotonicMs() - started) / 1000);
    }
  }

  /** Certificates due and the earliest nextUpdate per CA with pre-production (for metrics, checked on a schedule). */
  async health(): Promise<ResponseHealth> {
    const due = new Map<string, number>();
    const earliestNextUpdate = new Map<string, Date | undefined>();
    const pastUpdateTime = new Map<string, number>();
    for (const a of this.targets(undefined)) {
      if (a.compliance === 'cabf') pastUpdateTime.set(a.name, await this.store.countPastUpdateTime(a.name, a.signerId, this.clock.now()));
      let n = 0;
      for (const hash of a.preProduction.hashes) n += await this.store.countDue(this.query(a, hash, false));
      due.set(a.name, n);
      earliestNextUpdate.set(a.name, await this.store.earliestNextUpdate(a.name));
    }
    const h = { due, earliestNextUpdate, pastUpdateTime };
    this.observer?.healthChecked(h);
    return h;
  }

  private targets(names: readonly string[] | undefined): Authority[] {
    const now = this.clock.now().getTime();
    if (!names) {
      // A signer outside its certificate's validity signs nothing; the serving side logs and reports it.
      return this.authorities.filter((a) => a.preProduction.enabled && signerProblem(a, now) === undefined);
    }
    return names.map((n) => {
      const a = this.authorities.find((x) => x.name === n);
      if (!a) throw new PreSignerError(`no CA named "${n}" in the config (cas[].name)`);
      if (!a.preProduction.enabled) throw new PreSignerError(`CA "${n}": pre-production is off (cas[].preProduction.enabled)`);
      const unusable = signerProblem(a, now);
      if (unusable) throw new PreSignerError(`CA "${n}": ${unusable}: replace cas[].signer.certificate`);
      return a;
    });
  }

  private query(a: Authority, hash: HashName, all: boolean): Omit<DueQuery, 'after' | 'limit'> {
    const now = this.clock.now();
    const needFinal = this.producer.inFinalWindow(a);
    const refreshBefore = all ? EVERYTHING_DUE : new Date(now.getTime() - this.o.refreshAfter * a.validityMs);
    // Final responses cover every certificate; otherwise expired certificates are not worth HSM time.
    return { ca: a.name, hash, signer: a.signerId, refreshBefore, refreshAfter: this.o.refreshAfter, refreshAt: now, needFinal, ...(needFinal ? {} : { notExpiredAt: now }) };
  }

  /**
   * Signs every due certificate of one CA and hash. One pool of workers runs across pages: the next page is
   * fetched while the current one is signed, and finished responses are stored in batches while signing goes
   * on, so the HSM does not wait for the store (a page-by-page loop left it idle for each page's tail, write and
   * query) unless the store falls two batches behind. A kill loses at most the batch being filled, two handed to
   * the store and the signatures in flight; the next run (on whichever responder holds the lease) signs them again.
   */
  private async runOne(a: Authority, hash: HashName, q: Omit<DueQuery, 'after' | 'limit'>, result: RunResult, opts: RunOptions): Promise<void> {
    const final = q.needFinal;
    const { batchSize } = this.o;
    let after = '';
    let exhausted = false;
    let stopped = false;
    let queue: CertificateRecord[] = [];
    let head = 0;
    let fetching: Promise<void> | undefined;
    const fetchMore = (): Promise<void> =>
      (fetching ??= this.store
        .certificatesDue({ ...q, after, limit: batchSize })
        .then((page) => {
          if (page.length === 0) exhausted = true;
          else {
            after = page[page.length - 1]!.serial;
            queue = queue.slice(head).concat(page);
            head = 0;
          }
        })
        .finally(() => (fetching = undefined)));
    const next = async (): Promise<CertificateRecord | undefined> => {
      // Signing waits while the store is two batches behind: what a kill loses (signed, never stored) stays bounded.
      while (writes.length >= UNSTORED_BATCHES) await writes[0]!.catch(noop);
      for (;;) {
        if (stopped || this.stopping || opts.signal?.aborted) return undefined;
        if (head < queue.length) {
          if (queue.length - head <= batchSize / 2 && !exhausted) void fetchMore().catch(() => undefined); // awaited below on need
          return queue[head++];
        }
        if (exhausted) return undefined;
        await fetchMore();
      }
    };

    let produced: StoredResponse[] = [];
    let storing: Promise<void> = Promise.resolve();
    /** Batches handed to the store and not yet written, oldest first. */
    const writes: Promise<void>[] = [];
    const store = () => {
      const batch = produced;
      produced = [];
      const write = (storing = storing.then(async () => {
        if (batch.length === 0) return;
        const put = await this.producer.store(batch, opts.fence);
        result.stored += put.stored;
        this.observer?.stored(a.name, put.stored);
        result.skippedFinal += put.skippedFinal;
        result.stale += put.stale;
        if (final) result.final += put.stored;
        opts.onProgress?.(result);
      }));
      writes.push(write);
      write.then(noop, () => (stopped = true)).finally(() => writes.splice(writes.indexOf(write), 1)); // the error itself is thrown from the await below
    };

    let failedInARow = 0;
    const worker = async () => {
      for (let rec = await next(); rec; rec = await next()) {
        try {
          const r = await this.producer.produce(a, rec, hash, { lane: 'presign' }, final);
          produced.push(r); // not produced.push(await ...): that would push into the array store() swapped out
          failedInARow = 0;
          if (produced.length >= batchSize) store();
        } catch (e) {
          result.failed++;
          result.firstError ??= `CA "${a.name}" serial ${rec.serial}: ${(e as Error).message}`;
          // A whole batch failing in a row means signing is down, not that some certificates are odd.
          if (++failedInARow >= batchSize && !stopped) {
            stopped = true;
            this.log.warn({ ca: a.name, hash, failed: result.failed, err: result.firstError }, 'pre-signer stopped: signing fails');
          }
        }
        result.done++;
      }
    };
    try {
      await Promise.all(Array.from({ length: this.o.concurrency }, worker));
    } finally {
      // Also when a worker failed: nothing signed is dropped, and nothing is still writing once run() settles.
      store();
      await fetching?.catch(() => undefined);
      await storing.catch(() => undefined);
    }
    await storing; // a store failure, if any
    opts.onProgress?.(result);
  }
}

function noop(): void {}
