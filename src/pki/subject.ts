// Distinguished names written as `openssl req -subj` takes them ("/C=DE/O=Example/CN=OCSP responder").
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

export class SubjectError extends Error {
  override name = 'SubjectError';
}

/** Short names openssl knows, with the string type RFC 5280 (appendix A) wants for each. */
const ATTRIBUTES: Record<string, { oid: string; kind: 'printable' | 'ia5' | 'utf8' }> = {
  C: { oid: '2.5.4.6', kind: 'printable' },
  ST: { oid: '2.5.4.8', kind: 'utf8' },
  L: { oid: '2.5.4.7', kind: 'utf8' },
  O: { oid: '2.5.4.10', kind: 'utf8' },
  OU: { oid: '2.5.4.11', kind: 'utf8' },
  CN: { oid: '2.5.4.3', kind: 'utf8' },
  serialNumber: { oid: '2.5.4.5', kind: 'printable' },
  organizationIdentifier: { oid: '2.5.4.97', kind: 'utf8' },
  DC: { oid: '0.9.2342.19200300.100.1.25', kind: 'ia5' },
  emailAddress: { oid: '1.2.840.113549.1.9.1', kind: 'ia5' },
};

export interface SubjectAttribute {
  name: string;
  value: string;
}

/** Splits "/A=x/B=y" into attributes, in order; a backslash escapes the next character (as in openssl). */
export function parseSubject(text: string): SubjectAttribute[] {
  if (!text.startsWith('/')) throw new SubjectError(`"${text}" is not a subject like "/O=Example/CN=OCSP responder" (it must start with "/")`);
  const parts: string[] = [];
  let current = '';
  for (let i = 1; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '\\' && i + 1 < text.length) current += text[++i];
    else if (ch === '/') {
      parts.push(current);
      current = '';
    } else current += ch;
  }
  parts.push(current);
  const attrs = parts.map((p) => {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new SubjectError(`"${p}" in the subject is not NAME=VALUE`);
    const name = p.slice(0, eq);
    const value = p.slice(eq + 1);
    if (!ATTRIBUTES[name]) throw new SubjectError(`unknown subject attribute "${name}" (known: ${Object.keys(ATTRIBUTES).join(', ')})`);
    if (value === '') throw new SubjectError(`subject attribute ${name} is empty`);
    if (ATTRIBUTES[name]!.kind === 'printable' && !/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(value)) {
      throw new SubjectError(`subject attribute ${name}="${value}" has characters a PrintableString cannot hold`);
    }
    if (name === 'C' && !/^[A-Z]{2}$/.test(value)) throw new SubjectError(`subject attribute C="${value}" is not a two-letter country code`);
    return { name, value };
  });
  if (!attrs.some((a) => a.name === 'CN' || a.name === 'O')) throw new SubjectError('the subject needs at least CN= or O=');
  return attrs;
}

/** The subject as a Name, one attribute per RDN (pkijs would put them all in one multi-valued RDN). */
export function subjectName(attrs: SubjectAttribute[]): pkijs.RelativeDistinguishedNames {
  const rdns = attrs.map(({ name, value }) => {
    const { oid, kind } = ATTRIBUTES[name]!;
    const str = kind === 'printable' ? new asn1js.PrintableString({ value }) : kind === 'ia5' ? new asn1js.IA5String({ value }) : new asn1js.Utf8String({ value });
    return new asn1js.Set({ value: [new pkijs.AttributeTypeAndValue({ type: oid, value: str }).toSchema()] });
  });
  return new pkijs.RelativeDistinguishedNames({ schema: asn1js.fromBER(new asn1js.Sequence({ value: rdns }).toBER()).result });
}
