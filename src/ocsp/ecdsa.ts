// Converts a PKCS#11 ECDSA signature (raw r||s) to the DER ECDSA-Sig-Value X.509 expects (RFC 5480 section 2.2.3),
// like @peculiar/x509's EC signature formatter; on the request path, so framed with tlv.ts.
import { lengthSize, TAG, writeHeader } from './tlv';

export function rawEcdsaToDer(raw: Uint8Array): Buffer {
  if (raw.length === 0 || raw.length % 2 !== 0) throw new RangeError(`raw ECDSA signature has odd length ${raw.length}`);
  const half = raw.length / 2;
  const r = integer(raw, 0, half);
  const s = integer(raw, half, raw.length);
  const len = 2 + r.pad + r.end - r.start + 2 + s.pad + s.end - s.start;
  const out = Buffer.allocUnsafe(1 + lengthSize(len) + len);
  let off = writeHeader(out, 0, TAG.sequence, len);
  for (const v of [r, s]) {
    out[off++] = TAG.integer;
    out[off++] = v.pad + v.end - v.start; // at most 67 octets (P-521): the short form
    if (v.pad) out[off++] = 0;
    out.set(raw.subarray(v.start, v.end), off);
    off += v.end - v.start;
  }
  return out;
}

// INTEGER is two's complement: strip leading zeros, then add one back if the sign bit would be set.
function integer(raw: Uint8Array, start: number, end: number): { start: number; end: number; pad: number } {
  while (start < end - 1 && raw[start] === 0) start++;
  return { start, end, pad: raw[start]! & 0x80 ? 1 : 0 };
}
