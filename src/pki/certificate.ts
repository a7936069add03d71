// Loads X.509 certificates (PEM or DER) and derives the identifiers OCSP needs from them.
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as pkijs from 'pkijs';
import { toBuffer } from '../ocsp/der';
import type { HashName } from '../ocsp/oids';

export interface LoadedCertificate {
  der: Buffer;
  cert: pkijs.Certificate;
  x509: X509Certificate;
}

export function parseCertificate(der: Buffer): LoadedCertificate {
  return { der, cert: pkijs.Certificate.fromBER(der), x509: new X509Certificate(der) };
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/g;

/** Every certificate in a PEM bundle, or the one certificate of a DER file. */
export function readCertificates(file: string): LoadedCertificate[] {
  const data = readFileSync(file);
  const text = data.toString('latin1');
  if (text.includes('-----BEGIN')) return certificatesFromPem(text, file);
  return [parseOrExplain(data, file)];
}

/** Every CERTIFICATE block of PEM text; `where` names its origin in errors (a file, a request field). */
export function certificatesFromPem(text: string, where: string): LoadedCertificate[] {
  const ders = [...text.matchAll(PEM_CERT)].map((m) => Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
  if (ders.length === 0) throw new Error(`${where}: no PEM CERTIFICATE block found`);
  return ders.map((d, i) => parseOrExplain(d, `${where} (certificate ${i + 1})`));
}

export function readCertificate(file: string): LoadedCertificate {
  const certs = readCertificates(file);
  if (certs.length !== 1) throw new Error(`${file}: expected one certificate, found ${certs.length}`);
  return certs[0]!;
}

function parseOrExplain(der: Buffer, where: string): LoadedCertificate {
  try {
    return parseCertificate(der);
  } catch (e) {
    throw new Error(`${where}: not a valid X.509 certificate (${(e as Error).message})`);
  }
}

export function toPem(der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

/** DER of the subject Name exactly as encoded in the certificate. */
export function subjectDer(c: LoadedCertificate): Buffer {
  return Buffer.from(c.cert.subject.valueBeforeDecode);
}

/** The subjectPublicKey BIT STRING value (no unused-bits octet): input of issuerKeyHash and ResponderID byKey. */
export function subjectPublicKeyBits(c: LoadedCertificate): Buffer {
  return toBuffer(c.cert.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView);
}

/** RFC 6960 section 4.1.1: issuerNameHash and issuerKeyHash for a CA certificate under one hash. */
export function issuerHashes(ca: LoadedCertificate, hash: HashName): { nameHash: Buffer; keyHash: Buffer } {
  return {
    nameHash: createHash(hash).update(subjectDer(ca)).digest(),
    keyHash: createHash(hash).update(subjectPublicKeyBits(ca)).digest(),
  };
}

/** RFC 6960 section 4.2.1: ResponderID byKey is the SHA-1 of the signer's subjectPublicKey bits. */
export function responderKeyHash(signer: LoadedCertificate): Buffer {
  return createHash('sha1').update(subjectPublicKeyBits(signer)).digest();
}
