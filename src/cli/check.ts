// `ocsp-hsm check`: one CA's store entries against an index.txt or CRL, and its stored responses against the store.
import { checkConsistency, CheckResult } from '../check/consistency-check';
import { readReference } from '../check/reference';
import { readCertificate } from '../pki/certificate';
import { IssuerRevocations } from '../source/issuer-revocations';
import { caConfig, RecordsContext, withStore } from './records';
import { UsageError } from './usage';

/** Prints one line per finding and a summary; resolves to whether the store was consistent (exit 0, else 1). */
export async function check(ctx: RecordsContext, caName: string | undefined, against: string | undefined, extra: string[]): Promise<boolean> {
  const ca = caConfig(ctx, caName);
  if (!against) throw new UsageError('--against FILE is required (an OpenSSL index.txt, or a CRL in DER or PEM)');
  if (extra.length > 0) throw new UsageError(`check takes no file arguments (got "${extra[0]}"); give the reference with --against`);
  const caCert = readCertificate(ctx.loaded.path(ca.certificate));
  const signerCert = ca.signer.certificate ? readCertificate(ctx.loaded.path(ca.signer.certificate)) : caCert;
  // Read (and for a CRL, verified) before the store is opened: a bad reference stops here.
  const reference = await readReference(against, { name: ca.name, cert: caCert });
  // The responder answers cACompromise for every certificate of a CA whose own certificate a served CA revoked:
  // stored responses may say so too.
  const revocations = new IssuerRevocations();
  revocations.watch(ctx.loaded.config.cas.flatMap((c) =>
    [c.certificate, ...c.previousKeys.map((k) => k.certificate)].map((f) => ({ name: c.name, caCert: f === ca.certificate && c === ca ? caCert : readCertificate(ctx.loaded.path(f)) })),
  ));
  const r = await withStore(ctx, async (store) => {
    await revocations.refresh(store);
    const issuerRevokedAt = revocations.at(caCert);
    return checkConsistency({
      store,
      ca: ca.name,
      reference,
      binding: { caCert, signerCert, ...(issuerRevokedAt ? { issuerRevokedAt } : {}) },
      ...((ca.compliance ?? ctx.loaded.config.defaults.compliance) === 'cabf' ? { cabfAt: ctx.clock.now() } : {}),
      report: (f) => ctx.out(`${f.kind} ${f.serial} ${f.detail}`),
    });
  });
  ctx.out(summary(r, reference.kind));
  return r.missing + r.extra + r.differing + r.badResponses === 0;
}

function summary(r: CheckResult, kind: 'index' | 'crl'): string {
  const found = r.missing + r.extra + r.differing + r.badResponses;
  const counts = found === 0
    ? 'consistent'
    : `${r.missing} missing, ${r.extra} extra, ${r.differing} differing, ${r.badResponses} bad responses`;
  const skipped = r.expiredNotOnCrl > 0 ? `, ${r.expiredNotOnCrl} revoked entries of expired certificates not expected on the CRL` : '';
  return `summary: ${counts} (${r.referenceEntries} ${kind === 'crl' ? 'CRL' : 'index'} entries, ${r.storeEntries} store entries, ${r.responsesChecked} stored responses checked${skipped})`;
}
