// An authority we answer for: a CA certificate bound to a signer (delegated responder or the CA key itself).
import { createHash } from 'node:crypto';
import * as asn1js from 'asn1js';
import type { SigningLimiter } from '../signing/signing-limiter';
import type { Signer } from '../signing/signer';
import { CERT_ID_HASHES, HashName } from '../ocsp/oids';
import { encode } from '../ocsp/der';
import { encodeCerts, encodeResponderId } from '../ocsp/response';
import { issuerHashes, LoadedCertificate, responderKeyHash, subjectDer } from '../pki/certificate';
import { issuedBy } from '../pki/chain';
import { Validity, validityOf } from '../pki/validity';
import type { StatusPolicy } from './status-policy';

export interface Authority {
  name: string;
  caCert: LoadedCertificate;
  /** Certificate of the key that signs responses: the delegated responder's, or the CA's own. */
  signerCert: LoadedCertificate;
  signer: Signer;
  /** Permits to take before signing (per key, then per token); empty means unlimited. */
  limiters: readonly SigningLimiter[];
  responderIdDer: Buffer;
  signatureAlgorithmDer: Buffer;
  /** Encoded BasicOCSPResponse.certs (see certificatesToInclude), or undefined for none. */
  certsDer: Buffer | undefined;
  /** Status, validity and extension rules of this binding. */
  policy: StatusPolicy;
  /** 0: responses carry no nextUpdate. */
  validityMs: number;
  preProduction: PreProduction;
  /** issuerNameHash and issuerKeyHash of the CA under each CertID hash, for CertIDs we build ourselves. */
  issuerHashes: ReadonlyMap<HashName, { nameHash: Buffer; keyHash: Buffer }>;
  /** When the CA certificate expires: final responses are produced ahead of it. */
  caNotAfter: Date;
  /** The signer certificate's validity: outside it, the binding never signs nor serves (signer-validity.ts). */
  signerValidity: Validity;
  /** Which binding of the CA this is, for messages and metrics: "current" or "previousKeys[N]". */
  binding: string;
  /** Names the signer of stored responses (hex SHA-256 of the signer certificate): another signer's are not served. */
  signerId: string;
  /** `cabf`: held to the CA/Browser Forum Baseline Requirements (README "CA/B Forum profile"). */
  compliance: 'none' | 'cabf';
}

/** Pre-produced responses for this CA (RFC 6960 section 2.5; see README "Pre-produced responses"). */
export interface PreProduction {
  enabled: boolean;
  storeOnDemand: boolean;
  onIssuance: boolean;
  onRevocation: boolean;
  hashes: readonly HashName[];
  /** Final responses are produced once the CA certificate expires within this many ms; undefined: never. */
  finalResponsesBeforeMs: number | undefined;
  /** Requests with a nonce: `whenIdle` signs them live when a permit is free at once (nonce-signing.ts); undefined: ignore. */
  nonce?: NoncePolicy;
}

export type NoncePolicy = 'ignore' | 'whenIdle';

export const NO_PRE_PRODUCTION: PreProduction = {
  enabled: false, storeOnDemand: false, onIssuance: false, onRevocation: false, hashes: ['sha1', 'sha256'], finalResponsesBeforeMs: undefined,
};

export interface AuthorityOptions {
  name: string;
  caCert: LoadedCertificate;
  signerCert: LoadedCertificate;
  signer: Signer;
  limiters?: readonly SigningLimiter[];
  responderId: 'byKey' | 'byName';
  validityMs: number;
  preProduction?: PreProduction;
  /** Default true (EJBCA ocsp.includesignercert). */
  includeSignerCert?: boolean;
  /** Default true (EJBCA ocsp.includecertchain). */
  includeCertChain?: boolean;
  /** The signer's issuers, nearest first, up to a self-signed root (see pki/chain.ts); default: the CA alone. */
  signerChain?: readonly LoadedCertificate[];
  policy?: Partial<Omit<StatusPolicy, 'validityMs'>>;
  /** Default "current". */
  binding?: string;
  /** Default "none". */
  compliance?: 'none' | 'cabf';
}

