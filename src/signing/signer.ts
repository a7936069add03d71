// The Signer interface every response is signed through, and the algorithms we support.
import type { KeyObject } from 'node:crypto';
import { OID } from '../ocsp/oids';
import type { SignContext } from './signing-limiter';

export interface SignatureAlgorithm {
  /** X.509 signatureAlgorithm OID (parameters absent, RFC 5758 / RFC 4055 NULL for RSA). */
  oid: string;
  hash: 'sha256' | 'sha384';
  keyType: 'ec' | 'rsa';
  /** Upper bound of the raw signature size from the token. */
  maxSignatureBytes: number;
}

export interface Signer {
  readonly algorithm: SignatureAlgorithm;
  /**
   * Signs `data` (not a digest) and returns the X.509 signature value (DER ECDSA-Sig-Value for EC).
   * `ctx` says who is waiting and until when; signers behind a limiter use it, others ignore it.
   */
  sign(data: Buffer, ctx?: SignContext): Promise<Buffer>;
}

export class UnsupportedKeyError extends Error {
  override name = 'UnsupportedKeyError';
}

/** Picks the signature algorithm for a certificate's public key: P-256/SHA-256, P-384/SHA-384, RSA>=2048/SHA-256. */
export function algorithmForPublicKey(key: KeyObject): SignatureAlgorithm {
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec') {
    if (d.namedCurve === 'prime256v1') return { oid: OID.ecdsaWithSha256, hash: 'sha256', keyType: 'ec', maxSignatureBytes: 64 };
    if (d.namedCurve === 'secp384r1') return { oid: OID.ecdsaWithSha384, hash: 'sha384', keyType: 'ec', maxSignatureBytes: 96 };
    throw new UnsupportedKeyError(`EC curve ${d.namedCurve} is not supported (use P-256 or P-384)`);
  }
  if (key.asymmetricKeyType === 'rsa') {
    const bits = d.modulusLength ?? 0;
    if (bits < 2048) throw new UnsupportedKeyError(`RSA key of ${bits} bits is too small (minimum 2048)`);
    return { oid: OID.sha256WithRsa, hash: 'sha256', keyType: 'rsa', maxSignatureBytes: Math.ceil(bits / 8) };
  }
  throw new UnsupportedKeyError(`key type ${key.asymmetricKeyType} is not supported (use EC or RSA)`);
}
