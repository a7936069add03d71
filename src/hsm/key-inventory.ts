// The key pairs a token session can see (label, id, type), a key pair found by reference, and its public key.
import type { KeyObject } from 'node:crypto';
import * as graphene from 'graphene-pk11';
import * as pkcs11js from 'pkcs11js';
import type { KeyRef } from '../config/schema';
import { describeKey, describeKeyRef, KeyNotFoundError } from './keys';
import { ecPublicKey, rsaPublicKey } from './public-key';

export interface KeyPairEntry {
  label: string;
  /** CKA_ID as lowercase hex ('' when the key has none). */
  id: string;
  /** e.g. "EC P-256", "RSA 3072". */
  type: string;
  hasPrivate: boolean;
  hasPublic: boolean;
}

/**
 * Private and public keys paired by label and id, private keys first, in the order the token returns them.
 * Without login a token shows only its public objects: those pairs have hasPrivate false.
 */
export function listKeyPairs(session: graphene.Session): KeyPairEntry[] {
  const pairs = new Map<string, KeyPairEntry>();
  for (const cls of [graphene.ObjectClass.PRIVATE_KEY, graphene.ObjectClass.PUBLIC_KEY]) {
    const found = session.find({ class: cls });
    for (let i = 0; i < found.length; i++) {
      const obj = found.items(i);
      const { label, id } = labelAndId(obj);
      const key = JSON.stringify([label, id]);
      const entry = pairs.get(key) ?? { label, id, type: describeObject(session, obj), hasPrivate: false, hasPublic: false };
      if (cls === graphene.ObjectClass.PRIVATE_KEY) entry.hasPrivate = true;
      else entry.hasPublic = true;
      pairs.set(key, entry);
    }
  }
  return [...pairs.values()];
}

/** Whether a configured reference names this pair (label, id, or both when both are given). */
export function refMatches(ref: KeyRef, pair: { label: string; id: string }): boolean {
  if ('label' in ref && ref.label !== pair.label) return false;
  return ref.id === undefined || ref.id.toLowerCase() === pair.id;
}

/** Exactly one private key must match `ref`; the error names the reference. */
export function findPrivateKeyObject(session: graphene.Session, ref: KeyRef): graphene.PrivateKey {
  const template: graphene.ITemplate = { class: graphene.ObjectClass.PRIVATE_KEY };
  if ('label' in ref) template.label = ref.label;
  if (ref.id !== undefined) template.id = Buffer.from(ref.id, 'hex');
  const found = session.find(template);
  if (found.length === 0) throw new KeyNotFoundError(`no private key with ${describeKeyRef(ref)} on the token (see "ocsp-hsm keys list")`);
  if (found.length > 1) throw new KeyNotFoundError(`more than one private key with ${describeKeyRef(ref)} on the token; name it by label and id`);
  return found.items(0).toType<graphene.PrivateKey>();
}

/**
 * The public half of a private key, from the public key object with the same CKA_ID (and label, when several share
 * the id). An RSA private key carries its modulus and exponent itself; an EC private key does not carry its point.
 */
export function publicKeyOf(session: graphene.Session, privateKey: graphene.PrivateKey): KeyObject {
  const { label, id } = labelAndId(privateKey);
  const keyType = privateKey.getAttribute('keyType') as number;
  if (keyType === graphene.KeyType.RSA) {
    return rsaPublicKey(privateKey.getAttribute('modulus') as Buffer, privateKey.getAttribute('publicExponent') as Buffer);
  }
  if (keyType !== graphene.KeyType.EC) throw new Error(`key type ${keyType} is not supported (use EC or RSA)`);
  let candidates = session.find({ class: graphene.ObjectClass.PUBLIC_KEY, id: Buffer.from(id, 'hex') });
  if (candidates.length > 1) candidates = session.find({ class: graphene.ObjectClass.PUBLIC_KEY, id: Buffer.from(id, 'hex'), label });
  if (candidates.length !== 1) {
    throw new KeyNotFoundError(`the private key "${label}" (id ${id || 'none'}) has ${candidates.length === 0 ? 'no' : 'more than one'} public key object with its id on the token`);
  }
  const pub = candidates.items(0);
  // By number: graphene reads CKA_EC_PARAMS back under another alias than the one it is set with.
  return ecPublicKey(pub.getAttribute(pkcs11js.CKA_EC_PARAMS), pub.getAttribute(pkcs11js.CKA_EC_POINT));
}

function labelAndId(obj: graphene.SessionObject): { label: string; id: string } {
  const attrs = obj.getAttribute({ label: null, id: null });
  return { label: (attrs.label as string | undefined) ?? '', id: ((attrs.id as Buffer | undefined) ?? Buffer.alloc(0)).toString('hex') };
}

function describeObject(session: graphene.Session, obj: graphene.SessionObject): string {
  try {
    return describeKey(obj.lib, session.handle, obj.handle).text;
  } catch {
    return 'unreadable';
  }
}
