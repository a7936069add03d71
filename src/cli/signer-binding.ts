// One CA binding's certificates and key, read and checked before any token is touched: the CA certificate, the
// signer certificate (a delegated responder's checked against its CA) and the key spec a token proves against it.
// Shared by the daemon (bindings.ts, which stops at the first problem) and `config check` (which reports each).
import type { LoadedConfig } from '../config/load';
import type { CaConfig, Config } from '../config/schema';
import { algorithmForPublicKey } from '../signing/signer';
import type { TokenKeySpec } from '../hsm/token';
import { nonIssuedGoodProblem } from '../compliance/non-issued';
import { OID } from '../ocsp/oids';
import { LoadedCertificate, readCertificate } from '../pki/certificate';
import { StartupError } from './startup-error';

/** One binding: a CA certificate (the current one, or one of previousKeys) and the key that answers for it. */
export interface BindingInput {
  caCertPath: string;
  signer: CaConfig['signer'];
  /** Config path of the binding, for messages: cas[0] or cas[0].previousKeys[1]. */
  field: string;
  previous: boolean;
}

/** Every binding of the config, current keys first (lookups by CA name find the binding that pre-produces). */
export function bindingInputs(config: Config): { ca: CaConfig; binding: BindingInput }[] {
  return [
    ...config.cas.map((ca, i) => ({ ca, binding: { caCertPath: ca.certificate, signer: ca.signer, field: `cas[${i}]`, previous: false } })),
    ...config.cas.flatMap((ca, i) =>
      ca.previousKeys.map((k, j) => ({ ca, binding: { caCertPath: k.certificate, signer: k.signer, field: `cas[${i}].previousKeys[${j}]`, previous: true } })),
    ),
  ];
}

export interface ResolvedSigner {
  caCert: LoadedCertificate;
  /** The CA certificate itself when the CA key signs. */
  signerCert: LoadedCertificate;
  /** Config field of the signer certificate: `<binding>.signer.certificate`, or `<binding>.certificate`. */
  certField: string;
  /** What the token must find and prove (a test signature verified with signerCert's public key). */
  keySpec: TokenKeySpec;
}

/** Throws a StartupError naming the field at the first problem. */
export function resolveSigner(loaded: LoadedConfig, caName: string, b: BindingInput): ResolvedSigner {
  const { field } = b;
  const caCert = certificateAt(loaded, b.caCertPath, `${field}.certificate`);
  const certField = b.signer.certificate ? `${field}.signer.certificate` : `${field}.certificate`;
  const signerCert = b.signer.certificate ? certificateAt(loaded, b.signer.certificate, certField) : caCert;
  if (signerCert !== caCert) checkDelegatedResponder(caCert, signerCert, certField);
  let algorithm;
  try {
    algorithm = algorithmForPublicKey(signerCert.x509.publicKey);
  } catch (e) {
    throw new StartupError(`CA "${caName}": ${certField}: ${(e as Error).message}`);
  }
  const keyName = 'label' in b.signer.key ? `label "${b.signer.key.label}"` : `id ${b.signer.key.id}`;
  const keySpec: TokenKeySpec = {
    ref: b.signer.key,
    publicKey: signerCert.x509.publicKey,
    algorithm,
    describe: `CA "${caName}": ${field}.signer.key (${keyName} on token "${b.signer.token}")`,
    certDescribe: `${certField} (${signerCert.x509.subject.replace(/\n/g, ', ')})`,
  };
  return { caCert, signerCert, certField, keySpec };
}

/**
 * compliance: cabf with nonIssued: good needs a Technically Constrained CA (compliance/non-issued.ts): the refusal,
 * naming the field, or undefined. Serve stops on it; config check reports it and goes on.
 */
export function nonIssuedProblem(config: Config, caName: string, b: BindingInput, caCert: LoadedCertificate): string | undefined {
  const i = config.cas.findIndex((c) => c.name === caName);
  const ca = config.cas[i];
  // The CA's current certificate decides (previousKeys are the same CA).
  if (!ca || b.previous || (ca.compliance ?? config.defaults.compliance) !== 'cabf' || (ca.nonIssued ?? config.defaults.nonIssued) !== 'good') return undefined;
  return nonIssuedGoodProblem(ca.nonIssued !== undefined ? `cas[${i}].nonIssued` : 'defaults.nonIssued', `${b.field}.certificate`, caCert);
}

export function certificateAt(loaded: LoadedConfig, p: string, field: string): LoadedCertificate {
  try {
    return readCertificate(loaded.path(p));
  } catch (e) {
    throw new StartupError(`${field}: ${(e as Error).message}`);
  }
}

// RFC 6960 section 4.2.2.2: a delegated responder is issued directly by the CA and carries id-kp-OCSPSigning.
export function checkDelegatedResponder(ca: LoadedCertificate, responder: LoadedCertificate, field: string): void {
  if (!responder.x509.checkIssued(ca.x509) || !responder.x509.verify(ca.x509.publicKey)) {
    throw new StartupError(`${field}: responder certificate was not issued by the CA certificate`);
  }
  if (!(responder.x509.keyUsage ?? []).includes(OID.kpOcspSigning)) {
    throw new StartupError(`${field}: responder certificate lacks extended key usage id-kp-OCSPSigning`);
  }
}
