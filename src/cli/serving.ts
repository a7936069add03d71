// The serving part of the daemon, built from the CA bindings of a config: the source chain (issuer filter ->
// nonce signing -> memory cache -> store -> single-flight -> live signer), the request memo, the change follower,
// the stored-response health check and the work done under the lease (services.ts). A reload builds a new one and
// closes the old; tokens, store, lease and listeners stay. With server.workers > 1 the primary builds the services
// (schedules, production upon change) and each serving process the answers (README "Architecture").
import type { Logger } from 'pino';
import type { Clock } from '../clock';
import type { LoadedConfig } from '../config/load';
import type { LeaseKeeper } from '../cluster/lease-keeper';
import { RequestMemo } from '../http/request-memo';
import type { ChangeMetrics } from '../metrics/change-metrics';
import type { ComplianceMetrics } from '../metrics/compliance-metrics';
import type { IndexMetrics } from '../metrics/index-metrics';
import type { PreSignerMetrics } from '../metrics/presign-metrics';
import type { OcspRequest } from '../ocsp/request';
import type { LoadedCertificate } from '../pki/certificate';
import { PreSigner } from '../presign/pre-signer';
import { every, Schedule } from '../presign/schedule';
import { Authority, AuthorityIndex } from '../source/authority';
import { ChangeFollower } from '../source/change-follower';
import type { IssuerRevocations } from '../source/issuer-revocations';
import { IssuerFilter } from '../source/issuer-filter';
import { LiveSigner } from '../source/live-signer';
import { MemoryCache } from '../source/memory-cache';
import { NonceSigning } from '../source/nonce-signing';
import { ResponseProducer } from '../source/response-producer';
import { SingleFlight } from '../source/single-flight';
import type { Source } from '../source/source';
import { StoredResponses } from '../source/stored-responses';
import type { Store } from '../store/response-store';
import { expiresWithin } from '../pki/validity';
import { SignerValidity, SignerValidityGate } from '../source/signer-validity';
import { startLeaseWork } from './services';
import { FollowerHooks, stalenessBoundMs } from './cluster';

/** How often the stored responses' freshness figures are computed (two aggregate queries per CA). */
const HEALTH_CHECK_MS = 60_000;

export interface Serving {
  authorities: Authority[];
  source: Source<OcspRequest>;
  cache: MemoryCache | undefined;
  memo: RequestMemo | undefined;
  /** Nonce requests signed when idle or answered pre-produced (preProduction.nonce; metrics). */
  nonces: NonceSigning;
  follower: ChangeFollower;
  /** Which bindings cannot answer now because of their signer certificate's validity (readiness). */
  validity: SignerValidity;
  /** Stops the schedules, lets a pre-signer run stop at its next certificate (what it signed is stored), stops following. */
  close(): Promise<void>;
}

export interface SharedParts {
  store: Store;
  clock: Clock;
  logger: Logger;
  preSignerMetrics: PreSignerMetrics;
  changeMetrics: ChangeMetrics;
  indexMetrics: IndexMetrics;
  /** CA/B Forum profile metrics (a process that runs the services). */
  complianceMetrics?: ComplianceMetrics;
  /** After this process wrote status changes itself (CRL downloads, index.txt): other processes may want to know. */
  onOwnWrite?: () => void;
  /** The lease the work done once per cluster runs under (roles `all` and `services`). */
  lease?: LeaseKeeper;
  /** A process that answers OCSP requests: its heartbeat's hold on memory, and what it records (cli/cluster.ts). */
  heartbeat?: FollowerHooks;
}

/**
 * What this process does with its serving part: `all` (one process), `answers` (a serving process: source chain,
 * cache and memo, a follower that only keeps memory current) or `services` (the primary of several: schedules and
 * production upon change, no memory cache).
 */
export type ServingRole = 'all' | 'answers' | 'services';

