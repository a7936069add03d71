// Builds the object graph from a validated config and starts serving; the only place that wires components.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Clock } from '../clock';
import type { LoadedConfig } from '../config/load';
import type { CaConfig, LimitsConfig, TokenConfig } from '../config/schema';
import { createApp } from '../http/app';
import { createOcspHandler } from '../http/ocsp-handler';
import { createHttpServer } from '../http/server';
import { trustedProxyList } from '../http/client-address';
import { finalizeModules } from '../hsm/module';
import { readPin } from '../hsm/pin';
import { Pkcs11Signer } from '../hsm/pkcs11-signer';
import { algorithmForPublicKey, Signer } from '../hsm/signer';
import { SigningLimiter } from '../hsm/signing-limiter';
import { HsmToken } from '../hsm/token';
import { HsmMetrics } from '../metrics/hsm-metrics';
import { createRegistry } from '../metrics/registry';
import { HttpMetrics } from '../metrics/http-metrics';
import { OID } from '../ocsp/oids';
import { readCertificate, LoadedCertificate } from '../pki/certificate';
import { Authority, AuthorityIndex, makeAuthority } from '../source/authority';
import { IssuerFilter } from '../source/issuer-filter';
import { LiveSigner } from '../source/live-signer';
import { SingleFlight } from '../source/single-flight';
import type { Store } from '../store/response-store';
import { openStore } from './store';

export class StartupError extends Error {
  override name = 'StartupError';
}

export interface Daemon {
  port: number;
  registry: Registry;
  close(): Promise<void>;
}

export interface DaemonDeps {
  logger: Logger;
  clock: Clock;
  /** Called when a token given `waitForToken` did not come up in time: the daemon cannot do its job. */
  onFatal?: (message: string) => void;
}

export async function startDaemon(loaded: LoadedConfig, deps: DaemonDeps): Promise<Daemon> {
  const { config } = loaded;
  const { logger, clock } = deps;
  const registry = createRegistry();
  const hsmMetrics = new HsmMetrics(registry);
  const tokens = new Map<string, HsmToken>();
  const limiters = new Map<string, SigningLimiter>();
  let store: Store | undefined;
  const closeAll = async () => {
    for (const t of tokens.values()) t.close();
    finalizeModules();
    await store?.close();
  };
  try {
    store = await openStore(loaded, clock);
    const openedStore = store;
    config.tokens.forEach((t, i) => {
      tokens.set(t.name, makeToken(loaded, t, i, deps, hsmMetrics));
      limiters.set(t.name, makeLimiter(t.name, t.limits, t.sessions, clock, hsmMetrics));
    });
    const authorities = config.cas.map((ca, i) => bindAuthority(loaded, ca, i, tokens.get(ca.signer.token)!, limiters, clock, hsmMetrics));
    hsmMetrics.watch([...tokens.values()], [...limiters.values()]);
    await activateTokens(config.tokens, tokens, deps);
    const source = new IssuerFilter(new AuthorityIndex(authorities), new SingleFlight(new LiveSigner(openedStore, clock)));
    const ocsp = createOcspHandler({
      source,
      clock,
      limits: { maxCertIds: config.server.maxCertIdsPerRequest },
      bodyLimit: config.server.bodyLimit,
      ...(config.server.pathPrefix ? { pathPrefix: config.server.pathPrefix } : {}),
      responseTimeoutMs: config.server.responseTimeout,
      trustedProxies: trustedProxyList(config.server.trustedProxies),
      httpMetrics: new HttpMetrics(registry),
      logger,
    });
    const app = createApp({
      ready: async () => [...tokens.values()].every((t) => t.ready) && (await openedStore.ping().then(() => true, () => false)),
      metrics: registry,
      logger,
    });
    const server = await listen(createHttpServer(ocsp, app), config.server.host, config.server.port);
    server.requestTimeout = config.server.requestTimeout;
    server.headersTimeout = config.server.requestTimeout;
    const port = (server.address() as AddressInfo).port;
    logger.info({ host: config.server.host, port, pathPrefix: config.server.pathPrefix ?? '/' }, 'listening');
    return {
      port,
      registry,
      close: async () => {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        ocsp.close();
        await closeAll();
      },
    };
  } catch (e) {
    await closeAll();
    throw e;
  }
}

function makeToken(loaded: LoadedConfig, t: TokenConfig, i: number, deps: DaemonDeps, observer: HsmMetrics): HsmToken {
  const describe = `token "${t.name}" (tokens[${i}], tokenLabel "${t.tokenLabel}")`;
  return new HsmToken({
    name: t.name,
    describe,
    modulePath: t.module,
    label: t.tokenLabel,
    sessions: t.sessions,
    pin: () => readPin(t.pin, { what: describe, resolvePath: loaded.path, warn: (m) => deps.logger.warn(m) }),
    signTimeoutMs: t.signTimeout,
    backoff: { initialMs: t.recovery.initialBackoff, maxMs: t.recovery.maxBackoff },
    healthCheckMs: t.healthCheckInterval,
    clock: deps.clock,
    observer,
    log: deps.logger,
  });
}

