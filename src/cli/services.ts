// The work done once per cluster (README "Running a cluster"): the pre-signer's schedule, cleanup, CRL downloads and
// index.txt following, started when this responder gains the lease and stopped when it loses it. Production upon
// change, the other such work, is the change follower's, under the same hold (serving.ts).
import type { Logger } from 'pino';
import type { Clock } from '../clock';
import type { LeaseHold, LeaseKeeper } from '../cluster/lease-keeper';
import type { LoadedConfig } from '../config/load';
import { crlDownloadJob, CrlDownloadService } from '../ingest/crl-download';
import { IndexFollower } from '../ingest/index-follow';
import type { LateAnswers } from '../compliance/late-answers';
import type { IndexMetrics } from '../metrics/index-metrics';
import { cleanup } from '../presign/cleanup';
import type { PreSigner } from '../presign/pre-signer';
import { every, Schedule } from '../presign/schedule';
import type { Store } from '../store/response-store';
import { crlDownloadCas } from './crl-download';

/** A job run on a schedule while the lease is held. */
interface LeaseJob {
  intervalMs: number;
  /** When the first run is due after the hold begins: `gainedNow` is false when a reload built this mid-hold. */
  firstAfterMs(gainedNow: boolean): number;
  run(hold: LeaseHold): Promise<unknown>;
  onError(e: Error): void;
}

export interface LeaseWork {
  /** Stops the schedules and waits for a run in progress (a pre-signer run stops at its next certificate). */
  close(): Promise<void>;
}

export interface LeaseWorkParts {
  store: Store;
  clock: Clock;
  logger: Logger;
  lease: LeaseKeeper;
  preSigner: PreSigner | undefined;
  indexMetrics: IndexMetrics;
  /** After this process wrote status changes itself (CRL downloads, index.txt). */
  onApplied: () => void;
  /** Told of certificates a followed index.txt brought in late (BR 4.9.9). */
  late?: LateAnswers;
}

export function startLeaseWork(loaded: LoadedConfig, { store, clock, logger, lease, preSigner, indexMetrics, onApplied, late }: LeaseWorkParts): LeaseWork {
  const { config } = loaded;
  const jobs: LeaseJob[] = [];
  const interval = config.preSigner.interval;
  if (preSigner && interval !== undefined) {
    jobs.push({
      intervalMs: interval,
      // A new holder runs at once: the run a dead holder left unfinished continues (only what is still due is found),
      // and so do productions upon change that died with it (a status change deleted the certificate's responses).
      firstAfterMs: (gainedNow) => (gainedNow ? 0 : interval),
      run: async (hold) => {
        const r = await preSigner.run({ fence: hold.fence, signal: hold.signal });
        if (r.total > 0) logger.info({ ...r, ...(hold.signal.aborted ? { cutOff: 'lease lost' } : {}) }, 'pre-signer run done');
      },
      onError: (e) => logger.warn({ err: e.message }, 'pre-signer run failed'),
    });
  }
  const cleanupEvery = config.cleanup.every;
  if (cleanupEvery !== undefined) {
    jobs.push({
      intervalMs: cleanupEvery,
      firstAfterMs: () => cleanupEvery,
      run: async () => logger.info(await cleanup(store, clock), 'response cleanup done'),
      onError: (e) => logger.warn({ err: e.message }, 'response cleanup failed'),
    });
  }
  const crlCas = crlDownloadCas(loaded);
  if (crlCas.length > 0) {
    const crls = new CrlDownloadService({ store, cas: crlCas, clock, log: logger, onApplied });
    for (const ca of crlCas) {
      // First check as soon as the work starts here: a CA known only from CRLs has nothing to answer with until then.
      jobs.push({ intervalMs: ca.crl.interval, firstAfterMs: () => 0, run: crlDownloadJob(crls, [ca.name]), onError: (e) => logger.warn({ ca: ca.name, err: e.message }, 'CRL download failed') });
    }
  }
  const indexFollowers: IndexFollower[] = [];
  for (const c of config.cas) {
    if (!c.index) continue;
    const f = new IndexFollower({ store, ca: { name: c.name, file: loaded.path(c.index.file) }, clock, log: logger, onApplied, count: (ca, r) => indexMetrics.count(ca, r), ...(late ? { late } : {}) });
    indexFollowers.push(f);
    // Imported as soon as the work starts here (and after a reload): a new certificate is answered without waiting.
    jobs.push({ intervalMs: c.index.interval, firstAfterMs: () => 0, run: () => f.poll(), onError: (e) => logger.warn({ ca: c.name, err: e.message }, 'index.txt check failed') });
  }
  indexMetrics.states = () => indexFollowers.map((f) => f.state());

  const running = new Set<Schedule>();
  const unsubscribe = lease.subscribe((hold, gainedNow) => {
    if (hold.signal.aborted) return;
    const started = jobs.map((j) => every(clock, j.intervalMs, () => j.run(hold), (e) => j.onError(e), j.firstAfterMs(gainedNow)));
    for (const s of started) running.add(s);
    hold.signal.addEventListener(
      'abort',
      () => {
        for (const s of started) {
          s.stop();
          running.delete(s);
        }
      },
      { once: true },
    );
  });
  return {
    close: async () => {
      unsubscribe();
      for (const s of running) s.stop();
      running.clear();
      // An import in progress commits (and tells the follower) before the follower closes.
      await Promise.all(indexFollowers.map((f) => f.settled()));
      await preSigner?.stop();
    },
  };
}
