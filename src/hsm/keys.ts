// Finds private keys on a token by CKA_LABEL and/or CKA_ID, and checks a key's type against its certificate.
import type { KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkcs11js from 'pkcs11js';
import type { KeyRef } from '../config/schema';
import { OID } from '../ocsp/oids';
import type { Handle, Pkcs11 } from './module';

export class KeyNotFoundError extends Error {
  override name = 'KeyNotFoundError';
}

/** The key is on the token but cannot sign for its certificate: another algorithm, curve or size, or no CKA_SIGN. */
export class KeyTypeMismatchError extends Error {
  override name = 'KeyTypeMismatchError';
}

/** How many existing keys a "not found" message lists: enough to spot a typo, bounded for tokens with thousands. */
const LISTED_KEYS = 20;

/** Exactly one private key must match; none or several is an error naming the reference (and, for none, what exists). */
export function findPrivateKey(p11: Pkcs11, session: Handle, ref: KeyRef): Handle {
  const template: pkcs11js.Template = [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }];
  if ('label' in ref) template.push({ type: pkcs11js.CKA_LABEL, value: ref.label });
  if (ref.id !== undefined) template.push({ type: pkcs11js.CKA_ID, value: Buffer.from(ref.id, 'hex') });
  const found = findObjects(p11, session, template, 2);
  const what = describeKeyRef(ref);
  if (found.length === 0) throw new KeyNotFoundError(`no private key with ${what} on the token; ${listPrivateKeys(p11, session)}`);
  if (found.length > 1) throw new KeyNotFoundError(`more than one private key with ${what} on the token`);
  return found[0]!;
}

export function describeKeyRef(ref: KeyRef): string {
  if (!('label' in ref)) return `id ${ref.id}`;
  return ref.id === undefined ? `label "${ref.label}"` : `label "${ref.label}" and id ${ref.id}`;
}

/** What a configured key must be: the reference, the certificate's public key, and how both are named in errors. */
export interface KeyExpectation {
  ref: KeyRef;
  publicKey: KeyObject;
  /** e.g. 'CA "one": cas[0].signer.key (label "x" on token "main")'. */
  describe: string;
  /** e.g. 'cas[0].signer.certificate (CN=…)'. */
  certDescribe: string;
}

/**
 * The private key a binding signs with, checked against its certificate before any signature is tried: a token
 * asked to sign with an RSA key as if it were EC answers with an opaque CKR_GENERAL_ERROR, this says what is wrong.
 */
export function findSigningKey(p11: Pkcs11, session: Handle, want: KeyExpectation): Handle {
  const handle = findPrivateKey(p11, session, want.ref);
  const mismatch = keyMismatch(describeKey(p11, session, handle), want.publicKey, want.describe, want.certDescribe);
  if (mismatch) throw new KeyTypeMismatchError(mismatch);
  return handle;
}

export interface KeyDescription {
  type: 'ec' | 'rsa' | 'other';
  /** EC: P-256, P-384, P-521, or the curve's OID. */
  curve?: string;
  /** RSA: modulus size in bits. */
  bits?: number;
  canSign: boolean;
  /** e.g. "EC P-256", "RSA 3072". */
  text: string;
}

/** Reads the key type, curve or modulus size of a private or public key object (none of these is sensitive). */
export function describeKey(p11: Pkcs11, session: Handle, handle: Handle): KeyDescription {
  const [cls, type] = p11.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_CLASS }, { type: pkcs11js.CKA_KEY_TYPE }]);
  let canSign = false;
  if (ulong(cls!.value as Buffer) === pkcs11js.CKO_PRIVATE_KEY) {
    const [sign] = p11.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_SIGN }]);
    canSign = (sign!.value as Buffer)[0] === 1;
  }
  const keyType = ulong(type!.value as Buffer);
  if (keyType === pkcs11js.CKK_EC) {
    const [params] = p11.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_EC_PARAMS }]);
    const curve = curveName(params!.value as Buffer);
    return { type: 'ec', curve, canSign, text: `EC ${curve}` };
  }
  if (keyType === pkcs11js.CKK_RSA) {
    const [modulus] = p11.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_MODULUS }]);
    const bits = bitLength(modulus!.value as Buffer);
    return { type: 'rsa', bits, canSign, text: `RSA ${bits}` };
  }
  return { type: 'other', canSign, text: `type-0x${keyType.toString(16)}` };
}

