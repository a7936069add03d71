// DER rules on values (X.690 sections 8, 10 and 11) that the framing in tlv.ts does not see: what leaves each value
// one encoding. The request parser applies them to the fields it reads, and checkDerTree to the parts it ignores,
// so that nothing BER gets in and only proven DER is echoed (issue 16: a CertID with a padded serial was echoed
// into answers OpenSSL and pyca/cryptography could not read).
import { DerError, Element, TAG } from './tlv';

/** INTEGER and ENUMERATED contents: one octet at least, the first nine bits not all equal (section 8.3.2). */
export function checkInteger(el: Element, what: string): void {
  const n = el.contentLength;
  if (n === 0) throw new DerError(`${what}: INTEGER of no octets (X.690 section 8.3.1)`);
  if (n === 1) return;
  const first = el.octet(0)!;
  const second = el.octet(1)!;
  if ((first === 0x00 && !(second & 0x80)) || (first === 0xff && second & 0x80)) {
    throw new DerError(`${what}: INTEGER with a redundant leading 0x${first.toString(16).padStart(2, '0')} octet (X.690 section 8.3.2)`);
  }
}

/** OBJECT IDENTIFIER contents: each subidentifier in as few octets as possible, the last one complete (8.19.2). */
export function checkOid(el: Element, what: string): void {
  const n = el.contentLength;
  if (n === 0) throw new DerError(`${what}: OBJECT IDENTIFIER of no octets (X.690 section 8.19)`);
  let startsSubidentifier = true;
  for (let i = 0; i < n; i++) {
    const o = el.octet(i)!;
    if (startsSubidentifier && o === 0x80) throw new DerError(`${what}: OBJECT IDENTIFIER subidentifier padded with 0x80 (X.690 section 8.19.2)`);
    startsSubidentifier = !(o & 0x80);
  }
  if (!startsSubidentifier) throw new DerError(`${what}: OBJECT IDENTIFIER ends inside a subidentifier (X.690 section 8.19.2)`);
}

/** BOOLEAN contents: one octet, 0x00 or 0xFF (section 11.1). */
export function checkBoolean(el: Element, what: string): void {
  const v = el.octet(0);
  if (el.contentLength !== 1 || (v !== 0x00 && v !== 0xff)) throw new DerError(`${what}: BOOLEAN other than 0x00 or 0xFF (X.690 section 11.1)`);
}

function checkNull(el: Element, what: string): void {
  if (el.contentLength !== 0) throw new DerError(`${what}: NULL with contents (X.690 section 8.8.2)`);
}

/** BIT STRING contents: the unused-bit count 0..7 (0 when empty), the unused bits zero (sections 8.6.2, 11.2.1). */
function checkBitString(el: Element, what: string): void {
  const n = el.contentLength;
  const unused = el.octet(0);
  if (unused === undefined || unused > 7 || (n === 1 && unused !== 0) || (n > 1 && el.octet(n - 1)! & ((1 << unused) - 1))) {
    throw new DerError(`${what}: BIT STRING with a bad unused-bit count or unused bits set (X.690 sections 8.6.2, 11.2.1)`);
  }
}

const UNIVERSAL = 0x00;
const CONSTRUCTED = 0x20;

/**
 * Every element in `root`, at any depth: the framing tlv.ts checks, the value rules above for the universal types
 * that have them, and no constructed form but SEQUENCE and SET (strings are primitive in DER, section 10.2).
 * Not checked: the order of SET OF components (section 11.6), the contents of strings and times. Iterative, so
 * deep nesting costs no stack.
 */
export function checkDerTree(root: Element, what: string): void {
  const pending: Element[] = [root];
  for (let el = pending.pop(); el; el = pending.pop()) {
    const tag = el.tag;
    if (tag & CONSTRUCTED) {
      if ((tag & 0xc0) === UNIVERSAL && tag !== TAG.sequence && tag !== 0x31) {
        throw new DerError(`${what}: universal type ${tag & 0x1f} in the constructed form (X.690 section 10.2)`);
      }
      for (const child of el.children()) pending.push(child);
      continue;
    }
    if ((tag & 0xc0) !== UNIVERSAL) continue; // context-specific IMPLICIT values: their type is not known here
    switch (tag) {
      case TAG.boolean: checkBoolean(el, what); break;
      case TAG.integer: case TAG.enumerated: checkInteger(el, what); break;
      case TAG.bitString: checkBitString(el, what); break;
      case TAG.null: checkNull(el, what); break;
      case TAG.oid: checkOid(el, what); break;
      case 0x00: case 0x10: case 0x11: throw new DerError(`${what}: universal type ${tag} in the primitive form`);
      default: break; // strings and times: contents not checked
    }
  }
}
