// Converts a PKCS#11 ECDSA signature (raw r||s) to the DER ECDSA-Sig-Value X.509 expects (RFC 5480 section 2.2.3),
// like @peculiar/x509's EC signature formatter; on the request path, so framed with tlv.ts.
import { tlv, TAG } from './tlv';

export function rawEcdsaToDer(raw: Uint8Array): Buffer {
  if (raw.length === 0 || raw.length % 2 !== 0) throw new RangeError(`raw ECDSA signature has odd length ${raw.length}`);
  const half = raw.length / 2;
  return tlv(TAG.sequence, positiveInteger(raw.subarray(0, half)), positiveInteger(raw.subarray(half)));
}

// INTEGER is two's complement: strip leading zeros, then add one back if the sign bit would be set.
function positiveInteger(bytes: Uint8Array): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const v = Buffer.from(bytes.buffer, bytes.byteOffset + i, bytes.length - i);
  return tlv(TAG.integer, ...(v[0]! & 0x80 ? [Buffer.from([0]), v] : [v]));
}