// CK_ULONG in host byte order (little-endian here); the values read with it are small.
function ulong(b: Buffer): number {
  return b.length >= 4 ? b.readUInt32LE(0) : b.length > 0 ? b.readUIntLE(0, b.length) : 0;
}

/** The same description for a certificate's public key. */
export function describePublicKey(key: KeyObject): Omit<KeyDescription, 'canSign'> {
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec') {
    const curve = NODE_CURVES[d.namedCurve ?? ''] ?? d.namedCurve ?? 'unknown curve';
    return { type: 'ec', curve, text: `EC ${curve}` };
  }
  if (key.asymmetricKeyType === 'rsa') return { type: 'rsa', bits: d.modulusLength, text: `RSA ${d.modulusLength}` };
  return { type: 'other', text: `${key.asymmetricKeyType}` };
}

/**
 * '<keyName> is an RSA 2048 key but the certificate in <certName> holds an EC P-256 public key', or undefined when
 * key and certificate agree on algorithm, curve and size (whether they are one pair is proved by a test signature).
 */
export function keyMismatch(key: KeyDescription, certificateKey: KeyObject, keyName: string, certName: string): string | undefined {
  const cert = describePublicKey(certificateKey);
  if (key.type !== cert.type || key.curve !== cert.curve || key.bits !== cert.bits) {
    return `${keyName} is ${article(key.text)} ${key.text} key but the certificate in ${certName} holds ${article(cert.text)} ${cert.text} public key`;
  }
  if (!key.canSign) return `${keyName} may not sign (its CKA_SIGN is false): it cannot answer for the certificate in ${certName}`;
  return undefined;
}

const NODE_CURVES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };
const CURVES_BY_OID: Record<string, string> = { [OID.p256]: 'P-256', [OID.p384]: 'P-384', '1.3.132.0.35': 'P-521' };

// CKA_EC_PARAMS is DER ECParameters: a namedCurve OID for every key this daemon can use.
function curveName(params: Buffer): string {
  const parsed = asn1js.fromBER(params);
  if (parsed.result instanceof asn1js.ObjectIdentifier) {
    const oid = parsed.result.valueBlock.toString();
    return CURVES_BY_OID[oid] ?? oid;
  }
  return 'explicit curve parameters';
}

function bitLength(n: Buffer): number {
  let i = 0;
  while (i < n.length && n[i] === 0) i++;
  if (i === n.length) return 0;
  return (n.length - i - 1) * 8 + (32 - Math.clz32(n[i]!));
}

function article(text: string): string {
  return /^[aefhilmnorsx]/i.test(text) ? 'an' : 'a';
}

function findObjects(p11: Pkcs11, session: Handle, template: pkcs11js.Template, max: number): Handle[] {
  p11.C_FindObjectsInit(session, template);
  try {
    return p11.C_FindObjects(session, max);
  } finally {
    p11.C_FindObjectsFinal(session);
  }
}

/** "private keys on it: "a" (id 01), …" — what the operator could have meant, bounded. */
function listPrivateKeys(p11: Pkcs11, session: Handle): string {
  const handles = findObjects(p11, session, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }], LISTED_KEYS + 1);
  if (handles.length === 0) return 'the token holds no private key';
  const names = handles.slice(0, LISTED_KEYS).map((h) => {
    const [label, id] = p11.C_GetAttributeValue(session, h, [{ type: pkcs11js.CKA_LABEL }, { type: pkcs11js.CKA_ID }]);
    const l = (label!.value as Buffer).toString('utf8');
    const i = (id!.value as Buffer).toString('hex');
    return `${l ? `"${l}"` : '(no label)'} (id ${i || 'none'})`;
  });
  const more = handles.length > LISTED_KEYS ? `, and more (run "ocsp-hsm keys list")` : '';
  return `private keys on it: ${names.join(', ')}${more}`;
}
