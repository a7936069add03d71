// Token set-up for the demo and the tests: initialize a token and generate non-extractable key pairs in it.
import type { KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkcs11js from 'pkcs11js';
import { OID } from '../ocsp/oids';
import { findSlotByLabel, Handle, Pkcs11 } from './module';
import { ecPublicKey, rsaPublicKey } from './public-key';

export type KeySpec = 'ec-p256' | 'ec-p384' | 'rsa-2048' | 'rsa-3072';

/** Initializes a fresh token in the first free slot (SoftHSM2 always offers one) and sets the user PIN. */
export function initToken(p11: Pkcs11, label: string, soPin: string, userPin: string): Handle {
  if (findSlotByLabel(p11, label) !== undefined) throw new Error(`a token labelled "${label}" already exists`);
  const free = p11
    .C_GetSlotList(true)
    .find((slot) => !(p11.C_GetTokenInfo(slot).flags & pkcs11js.CKF_TOKEN_INITIALIZED));
  if (free === undefined) throw new Error('no uninitialized token slot is available');
  // PKCS#11 labels are exactly 32 bytes, blank padded.
  p11.C_InitToken(free, soPin, label.padEnd(32, ' '));
  const slot = findSlotByLabel(p11, label);
  if (slot === undefined) throw new Error(`token "${label}" not found after initialization`);
  const session = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
  try {
    p11.C_Login(session, pkcs11js.CKU_SO, soPin);
    p11.C_InitPIN(session, userPin);
    p11.C_Logout(session);
  } finally {
    p11.C_CloseSession(session);
  }
  return slot;
}

/**
 * Generates a key pair on the token: the private key is sensitive and never extractable.
 * Needs a logged-in read/write user session. Returns the public key for certificate issuance.
 */
export function generateKeyPair(p11: Pkcs11, session: Handle, spec: KeySpec, label: string, id: Buffer): KeyObject {
  const common = [
    { type: pkcs11js.CKA_TOKEN, value: true },
    { type: pkcs11js.CKA_LABEL, value: label },
    { type: pkcs11js.CKA_ID, value: id },
  ];
  const privateTemplate = [
    ...common,
    { type: pkcs11js.CKA_PRIVATE, value: true },
    { type: pkcs11js.CKA_SENSITIVE, value: true },
    { type: pkcs11js.CKA_EXTRACTABLE, value: false },
    { type: pkcs11js.CKA_SIGN, value: true },
    // Sign only, as `ocsp-hsm keys generate` makes them: a responder key has no other use.
    { type: pkcs11js.CKA_DECRYPT, value: false },
    { type: pkcs11js.CKA_UNWRAP, value: false },
    { type: pkcs11js.CKA_DERIVE, value: false },
  ];
  if (spec.startsWith('ec-')) {
    const curve = spec === 'ec-p256' ? OID.p256 : OID.p384;
    const params = Buffer.from(new asn1js.ObjectIdentifier({ value: curve }).toBER());
    const keys = p11.C_GenerateKeyPair(
      session,
      { mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN },
      [...common, { type: pkcs11js.CKA_EC_PARAMS, value: params }, { type: pkcs11js.CKA_VERIFY, value: true }],
      privateTemplate,
    );
    const [attr] = p11.C_GetAttributeValue(session, keys.publicKey, [{ type: pkcs11js.CKA_EC_POINT }]);
    return ecPublicKey(params, attr!.value as Buffer);
  }
  const bits = spec === 'rsa-2048' ? 2048 : 3072;
  const keys = p11.C_GenerateKeyPair(
    session,
    { mechanism: pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN },
    [
      ...common,
      { type: pkcs11js.CKA_MODULUS_BITS, value: bits },
      { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
      { type: pkcs11js.CKA_VERIFY, value: true },
    ],
    privateTemplate,
  );
  const [n, e] = p11.C_GetAttributeValue(session, keys.publicKey, [
    { type: pkcs11js.CKA_MODULUS },
    { type: pkcs11js.CKA_PUBLIC_EXPONENT },
  ]);
  return rsaPublicKey(n!.value as Buffer, e!.value as Buffer);
}
