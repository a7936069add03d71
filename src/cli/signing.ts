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
import { HsmToken, TokenKey } from '../hsm/token';
import type { HsmMetrics } from '../metrics/hsm-metrics';
import { OID } from '../ocsp/oids';
import { readCertificate, LoadedCertificate } from '../pki/certificate';
import { buildChain } from '../pki/chain';
import { Authority, makeAuthority, PreProduction } from '../source/authority';
import { IssuerRevocations } from '../source/issuer-revocations';

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
  /** CA certificates revoked for a compromise reason: refresh from the store once it is open. */
  issuerRevocations: IssuerRevocations;
  /** Each token's settings as loaded (a reload refuses to change them). */
  tokenConfigs: Map<string, string>;
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
    const { authorities, issuerRevocations } = bindAll(loaded, tokens, limiters, deps.clock, metrics);
    metrics.watch([...tokens.values()], [...limiters.values()]);
      const tokenConfigs = new Map(config.tokens.map((t) => [t.name, tokenIdentity(t)]));
    return { tokens, limiters, tokenConfigs, authorities, issuerRevocations, activate: () => activateTokens(config.tokens, tokens, deps), close };
  } catch (e) {
    close();
    throw e;
  }
}

export interface Bindings {
  authorities: Authority[];
  issuerRevocations: IssuerRevocations;
  /** The token keys the authorities sign with, per token. */
  keys: Map<HsmToken, Set<TokenKey>>;
}

/** Every CA binding of the config on the given tokens (current keys first, then previous keys). */
function bindAll(loaded: LoadedConfig, tokens: Map<string, HsmToken>, limiters: Map<string, SigningLimiter>, clock: Clock, metrics: HsmMetrics): Bindings {
  const { config } = loaded;
  const revocations = new IssuerRevocations();
  const keys = new Map<HsmToken, Set<TokenKey>>();
  const ctx = { tokens, limiters, clock, metrics, chainCandidates: chainCandidates(loaded), revocations, keys };
  // Current keys first: lookups by CA name (pre-signer, change follower) find the binding that pre-produces.
  const authorities = [
    ...config.cas.map((ca, i) => bindAuthority(loaded, ca, { caCertPath: ca.certificate, signer: ca.signer, field: `cas[${i}]`, previous: false }, ctx)),
    ...config.cas.flatMap((ca, i) =>
      ca.previousKeys.map((k, j) => bindAuthority(loaded, ca, { caCertPath: k.certificate, signer: k.signer, field: `cas[${i}].previousKeys[${j}]`, previous: true }, ctx)),
    ),
  ];
  revocations.watch(authorities);
  return { authorities, issuerRevocations: revocations, keys };
}

/** What a reload may not change about a token. */
function tokenIdentity(t: TokenConfig): string {
  return JSON.stringify([t.name, t.module, t.tokenLabel, t.sessions, t.pin, t.limits, t.signTimeout, t.healthCheckInterval, t.recovery]);
}

export class ReloadError extends Error {
  override name = 'ReloadError';
}

/**
 * The bindings of a changed config (SIGHUP) on the running tokens: certificates, keys and CA settings may change;
 * tokens may not (their sessions and logins stay). New keys are found and proved before anything is swapped.
 */
