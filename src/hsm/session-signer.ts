// Signs inside the token over one administration session (a CSR), with the same mechanisms as the daemon.
import { createHash } from 'node:crypto';
import * as graphene from 'graphene-pk11';
import { rawEcdsaToDer } from '../ocsp/ecdsa';
import { describePkcs11Error } from './pkcs11-errors';
import type { SignatureAlgorithm, Signer } from '../signing/signer';

export class SessionSigner implements Signer {
  constructor(
    private readonly session: graphene.Session,
    private readonly key: graphene.PrivateKey,
    readonly algorithm: SignatureAlgorithm,
  ) {}

  async sign(data: Buffer): Promise<Buffer> {
    try {
      // As pkcs11-signer.ts: SoftHSM2 2.6 has no CKM_ECDSA_SHA256, so the digest is made here and signed with CKM_ECDSA.
      if (this.algorithm.keyType === 'ec') {
        const digest = createHash(this.algorithm.hash).update(data).digest();
        return rawEcdsaToDer(this.session.createSign('ECDSA', this.key).once(digest));
      }
      return this.session.createSign('SHA256_RSA_PKCS', this.key).once(data);
    } catch (e) {
      throw new Error(`signing in the token failed: ${describePkcs11Error(e)}`, { cause: e });
    }
  }
}
