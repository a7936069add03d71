// Whether a stored OCSPResponse was signed by a given key: for responses stored before the store recorded who
// signed them (StoredResponse.signer ''), checked once when read instead of trusting them after a rotation.
import { KeyObject, verify } from 'node:crypto';
import { readSingle, TAG } from './tlv';

/** OCSPResponse -> responseBytes [0] -> ResponseBytes -> response OCTET STRING -> BasicOCSPResponse. */
export function signedBy(der: Buffer, key: KeyObject, hash: 'sha256' | 'sha384'): boolean {
  try {
    const [, bytes] = readSingle(der).children();
    if (bytes?.tag !== TAG.ctxConstructed(0)) return false;
    const [responseBytes] = bytes.children();
    const [, octets] = responseBytes!.children();
    if (octets?.tag !== TAG.octetString) return false;
    const [tbs, , signature] = readSingle(octets.contents).children();
    if (!tbs || signature?.tag !== TAG.bitString || signature.octet(0) !== 0) return false;
    const sig = signature.contents.subarray(1);
    return verify(hash, tbs.der, key.asymmetricKeyType === 'ec' ? { key, dsaEncoding: 'der' } : key, sig);
  } catch {
    return false;
  }
}
