// Conversions between the byte containers Node, asn1js and pkijs use, and asn1js blocks to DER.

export function toBuffer(ab: ArrayBuffer | Uint8Array): Buffer {
  return ab instanceof Uint8Array ? Buffer.from(ab.buffer, ab.byteOffset, ab.byteLength) : Buffer.from(ab);
}

export function toArrayBuffer(b: Uint8Array): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

/** DER of an asn1js block. */
export function encode(block: { toBER(): ArrayBuffer }): Buffer {
  return Buffer.from(block.toBER());
}
