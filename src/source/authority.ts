// An authority we answer for: a CA certificate bound to a signer (delegated responder or the CA key itself).
import type * as pkijs from 'pkijs';
import * as asn1js from 'asn1js';
import * as pkijsRuntime from 'pkijs';
import type { Signer } from '../hsm/signer';
import { CERT_ID_HASHES, HashName } from '../ocsp/oids';
import type { ResponderId } from '../ocsp/response';
import { issuerHashes, LoadedCertificate, responderKeyHash } from '../pki/certificate';

export interface Authority {
  name: string;
  caCert: LoadedCertificate;
  /** Certificate of the key that signs responses: the delegated responder's, or the CA's own. */
  signerCert: LoadedCertificate;
  signer: Signer;
  responderId: ResponderId;
  signatureAlgorithm: pkijs.AlgorithmIdentifier;
  /** Certificates placed in BasicOCSPResponse.certs. */
  certs: pkijs.Certificate[];
  validityMs: number;
}

export interface AuthorityOptions {
  name: string;
  caCert: LoadedCertificate;
  signerCert: LoadedCertificate;
  signer: Signer;
  responderId: 'byKey' | 'byName';
  validityMs: number;
}

export function makeAuthority(o: AuthorityOptions): Authority {
  const delegated = o.signerCert !== o.caCert;
  return {
    name: o.name,
    caCert: o.caCert,
    signerCert: o.signerCert,
    signer: o.signer,
    responderId:
      o.responderId === 'byKey' ? { byKey: responderKeyHash(o.signerCert) } : { byName: o.signerCert.cert.subject },
    signatureAlgorithm: new pkijsRuntime.AlgorithmIdentifier({
      algorithmId: o.signer.algorithm.oid,
      ...(o.signer.algorithm.keyType === 'rsa' ? { algorithmParams: new asn1js.Null() } : {}),
    }),
    // RFC 9919 section 3.2.2: a delegated responder's certificate MUST be included.
    certs: delegated ? [o.signerCert.cert] : [],
    validityMs: o.validityMs,
  };
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

function key(hash: HashName, nameHash: Buffer, keyHash: Buffer): string {
  return `${hash}:${nameHash.toString('hex')}:${keyHash.toString('hex')}`;
}