function makeLimiter(
  name: string,
  l: Pick<LimitsConfig, 'rate'> & Partial<Omit<LimitsConfig, 'rate'>>,
  sessions: number,
  clock: Clock,
  metrics: HsmMetrics,
): SigningLimiter {
  return new SigningLimiter({
    name,
    ratePerSecond: l.rate,
    burst: l.burst ?? Math.max(1, Math.ceil(l.rate)),
    maxConcurrent: l.maxConcurrent ?? sessions,
    maxQueue: l.maxQueue ?? 256,
    queueTimeoutMs: l.queueTimeout ?? 250,
    clientShare: l.clientShare ?? 1,
    clock,
    onReject: (limiter, reason) => metrics.rejected(limiter, reason),
  });
}

/** Tokens without waitForToken must come up now; the others come up in the background while we serve tryLater. */
async function activateTokens(configs: TokenConfig[], tokens: Map<string, HsmToken>, deps: DaemonDeps): Promise<void> {
  for (const t of configs) {
    const token = tokens.get(t.name)!;
    if (t.waitForToken === undefined) {
      await token.activate();
      deps.logger.info({ token: t.name, tokenLabel: t.tokenLabel, sessions: t.sessions }, 'token activated; signing keys verified');
      continue;
    }
    deps.logger.info({ token: t.name, waitMs: t.waitForToken }, 'waiting for token in the background');
    token.activateWithin(t.waitForToken).then(
      () => deps.logger.info({ token: t.name, tokenLabel: t.tokenLabel, sessions: t.sessions }, 'token activated; signing keys verified'),
      (e: Error) => deps.onFatal?.(e.message),
    );
  }
}

function bindAuthority(
  loaded: LoadedConfig,
  ca: CaConfig,
  i: number,
  token: HsmToken,
  limiters: Map<string, SigningLimiter>,
  clock: Clock,
  metrics: HsmMetrics,
): Authority {
  const field = `cas[${i}]`;
  const caCert = certificateAt(loaded, ca.certificate, `${field}.certificate`);
  const certField = ca.signer.certificate ? `${field}.signer.certificate` : `${field}.certificate`;
  const signerCert = ca.signer.certificate ? certificateAt(loaded, ca.signer.certificate, certField) : caCert;
  if (signerCert !== caCert) checkDelegatedResponder(caCert, signerCert, certField);
  let algorithm;
  try {
    algorithm = algorithmForPublicKey(signerCert.x509.publicKey);
  } catch (e) {
    throw new StartupError(`CA "${ca.name}": ${certField}: ${(e as Error).message}`);
  }
  const keyName = 'label' in ca.signer.key ? `label "${ca.signer.key.label}"` : `id ${ca.signer.key.id}`;
  const key = token.addKey({
    ref: ca.signer.key,
    publicKey: signerCert.x509.publicKey,
    algorithm,
    describe: `CA "${ca.name}": ${field}.signer.key (${keyName} on token "${token.name}")`,
    certDescribe: `${certField} (${signerCert.x509.subject.replace(/\n/g, ', ')})`,
  });
  const chain: SigningLimiter[] = [];
  if (ca.signer.limits) chain.push(makeLimiter(`${token.name}/${ca.name}`, ca.signer.limits, Infinity, clock, metrics));
  chain.push(limiters.get(token.name)!);
  const signer: Signer = new Pkcs11Signer(token, key);
  return makeAuthority({
    name: ca.name,
    caCert,
    signerCert,
    signer,
    limiters: chain,
    responderId: ca.responderId ?? loaded.config.defaults.responderId,
    validityMs: ca.validity ?? loaded.config.defaults.validity,
  });
}

function certificateAt(loaded: LoadedConfig, p: string, field: string): LoadedCertificate {
  try {
    return readCertificate(loaded.path(p));
  } catch (e) {
    throw new StartupError(`${field}: ${(e as Error).message}`);
  }
}

// RFC 6960 section 4.2.2.2: a delegated responder is issued directly by the CA and carries id-kp-OCSPSigning.
function checkDelegatedResponder(ca: LoadedCertificate, responder: LoadedCertificate, field: string): void {
  if (!responder.x509.checkIssued(ca.x509) || !responder.x509.verify(ca.x509.publicKey)) {
    throw new StartupError(`${field}: responder certificate was not issued by the CA certificate`);
  }
  if (!(responder.x509.keyUsage ?? []).includes(OID.kpOcspSigning)) {
    throw new StartupError(`${field}: responder certificate lacks extended key usage id-kp-OCSPSigning`);
  }
}

function listen(server: Server, host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.listen(port, host);
    server.once('listening', () => resolve(server));
    server.once('error', (e) => reject(new StartupError(`cannot listen on ${host}:${port}: ${(e as Error).message}`)));
  });
}
