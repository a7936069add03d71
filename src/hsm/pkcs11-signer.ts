// Signs with a private key inside a PKCS#11 token, through the token's session pool.
import { createHash } from 'node:crypto';
import * as pkcs11js from 'pkcs11js';
import { rawEcdsaToDer } from '../ocsp/ecdsa';
import type { SignatureAlgorithm, Signer } from '../signing/signer';
import type { HsmToken, TokenKey } from './token';

export class Pkcs11Signer implements Signer {
  readonly algorithm: SignatureAlgorithm;

  constructor(
    private readonly token: HsmToken,
    private readonly key: TokenKey,
  ) {
    this.algorithm = key.spec.algorithm;
  }

  async sign(data: Buffer): Promise<Buffer> {
    // SoftHSM2 2.6 has no CKM_ECDSA_SHA256: hash here and sign the digest with CKM_ECDSA.
    if (this.algorithm.keyType === 'ec') {
      const digest = createHash(this.algorithm.hash).update(data).digest();
      return rawEcdsaToDer(await this.token.sign(this.key, pkcs11js.CKM_ECDSA, digest, this.algorithm.maxSignatureBytes));
    }
    return this.token.sign(this.key, pkcs11js.CKM_SHA256_RSA_PKCS, data, this.algorithm.maxSignatureBytes);
  }
}
