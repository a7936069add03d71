// Proves at startup that a token key is the private half of a certificate: sign a fresh value, verify it.
import { randomBytes, verify, KeyObject } from 'node:crypto';
import type { Signer } from '../signing/signer';

export async function keyMatchesCertificate(signer: Signer, publicKey: KeyObject): Promise<boolean> {
  const probe = Buffer.concat([Buffer.from('ocsp-hsm key check '), randomBytes(32)]);
  const signature = await signer.sign(probe);
  return verify(signer.algorithm.hash, probe, publicKey, signature);
}
