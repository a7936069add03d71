// Lets asn1js structures embed DER that is already encoded (a CertID as the client sent it, certificates,
// the responder ID) without decoding and re-encoding it on every response.
import * as asn1js from 'asn1js';
import { toArrayBuffer } from './der';

const EMPTY = new ArrayBuffer(0);

/**
 * asn1js's own RawData ignores the writer that constructed blocks pass to their children, so it only
 * works at the top level; this honours that protocol (toBER(sizeOnly, writer)).
 */
class PreEncodedBlock {
  private readonly ab: ArrayBuffer;
  constructor(der: Uint8Array) {
    this.ab = toArrayBuffer(der);
  }
  toBER(_sizeOnly?: boolean, writer?: { write(buf: ArrayBuffer): void }): ArrayBuffer {
    if (!writer) return this.ab;
    writer.write(this.ab);
    return EMPTY;
  }
}

export function preEncoded(der: Uint8Array): asn1js.BaseBlock {
  return new PreEncodedBlock(der) as unknown as asn1js.BaseBlock;
}

export function encode(block: asn1js.BaseBlock): Buffer {
  return Buffer.from(block.toBER());
}
