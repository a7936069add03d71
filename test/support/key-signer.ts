// A Signer backed by a node:crypto private key: the software twin of Pkcs11Signer for unit tests.
import { generateKeyPairSync, KeyObject, sign } from 'node:crypto';
import { algorithmForPublicKey, SignatureAlgorithm, Signer } from '../../src/signing/signer';

export class KeyObjectSigner implements Signer {
  readonly algorithm: SignatureAlgorithm;
  signCount = 0;
  constructor(
    readonly privateKey: KeyObject,
    readonly publicKey: KeyObject,
  ) {
    this.algorithm = algorithmForPublicKey(publicKey);
  }
  async sign(data: Buffer): Promise<Buffer> {
    this.signCount++;
    return sign(this.algorithm.hash, data, this.privateKey);
  }
}

export function softwareSigner(kind: 'ec-p256' | 'ec-p384' | 'rsa-2048'): KeyObjectSigner {
  const { privateKey, publicKey } =
    kind === 'rsa-2048'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: kind === 'ec-p256' ? 'prime256v1' : 'secp384r1' });
  return new KeyObjectSigner(privateKey, publicKey);
}
