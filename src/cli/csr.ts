// `ocsp-hsm csr`: a PKCS#10 request for a delegated OCSP responder certificate, signed inside the token.
import { keyFromUri } from '../config/pkcs11-uri';
import { PUBLIC_FILE, writeFileWithMode } from '../file-modes';
import type { KeyRef } from '../config/schema';
import { findPrivateKeyObject, publicKeyOf } from '../hsm/key-inventory';
import { describeKeyRef, describePublicKey } from '../hsm/keys';
import { SessionSigner } from '../hsm/session-signer';
import { algorithmForPublicKey } from '../signing/signer';
import { csrToPem, ocspResponderCsr } from '../pki/csr';
import { parseSubject } from '../pki/subject';
import { KeysContext, parseHexId } from './keys';
import { configuredToken, withTokenSession } from './token-session';
import { UsageError } from './usage';

export interface CsrOptions {
  token?: string;
  label?: string;
  id?: string;
  key?: string;
  subject?: string;
  out?: string;
}

export async function csr(ctx: KeysContext, o: CsrOptions): Promise<void> {
  const { ref, tokenLabel } = keyOption(o);
  const tokenName = o.token ?? ctx.loaded.config.tokens.find((t) => tokenLabel !== undefined && t.tokenLabel === tokenLabel)?.name;
  const token = configuredToken(ctx.loaded, tokenName);
  if (tokenLabel !== undefined && tokenLabel !== token.config.tokenLabel) {
    throw new UsageError(`--key names token "${tokenLabel}" but --token ${token.config.name} has tokenLabel "${token.config.tokenLabel}"`);
  }
  if (!o.subject) throw new UsageError('--subject is required, e.g. --subject "/O=Example/CN=OCSP Responder"');
  let subject;
  try {
    subject = parseSubject(o.subject);
  } catch (e) {
    throw new UsageError(`--subject: ${(e as Error).message}`);
  }
  const { der, keyText } = await withTokenSession(ctx.loaded, token, false, async (s) => {
    const privateKey = findPrivateKeyObject(s.session, ref);
    const publicKey = publicKeyOf(s.session, privateKey);
    const signer = new SessionSigner(s.session, privateKey, algorithmForPublicKey(publicKey));
    return { der: await ocspResponderCsr({ subject, publicKey, signer }), keyText: describePublicKey(publicKey).text };
  });
  const pem = csrToPem(der);
  if (!o.out) {
    process.stdout.write(pem);
    return;
  }
  writeFileWithMode(o.out, pem, PUBLIC_FILE);
  ctx.out(`wrote ${o.out}: request for ${o.subject} with the ${keyText} key (${describeKeyRef(ref)}) on ${token.what}`);
}

/** --label and/or --id, or --key with a PKCS#11 URI (whose token= may stand in for --token). */
function keyOption(o: CsrOptions): { ref: KeyRef; tokenLabel?: string } {
  if (o.key !== undefined) {
    if (o.label !== undefined || o.id !== undefined) throw new UsageError('give --key URI or --label/--id, not both');
    try {
      const k = keyFromUri(o.key);
      const ref: KeyRef = k.label !== undefined ? { label: k.label, ...(k.id !== undefined ? { id: k.id } : {}) } : { id: k.id! };
      return { ref, ...(k.tokenLabel !== undefined ? { tokenLabel: k.tokenLabel } : {}) };
    } catch (e) {
      throw new UsageError(`--key: ${(e as Error).message}`);
    }
  }
  const id = o.id === undefined ? undefined : parseHexId(o.id, '--id').toString('hex');
  if (o.label !== undefined) return { ref: { label: o.label, ...(id !== undefined ? { id } : {}) } };
  if (id !== undefined) return { ref: { id } };
  throw new UsageError('name the key: --label LABEL, --id HEX (or both), or --key pkcs11:object=LABEL');
}