export async function rebind(current: Signing, loaded: LoadedConfig, clock: Clock, metrics: HsmMetrics): Promise<Bindings> {
  const before = [...current.tokens.values()].map((t) => t.name).sort().join(',');
  const after = loaded.config.tokens.map((t) => t.name).sort().join(',');
  if (before !== after || loaded.config.tokens.some((t) => current.tokenConfigs.get(t.name) !== tokenIdentity(t))) {
    throw new ReloadError('tokens changed: restart the daemon to apply token changes (a reload keeps the running tokens)');
  }
  const b = bindAll(loaded, current.tokens, current.limiters, clock, metrics);
  for (const token of current.tokens.values()) await token.retainKeys(b.keys.get(token) ?? new Set());
  return b;
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

/** One binding: a CA certificate (the current one, or one of previousKeys) and the key that answers for it. */
interface BindingInput {
  caCertPath: string;
  signer: CaConfig['signer'];
  /** Config path of the binding, for messages: cas[0] or cas[0].previousKeys[1]. */
  field: string;
  previous: boolean;
}

function bindAuthority(
  loaded: LoadedConfig,
  ca: CaConfig,
  b: BindingInput,
  ctx: {
    tokens: Map<string, HsmToken>; limiters: Map<string, SigningLimiter>; clock: Clock; metrics: HsmMetrics; chainCandidates: LoadedCertificate[];
    revocations: IssuerRevocations; keys: Map<HsmToken, Set<TokenKey>>;
  },
): Authority {
  const { field } = b;
  const token = ctx.tokens.get(b.signer.token)!;
  const caCert = certificateAt(loaded, b.caCertPath, `${field}.certificate`);
  const certField = b.signer.certificate ? `${field}.signer.certificate` : `${field}.certificate`;
  const signerCert = b.signer.certificate ? certificateAt(loaded, b.signer.certificate, certField) : caCert;
  if (signerCert !== caCert) checkDelegatedResponder(caCert, signerCert, certField);
  let algorithm;
  try {
    algorithm = algorithmForPublicKey(signerCert.x509.publicKey);
  } catch (e) {
    throw new StartupError(`CA "${ca.name}": ${certField}: ${(e as Error).message}`);
  }
  const keyName = 'label' in b.signer.key ? `label "${b.signer.key.label}"` : `id ${b.signer.key.id}`;
  const key = token.addKey({
    ref: b.signer.key,
    publicKey: signerCert.x509.publicKey,
    algorithm,
    describe: `CA "${ca.name}": ${field}.signer.key (${keyName} on token "${token.name}")`,
    certDescribe: `${certField} (${signerCert.x509.subject.replace(/\n/g, ', ')})`,
  });
  if (!ctx.keys.has(token)) ctx.keys.set(token, new Set());
  ctx.keys.get(token)!.add(key);
  const chain: SigningLimiter[] = [];
  if (b.signer.limits) chain.push(makeLimiter(`${token.name}/${ca.name}`, b.signer.limits, Infinity, ctx.clock, ctx.metrics));
  chain.push(ctx.limiters.get(token.name)!);
  const signer: Signer = new Pkcs11Signer(token, key);
  const d = loaded.config.defaults;
  const validityMs = ca.validity ?? d.validity;
  const archiveCutoffMs = ca.archiveCutoff ?? d.archiveCutoff;
  return makeAuthority({
    name: ca.name,
    caCert,
    signerCert,
    signer,
    limiters: chain,
    responderId: ca.responderId ?? d.responderId,
    validityMs,
    // Stored responses are keyed by CA and serial: only the current key pre-produces.
    preProduction: b.previous ? { ...preProductionOf(loaded, ca), enabled: false } : preProductionOf(loaded, ca),
    includeSignerCert: ca.includeSignerCert ?? d.includeSignerCert,
    includeCertChain: ca.includeCertChain ?? d.includeCertChain,
    signerChain: buildChain(signerCert, [caCert, ...ctx.chainCandidates]),
    policy: {
      nonIssued: ca.nonIssued ?? d.nonIssued,
      archiveCutoffMs,
      profileValidityMs: profileSettings(loaded, 'validity'),
      maxAgeMs: ca.maxAge ?? d.maxAge,
      profileMaxAgeMs: profileSettings(loaded, 'maxAge'),
      issuerRevokedAt: () => ctx.revocations.at(caCert),
    },
  });
}

/** Profiles that set `field` (a profile without it falls back to the CA's setting). */
function profileSettings(loaded: LoadedConfig, field: 'validity' | 'maxAge'): Map<string, number> {
  return new Map(
    Object.entries(loaded.config.profiles).flatMap(([id, p]) => (p[field] !== undefined ? [[id, p[field]] as [string, number]] : [])),
  );
}

/** Every configured CA certificate (current and previous keys) and the extra chain certificates. */
function chainCandidates(loaded: LoadedConfig): LoadedCertificate[] {
  const { config } = loaded;
  return [
    ...config.cas.flatMap((ca, i) => [
      certificateAt(loaded, ca.certificate, `cas[${i}].certificate`),
      ...ca.previousKeys.map((k, j) => certificateAt(loaded, k.certificate, `cas[${i}].previousKeys[${j}].certificate`)),
    ]),
    ...config.chainCertificates.map((f, i) => certificateAt(loaded, f, `chainCertificates[${i}]`)),
  ];
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
