// Signs through a private key inside a PKCS#11 token, off the event loop (C_SignAsync on libuv's pool).
import { createHash } from 'node:crypto';
import * as pkcs11js from 'pkcs11js';
import { rawEcdsaToDer } from '../ocsp/ecdsa';
import type { Handle } from './module';
import type { SessionPool } from './session-pool';
import type { SignatureAlgorithm, Signer } from './signer';

export class Pkcs11Signer implements Signer {
  constructor(
    private readonly pool: SessionPool,
    private readonly key: Handle,
    readonly algorithm: SignatureAlgorithm,
  ) {}

  async sign(data: Buffer): Promise<Buffer> {
    // SoftHSM2 2.6 has no CKM_ECDSA_SHA256: hash here and sign the digest with CKM_ECDSA.
    const ec = this.algorithm.keyType === 'ec';
    const input = ec ? createHash(this.algorithm.hash).update(data).digest() : data;
    const mechanism = ec ? pkcs11js.CKM_ECDSA : pkcs11js.CKM_SHA256_RSA_PKCS;
    const p11 = this.pool.p11;
    const session = await this.pool.acquire();
    try {
      p11.C_SignInit(session, { mechanism }, this.key);
      // C_Sign ends the operation whether it succeeds or fails, so the session is never left active.
      const raw = await p11.C_SignAsync(session, input, Buffer.alloc(this.algorithm.maxSignatureBytes));
      return ec ? rawEcdsaToDer(raw) : Buffer.from(raw);
    } finally {
      this.pool.release(session);
    }
  }
}

export class KeyNotFoundError extends Error {
  override name = 'KeyNotFoundError';
}

/** Finds exactly one private key by CKA_LABEL or CKA_ID. */
export function findPrivateKey(pool: SessionPool, ref: { label: string } | { id: string }): Handle {
  const p11 = pool.p11;
  const session = pool.anySession();
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
