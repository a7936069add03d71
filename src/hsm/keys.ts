// Finds private keys on a token by CKA_LABEL or CKA_ID.
import * as pkcs11js from 'pkcs11js';
import type { KeyRef } from '../config/schema';
import type { Handle, Pkcs11 } from './module';

export class KeyNotFoundError extends Error {
  override name = 'KeyNotFoundError';
}

/** Exactly one private key must match; none or several is an error naming the reference. */
export function findPrivateKey(p11: Pkcs11, session: Handle, ref: KeyRef): Handle {
  const template: pkcs11js.Template = [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }];
  if ('label' in ref) template.push({ type: pkcs11js.CKA_LABEL, value: ref.label });
  else template.push({ type: pkcs11js.CKA_ID, value: Buffer.from(ref.id, 'hex') });
  p11.C_FindObjectsInit(session, template);
  let found: Handle[];
  try {
    found = p11.C_FindObjects(session, 2);
  } finally {
    p11.C_FindObjectsFinal(session);
  }
  const what = 'label' in ref ? `label "${ref.label}"` : `id ${ref.id}`;
  if (found.length === 0) throw new KeyNotFoundError(`no private key with ${what} on the token`);
  if (found.length > 1) throw new KeyNotFoundError(`more than one private key with ${what} on the token`);
  return found[0]!;
}
