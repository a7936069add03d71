// Generates an OCSP signing key pair inside a token: the private key sensitive, never extractable, sign only.
import type { KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as graphene from 'graphene-pk11';
import { OID } from '../ocsp/oids';
import { AdminError } from './admin-session';
import { publicKeyOf } from './key-inventory';
import { describePkcs11Error } from './pkcs11-errors';

export const KEY_TYPES = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

export class KeyExistsError extends Error {
  override name = 'KeyExistsError';
}

export interface GeneratedKey {
  label: string;
  /** CKA_ID, lowercase hex. */
  id: string;
  publicKey: KeyObject;
}

/**
 * Refuses when a key (private or public) with the label or the id exists: two keys under one name would make the
 * daemon's lookup ambiguous, and a public key left from an earlier pair would be mistaken for the new one's.
 * Needs a logged-in read/write session.
 */
export function generateSigningKey(session: graphene.Session, type: KeyType, label: string, id: Buffer): GeneratedKey {
  for (const cls of [graphene.ObjectClass.PRIVATE_KEY, graphene.ObjectClass.PUBLIC_KEY]) {
    if (session.find({ class: cls, label }).length > 0) throw new KeyExistsError(`a key with label "${label}" already exists on the token`);
    if (session.find({ class: cls, id }).length > 0) throw new KeyExistsError(`a key with id ${id.toString('hex')} already exists on the token`);
  }
  const common: graphene.ITemplate = { token: true, label, id };
  const publicTemplate: graphene.ITemplate = { ...common, private: false, verify: true, encrypt: false, wrap: false };
  // Sign only: a responder key that could also decrypt, unwrap or derive would serve an attacker as an oracle.
  const privateTemplate: graphene.ITemplate = {
    ...common, private: true, sensitive: true, extractable: false,
    sign: true, signRecover: false, decrypt: false, unwrap: false, derive: false,
  };
  let mechanism: graphene.MechanismType;
  if (type === 'ec-p256' || type === 'ec-p384') {
    mechanism = graphene.KeyGenMechanism.EC;
    const curve = type === 'ec-p256' ? OID.p256 : OID.p384;
    publicTemplate.paramsEC = Buffer.from(new asn1js.ObjectIdentifier({ value: curve }).toBER());
  } else {
    mechanism = graphene.KeyGenMechanism.RSA;
    publicTemplate.modulusBits = Number(type.slice('rsa-'.length));
    publicTemplate.publicExponent = Buffer.from([1, 0, 1]);
  }
  let pair: graphene.IKeyPair;
  try {
    pair = session.generateKeyPair(mechanism, publicTemplate, privateTemplate);
  } catch (e) {
    throw new AdminError(`cannot generate a ${type} key pair: ${describePkcs11Error(e)}`);
  }
  try {
    return { label, id: id.toString('hex'), publicKey: publicKeyOf(session, pair.privateKey) };
  } catch (e) {
    // A pair whose public key cannot be read is of no use, and would block the label: remove it.
    for (const obj of [pair.privateKey, pair.publicKey]) {
      try {
        session.destroy(obj);
      } catch {
        // Reported below with the reason the pair is unusable.
      }
    }
    throw e;
  }
}
