// Binds each CA of the config to its signer: CA certificate, token key (found and proved on the token), limiters,
// signer chain, what responses include and the status policy. Used at startup and by a reload.
import type { Clock } from '../clock';
import type { LoadedConfig } from '../config/load';
import type { CaConfig } from '../config/schema';
import { Pkcs11Signer } from '../hsm/pkcs11-signer';
import type { Signer } from '../signing/signer';
import type { SigningLimiter } from '../signing/signing-limiter';
import type { HsmToken, TokenKey } from '../hsm/token';
import type { HsmMetrics } from '../metrics/hsm-metrics';
import { buildChain } from '../pki/chain';
import type { LoadedCertificate } from '../pki/certificate';
import { Authority, makeAuthority, PreProduction } from '../source/authority';
import { IssuerRevocations } from '../source/issuer-revocations';
import { makeLimiter } from './limiter';
import { StartupError } from './startup-error';
import { BindingInput, bindingInputs, certificateAt, nonIssuedProblem, ResolvedSigner, resolveSigner } from './signer-binding';

export interface Bindings {
  authorities: Authority[];
  issuerRevocations: IssuerRevocations;
  /** The token keys the authorities sign with, per token. */
  keys: Map<HsmToken, Set<TokenKey>>;
}

/** One binding as read from the config, before it has a signer. */
export interface BindingSpec {
  ca: CaConfig;
  input: BindingInput;
  resolved: ResolvedSigner;
  /** "current" or "previousKeys[N]". */
  binding: string;
}

/**
 * Where a binding's signatures are made: on a token of this process, or in the primary process (a serving process
 * of several; cluster/remote-signer.ts). `limiters` are the permits taken before signing (empty when the process
 * that signs takes them itself).
 */
export type SignerFactory = (b: BindingSpec) => { signer: Signer; limiters: readonly SigningLimiter[] };

/** Every CA binding of the config on the given tokens (current keys first, then previous keys). */
/** `reload`: new keys are candidates, put in use only by the token's prepareKeys commit (signing.ts rebind). */
export function bindAll(loaded: LoadedConfig, tokens: Map<string, HsmToken>, limiters: Map<string, SigningLimiter>, clock: Clock, metrics: HsmMetrics, reload = false): Bindings {
  const keys = new Map<HsmToken, Set<TokenKey>>();
  const onToken: SignerFactory = ({ ca, input, resolved }) => {
    const token = tokens.get(input.signer.token)!;
    if (!keys.has(token)) keys.set(token, new Set());
    const key = reload ? token.candidateKey(resolved.keySpec, keys.get(token)!) : token.addKey(resolved.keySpec);
    keys.get(token)!.add(key);
    const chain: SigningLimiter[] = [];
    if (input.signer.limits) chain.push(makeLimiter(`${token.name}/${ca.name}`, input.signer.limits, Infinity, clock, metrics));
    chain.push(limiters.get(token.name)!);
    return { signer: new Pkcs11Signer(token, key), limiters: chain };
  };
  return { ...bindAuthorities(loaded, onToken), keys };
}

/** Every CA binding of the config, each signing through `signerFor`; current keys first, then previous keys. */
export function bindAuthorities(loaded: LoadedConfig, signerFor: SignerFactory): Omit<Bindings, 'keys'> {
  const { config } = loaded;
  const revocations = new IssuerRevocations();
  const candidates = chainCandidates(loaded);
  // Current keys first: lookups by CA name (pre-signer, change follower) find the binding that pre-produces.
  const authorities = bindingInputs(config).map(({ ca, binding }) => bindAuthority(loaded, ca, binding, signerFor, candidates, revocations));
  revocations.watch(authorities);
  return { authorities, issuerRevocations: revocations };
}

function bindAuthority(
  loaded: LoadedConfig,
  ca: CaConfig,
  b: BindingInput,
  signerFor: SignerFactory,
  chainCandidates: LoadedCertificate[],
  revocations: IssuerRevocations,
): Authority {
  const { field } = b;
  const resolved = resolveSigner(loaded, ca.name, b);
  const nonIssued = nonIssuedProblem(loaded.config, ca.name, b, resolved.caCert);
  if (nonIssued) throw new StartupError(`CA "${ca.name}": ${nonIssued}`);
  const { caCert, signerCert } = resolved;
  const binding = b.previous ? field.slice(field.indexOf('previousKeys')) : 'current';
  const { signer, limiters } = signerFor({ ca, input: b, resolved, binding });
  const d = loaded.config.defaults;
  const validityMs = ca.validity ?? d.validity;
  const archiveCutoffMs = ca.archiveCutoff ?? d.archiveCutoff;
  return makeAuthority({
    name: ca.name,
    binding,
    caCert,
    signerCert,
    signer,
    limiters,
    responderId: ca.responderId ?? d.responderId,
    compliance: ca.compliance ?? d.compliance,
    validityMs,
    // Stored responses are keyed by CA and serial: only the current key pre-produces.
    preProduction: b.previous ? { ...preProductionOf(loaded, ca), enabled: false } : preProductionOf(loaded, ca),
    includeSignerCert: ca.includeSignerCert ?? d.includeSignerCert,
    includeCertChain: ca.includeCertChain ?? d.includeCertChain,
    signerChain: buildChain(signerCert, [caCert, ...chainCandidates]),
    policy: {
      nonIssued: ca.nonIssued ?? d.nonIssued,
      archiveCutoffMs,
      profileValidityMs: profileSettings(loaded, 'validity'),
      maxAgeMs: ca.maxAge ?? d.maxAge,
      profileMaxAgeMs: profileSettings(loaded, 'maxAge'),
      issuerRevokedAt: () => revocations.at(caCert),
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
    nonce: p.nonce ?? 'ignore',
  };
}