/**
 * Which certificates a response carries, as EJBCA does: the signer and its chain without the root (unless the
 * signer is the root itself); with includeCertChain off the signer alone; with includeSignerCert off none.
 */
export function certificatesToInclude(signer: LoadedCertificate, chain: readonly LoadedCertificate[], includeSignerCert: boolean, includeCertChain: boolean): LoadedCertificate[] {
  if (!includeSignerCert) return [];
  if (!includeCertChain) return [signer];
  return [signer, ...chain.filter((c) => c !== signer && !isSelfSigned(c))];
}

function isSelfSigned(c: LoadedCertificate): boolean {
  return issuedBy(c, c);
}

export function makeAuthority(o: AuthorityOptions): Authority {
  const delegated = o.signerCert !== o.caCert;
  const chain = o.signerChain ?? (delegated ? [o.caCert] : []);
  const included = certificatesToInclude(o.signerCert, chain, o.includeSignerCert ?? true, o.includeCertChain ?? true);
  const algorithm = new asn1js.Sequence({
    value: [
      new asn1js.ObjectIdentifier({ value: o.signer.algorithm.oid }),
      // RFC 4055 section 5: RSA signature algorithms carry NULL parameters; ECDSA ones none (RFC 5758).
      ...(o.signer.algorithm.keyType === 'rsa' ? [new asn1js.Null()] : []),
    ],
  });
  return {
    name: o.name,
    caCert: o.caCert,
    signerCert: o.signerCert,
    signer: o.signer,
    limiters: o.limiters ?? [],
    responderIdDer: encodeResponderId(
      o.responderId === 'byKey' ? { byKey: responderKeyHash(o.signerCert) } : { byNameDer: subjectDer(o.signerCert) },
    ),
    signatureAlgorithmDer: encode(algorithm),
    // RFC 9919 section 3.2.2: a delegated responder's certificate MUST be included (includeSignerCert's default).
    certsDer: included.length > 0 ? encodeCerts(included.map((c) => c.der)) : undefined,
    validityMs: o.validityMs,
    policy: {
      nonIssued: o.policy?.nonIssued ?? 'unknown',
      archiveCutoffMs: o.policy?.archiveCutoffMs,
      validityMs: o.validityMs,
      profileValidityMs: o.policy?.profileValidityMs ?? new Map(),
      maxAgeMs: o.policy?.maxAgeMs,
      profileMaxAgeMs: o.policy?.profileMaxAgeMs ?? new Map(),
      issuerRevokedAt: o.policy?.issuerRevokedAt ?? (() => undefined),
    },
    preProduction: o.preProduction ?? NO_PRE_PRODUCTION,
    issuerHashes: new Map(CERT_ID_HASHES.map((h) => [h, issuerHashes(o.caCert, h)])),
    caNotAfter: new Date(o.caCert.x509.validTo),
    signerValidity: validityOf(o.signerCert.x509),
    binding: o.binding ?? 'current',
    signerId: signerIdOf(o.signerCert),
    compliance: o.compliance ?? 'none',
  };
}

/** Names a signer by its certificate (hex SHA-256 of the DER), in stored responses and across processes. */
export function signerIdOf(cert: LoadedCertificate): string {
  return createHash('sha256').update(cert.der).digest('hex');
}

/** Finds the authority for a CertID by issuerNameHash + issuerKeyHash under any supported hash. */
export class AuthorityIndex {
  private readonly byHash = new Map<string, Authority>();

  constructor(readonly authorities: readonly Authority[]) {
    for (const a of authorities) {
      for (const hash of CERT_ID_HASHES) {
        const h = issuerHashes(a.caCert, hash);
        this.byHash.set(key(hash, h.nameHash, h.keyHash), a);
      }
    }
  }

  find(hash: HashName | undefined, nameHash: Buffer, keyHash: Buffer): Authority | undefined {
    return hash && this.byHash.get(key(hash, nameHash, keyHash));
  }
}

// latin1: one character per byte, the cheapest string a Buffer makes (this runs on every request).
function key(hash: HashName, nameHash: Buffer, keyHash: Buffer): string {
  return `${hash}:${nameHash.toString('latin1')}:${keyHash.toString('latin1')}`;
}