export async function buildServing(
  loaded: LoadedConfig,
  bindings: { authorities: Authority[]; issuerRevocations: IssuerRevocations },
  { store, clock, logger, preSignerMetrics, changeMetrics, indexMetrics, complianceMetrics, onOwnWrite, lease, heartbeat }: SharedParts,
  role: ServingRole = 'all',
): Promise<Serving> {
  const { config } = loaded;
  const { authorities } = bindings;
  const producer = new ResponseProducer(clock, store);
  // The first binding of a name is the CA's current key (openSigning's order): the one that pre-produces.
  // Production upon a change happens once, in the process that runs the services.
  const byName = new Map<string, Authority>();
  if (role !== 'answers') for (const a of authorities) if (!byName.has(a.name)) byName.set(a.name, a);
  // ... and only on the responder holding the lease, under it.
  const followerOptions = {
    maxStalenessMs: stalenessBoundMs(config),
    ...(lease ? { hold: () => lease.current() } : {}),
    ...(heartbeat?.held ? { held: heartbeat.held } : {}),
    ...(heartbeat ? { advanced: heartbeat.advanced } : {}),
  };
  const follower = new ChangeFollower(store, byName, producer, clock, logger, followerOptions, bindings.issuerRevocations, changeMetrics);
  // Every step that keeps or shares an answer checks it against the changes the follower applied.
  const live = new LiveSigner(store, clock);
  let chain: Source = new StoredResponses(store, producer, new SingleFlight(live, follower), clock, logger, follower);
  // cache.maxSize bounds both: a tenth remembers answers by request bytes (request-memo.ts), the rest holds responses.
  const memoBytes = Math.floor(config.cache.maxSize / 10);
  const cacheOptions = { ...(config.cache.maxEntries ? { maxEntries: config.cache.maxEntries } : {}), maxBytes: config.cache.maxSize - memoBytes };
  const cache = config.cache.maxSize > 0 && role !== 'services' ? new MemoryCache(chain, clock, cacheOptions, follower) : undefined;
  const memo = cache && memoBytes > 0 ? new RequestMemo(memoBytes) : undefined;
  if (cache) {
    chain = cache;
    follower.keep(cache);
  }
  // In front of the cache: what it signs for a nonce (preProduction.nonce whenIdle) is neither cached nor stored.
  const nonces = new NonceSigning(chain, live);
  await follower.start();
  changeMetrics.lagMs = () => follower.lagMs();

  const schedules: Schedule[] = [];
  let preSigner: PreSigner | undefined;
  const services = role !== 'answers';
  if (services && authorities.some((a) => a.preProduction.enabled)) {
    const p = (preSigner = new PreSigner(store, authorities, producer, clock, config.preSigner, logger, preSignerMetrics));
    // The freshness figures (responses due, earliest nextUpdate) for /metrics, on every responder, with or without
    // the lease (and also when only the CLI pre-signs).
    schedules.push(every(clock, HEALTH_CHECK_MS, () => p.health(), (e) => logger.warn({ err: e.message }, 'stored response check failed'), 0));
  }
  // This process's own writes are not seen by its SQLite change check: the follower is told.
  const onApplied = () => {
    void follower.apply().catch((e: Error) => logger.warn({ err: e.message }, 'could not read status changes'));
    onOwnWrite?.();
  };
  if (complianceMetrics) complianceMetrics.cabfCas = new Set(authorities.filter((a) => a.compliance === 'cabf').map((a) => a.name));
  const late = complianceMetrics ? { late: complianceMetrics } : {};
  const leaseWork = services ? startLeaseWork(loaded, { store, clock, logger, lease: leaseOf(lease), preSigner, indexMetrics, onApplied, ...late }) : undefined;
  const validity = new SignerValidity(authorities, clock, logger);
  if (services) {
    validity.problems(); // logs, now rather than at the first request, every signer that cannot be used
    warnOfExpiry(authorities, clock.now().getTime(), config.certificates.expiryWarning, logger);
  }
  return {
    authorities,
    validity,
    source: new IssuerFilter(new AuthorityIndex(authorities), new SignerValidityGate(nonces, validity)),
    cache,
    nonces,
    memo,
    follower,
    close: async () => {
      for (const s of schedules) s.stop();
      await leaseWork?.close();
      follower.close();
    },
  };
}

function leaseOf(lease: LeaseKeeper | undefined): LeaseKeeper {
  if (!lease) throw new Error('the work done once per cluster needs the lease (SharedParts.lease)');
  return lease;
}

/** At startup and on every reload: a signer or CA certificate expiring within certificates.expiryWarning is a warning. */
function warnOfExpiry(authorities: readonly Authority[], nowMs: number, warnMs: number, logger: Logger): void {
  const seen = new Set<string>();
  for (const a of authorities) {
    const certs = [
      { which: 'signer', cert: a.signerCert },
      { which: 'CA', cert: a.caCert },
    ];
    for (const { which, cert } of certs) {
      const left = expiresWithin(cert.x509, nowMs, warnMs);
      const key = `${which}\0${cert.x509.fingerprint256}`;
      if (left === undefined || seen.has(key)) continue;
      const notAfter = nowMs + left;
      seen.add(key);
      logger.warn(
        { ca: a.name, binding: a.binding, certificate: which, subject: cert.x509.subject.replace(/\n/g, ', '), notAfter: new Date(notAfter).toISOString(), daysLeft: Math.floor(left / 86_400_000) },
        `${which} certificate expires soon`,
      );
    }
  }
}

/** Each CA's certificates under all its keys (a renewed CA has several bindings of one name). */
export function caCertificatesByName(authorities: readonly Authority[]): Map<string, LoadedCertificate[]> {
  const m = new Map<string, LoadedCertificate[]>();
  for (const a of authorities) m.set(a.name, [...(m.get(a.name) ?? []), a.caCert]);
  return m;
}
