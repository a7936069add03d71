// Converts a PKCS#11 ECDSA signature (raw r||s) to the DER ECDSA-Sig-Value X.509 expects (RFC 5480 section 2.2.3).
import * as asn1js from 'asn1js';

export function rawEcdsaToDer(raw: Uint8Array): Buffer {
  if (raw.length === 0 || raw.length % 2 !== 0) throw new RangeError(`raw ECDSA signature has odd length ${raw.length}`);
  const half = raw.length / 2;
  const seq = new asn1js.Sequence({
    value: [positiveInteger(raw.subarray(0, half)), positiveInteger(raw.subarray(half))],
  });
  return Buffer.from(seq.toBER());
}

// INTEGER is two's complement: strip leading zeros, then add one back if the sign bit would be set.
function positiveInteger(bytes: Uint8Array): asn1js.Integer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  let v = bytes.subarray(i);
  if (v[0]! & 0x80) {
    const padded = new Uint8Array(v.length + 1);
    padded.set(v, 1);
    v = padded;
  }
  return new asn1js.Integer({ valueHex: v });
}
