// DER tag-length-value framing for the request path. Values are still encoded by asn1js (at startup, or once
// per distinct value); only the framing of already-encoded parts is done here, because asn1js costs about
// 80 µs to decode an OCSP request and 110 µs to encode a response (measured on the 2-core CI machine) while
// a bare node:http round trip costs 17 µs: asn1js would dominate the responder's CPU. Tests cross-check every
// shape against asn1js, pkijs and openssl.

/** How many octets the DER length of `n` takes (X.690 section 10.1: definite form, minimal number of octets). */
export function lengthSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x1000000 ? 4 : 5;
}

/** Writes the identifier octet and DER length of a `len`-octet value at `off`; returns where the value starts. */
export function writeHeader(out: Buffer, off: number, tag: number, len: number): number {
  out[off++] = tag;
  const size = lengthSize(len);
  if (size === 1) {
    out[off++] = len;
    return off;
  }
  out[off++] = 0x80 | (size - 1);
  for (let shift = (size - 2) * 8; shift >= 0; shift -= 8) out[off++] = Math.floor(len / 2 ** shift) & 0xff;
  return off;
}

/**
 * One TLV with the given identifier octet around already-encoded contents, in a single allocation: a response
 * is some twenty of these, and three buffers per TLV (tag, length, concatenation) showed in the live profile.
 */
export function tlv(tag: number, ...contents: Uint8Array[]): Buffer {
  let len = 0;
  for (const c of contents) len += c.length;
  const out = Buffer.allocUnsafe(1 + lengthSize(len) + len);
  let off = writeHeader(out, 0, tag, len);
  for (const c of contents) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

export const TAG = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  enumerated: 0x0a,
  sequence: 0x30,
  /** [n] IMPLICIT primitive, [n] EXPLICIT/constructed. */
  ctxPrimitive: (n: number) => 0x80 | n,
  ctxConstructed: (n: number) => 0xa0 | n,
} as const;

/**
 * One element, as offsets into the buffer it was read from: a request is parsed without slicing a Buffer
 * for every element (each slice is an object); callers slice only what they keep.
 */
export class Element {
  constructor(
    readonly tag: number,
    private readonly buf: Buffer,
    private readonly start: number,
    private readonly bodyStart: number,
    private readonly end: number,
  ) {}

  /** Whole element (identifier, length, contents). */
  get der(): Buffer {
    return this.buf.subarray(this.start, this.end);
  }

  get contents(): Buffer {
    return this.buf.subarray(this.bodyStart, this.end);
  }

  get contentLength(): number {
    return this.end - this.bodyStart;
  }

  /** Contents octet i (undefined past the end). */
  octet(i: number): number | undefined {
    return i < this.contentLength ? this.buf[this.bodyStart + i] : undefined;
  }

  contentsHex(): string {
    return this.buf.toString('hex', this.bodyStart, this.end);
  }

  /** The elements inside a constructed element's contents, all of them, nothing left over. */
  children(): Element[] {
    if (!(this.tag & 0x20)) throw new DerError('not a constructed element');
    const out: Element[] = [];
    for (let off = this.bodyStart; off < this.end; ) {
      const r = readElementIn(this.buf, off, this.end);
      out.push(r.el);
      off = r.next;
    }
    return out;
  }
}

export class DerError extends Error {
  override name = 'DerError';
}

/**
 * Reads one element at `offset` strictly: single-octet tags only (all OCSP request tags are), definite
 * minimal lengths, contents within bounds. Returns the element and the offset after it.
 */
export function readElement(buf: Buffer, offset: number): { el: Element; next: number } {
  return readElementIn(buf, offset, buf.length);
}

/** As readElement, with `limit` as the end of the enclosing contents. */
function readElementIn(buf: Buffer, offset: number, limit: number): { el: Element; next: number } {
  if (offset + 2 > limit) throw new DerError('truncated element');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-octet tag');
  let len = buf[offset + 1]!;
  let header = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) throw new DerError('indefinite length');
    if (n > 4 || offset + 2 + n > limit) throw new DerError('bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[offset + 2 + i]!;
    if (len < 0x80 || buf[offset + 2] === 0) throw new DerError('non-minimal length');
    header += n;
  }
  const end = offset + header + len;
  if (end > limit) throw new DerError('truncated element');
  return { el: new Element(tag, buf, offset, offset + header, end), next: end };
}

/** The elements inside a constructed element's contents, all of them, nothing left over. */
export function children(el: Element): Element[] {
  return el.children();
}

/** The single element that makes up `buf`. */
export function readSingle(buf: Buffer): Element {
  const { el, next } = readElement(buf, 0);
  if (next !== buf.length) throw new DerError('trailing data');
  return el;
}
