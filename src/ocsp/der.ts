// Strict DER decoding on top of asn1js: whole input consumed, definite lengths only.
import * as asn1js from 'asn1js';

export type Asn1 = asn1js.AsnType;

/** Decodes one DER element; returns undefined when the input is not a single well-formed element. */
export function decodeDer(der: Uint8Array): Asn1 | undefined {
  if (der.length === 0) return undefined;
  const parsed = asn1js.fromBER(der);
  if (parsed.offset === -1 || parsed.offset !== der.length) return undefined;
  if (hasIndefiniteLength(parsed.result)) return undefined;
  return parsed.result;
}

// Only constructed blocks have children on the wire. asn1js also decodes OCTET/BIT STRING contents
// speculatively into valueBlock.value; those bytes are opaque data (a nonce), never to be judged as DER.
function hasIndefiniteLength(block: asn1js.AsnType): boolean {
  const b = block as asn1js.BaseBlock & { valueBlock: { value?: unknown } };
  if (b.lenBlock?.isIndefiniteForm) return true;
  if (!b.idBlock?.isConstructed) return false;
  const children = b.valueBlock?.value;
  return Array.isArray(children) && children.some((c) => hasIndefiniteLength(c as asn1js.AsnType));
}

export function toBuffer(ab: ArrayBuffer | Uint8Array): Buffer {
  return ab instanceof Uint8Array ? Buffer.from(ab.buffer, ab.byteOffset, ab.byteLength) : Buffer.from(ab);
}

export function toArrayBuffer(b: Uint8Array): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}
