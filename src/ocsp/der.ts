// Conversions between the byte containers Node, asn1js and pkijs use.

export function toBuffer(ab: ArrayBuffer | Uint8Array): Buffer {
  return ab instanceof Uint8Array ? Buffer.from(ab.buffer, ab.byteOffset, ab.byteLength) : Buffer.from(ab);
}

export function toArrayBuffer(b: Uint8Array): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}
