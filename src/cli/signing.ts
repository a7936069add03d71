// Builds the signing side from a validated config: tokens, signing limiters and the authorities bound to them.
// Shared by the daemon and the one-shot commands that sign (presign).
import type { Logger } from 'pino';
import type { Clock } from '../clock';
import type { LoadedConfig } from '../config/load';
import type { CaConfig, LimitsConfig, TokenConfig } from '../config/schema';
import { finalizeModules } from '../hsm/module';
import { readPin } from '../hsm/pin';
import { Pkcs11Signer } from '../hsm/pkcs11-signer';
import { algorithmForPublicKey, Signer } from '../hsm/signer';
import { SigningLimiter } from '../hsm/signing-limiter';
import { HsmToken } from '../hsm/token';
import type { HsmMetrics } from '../metrics/hsm-metrics';
import { OID } from '../ocsp/oids';
import { readCertificate, LoadedCertificate } from '../pki/certificate';
import { Authority, makeAuthority, PreProduction } from '../source/authority';

export class StartupError extends Error {
  override name = 'StartupError';
}

export interface SigningDeps {
  logger: Logger;
  clock: Clock;
  /** Called when a token given `waitForToken` did not come up in time: the daemon cannot do its job. */
  onFatal?: (message: string) => void;
  /** No live traffic in this process (one-shot presign): pre-signing may use every concurrent slot. */
  presignOnly?: boolean;
}

export interface Signing {
  tokens: Map<string, HsmToken>;
  limiters: Map<string, SigningLimiter>;
  authorities: Authority[];
  /** Logs in to every token (in the background for those with waitForToken). */
  activate(): Promise<void>;
  close(): void;
}

export function openSigning(loaded: LoadedConfig, deps: SigningDeps, metrics: HsmMetrics): Signing {
  const { config } = loaded;
  const tokens = new Map<string, HsmToken>();
  const limiters = new Map<string, SigningLimiter>();
  const close = () => {
    for (const t of tokens.values()) t.close();
    finalizeModules();
  };
  try {
    config.tokens.forEach((t, i) => {
      tokens.set(t.name, makeToken(loaded, t, i, deps, metrics));
      limiters.set(t.name, makeLimiter(t.name, t.limits, t.sessions, deps.clock, metrics, !deps.presignOnly));
    });
    const authorities = config.cas.map((ca, i) => bindAuthority(loaded, ca, i, tokens.get(ca.signer.token)!, limiters, deps.clock, metrics));
    metrics.watch([...tokens.values()], [...limiters.values()]);
    return { tokens, limiters, authorities, activate: () => activateTokens(config.tokens, tokens, deps), close };
  } catch (e) {
    close();
    throw e;
  }
}

function makeToken(loaded: LoadedConfig, t: TokenConfig, i: number, deps: SigningDeps, observer: HsmMetrics): HsmToken {
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
  reserveLiveSlot = true,
): SigningLimiter {
  return new SigningLimiter({
    name,
    ratePerSecond: l.rate,
    burst: l.burst ?? Math.max(1, Math.ceil(l.rate)),
    maxConcurrent: l.maxConcurrent ?? sessions,
    maxQueue: l.maxQueue ?? 256,
    queueTimeoutMs: l.queueTimeout ?? 250,
    clientShare: l.clientShare ?? 1,
    reserveLiveSlot,
    clock,
    onReject: (limiter, reason) => metrics.rejected(limiter, reason),
  });
}

/** Tokens without waitForToken must come up now; the others come up in the background while we serve tryLater. */
async function activateTokens(configs: TokenConfig[], tokens: Map<string, HsmToken>, deps: SigningDeps): Promise<void> {
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
    preProduction: preProductionOf(loaded, ca),
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

function preProductionOf(loaded: LoadedConfig, ca: CaConfig): PreProduction {
  const d = loaded.config.defaults.preProduction;
  const p = { ...d, ...ca.preProduction };
  return {
    enabled: p.enabled ?? false,
    storeOnDemand: p.storeOnDemand ?? true,
    onIssuance: p.onIssuance ?? false,
    onRevocation: p.onRevocation ?? true,
    hashes: p.hashes ?? ['sha1', 'sha256'],
    finalResponsesBeforeMs: p.finalResponsesBefore,
  };
}
