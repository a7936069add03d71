// The CRL download service (EJBCA's CRLDownloadService): per CA, fetch the CRL once the last one's nextUpdate has
// passed, verify and apply it, then fetch and apply the delta CRL its Freshest CRL extension points to.
import type { Clock } from '../clock';
import { redactSecrets } from '../config/redaction';
import type { CrlDownloadConfig } from '../config/schema';
import type { LoadedCertificate } from '../pki/certificate';
import { CrlError, crlBlocks, readCrl } from '../pki/crl';
import { AppliedCrl, CrlKind, CrlStateStore, StaleCrlError } from '../store/crl-state';
import type { StatusStore } from '../store/status-store';
import { AppliedCrlResult, applyCrls, describeCrl, VerifiedCrl } from './crl-apply';
import { DownloadError, Fetch, httpGet } from './http-get';

export interface CrlDownloadCa {
  name: string;
  certificate: LoadedCertificate;
  crl: CrlDownloadConfig;
}

/** What one step (the full CRL, or the delta CRL) did for a CA. */
export type StepOutcome =
  | { status: 'applied'; url: string; applied: AppliedCrlResult[] }
  | { status: 'not-due'; nextUpdate: Date }
  /** The CRLs found were older than those applied (other URLs may have failed): ignored, nothing changed. */
  | { status: 'stale'; message: string }
  /** Nothing applied: download, size, signature or issuer problems, one per URL tried. */
  | { status: 'failed'; message: string };

export interface CaOutcome {
  ca: string;
  full: StepOutcome;
  /** Absent when the last full CRL names no http Freshest CRL URL. */
  delta?: StepOutcome;
}

export interface CrlDownloadOptions {
  store: StatusStore & CrlStateStore;
  cas: CrlDownloadCa[];
  clock: Clock;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** How bodies are fetched; default node:http(s) with the CA's maxSize and timeout. */
  fetch?: Fetch;
  /** Called after a CRL changed the store, so this process's caches hear of it (SQLite tells other processes only). */
  onApplied?: () => void;
}

export class CrlDownloadService {
  private readonly fetch: Fetch;

  constructor(private readonly o: CrlDownloadOptions) {
    this.fetch = o.fetch ?? httpGet(o.clock);
  }

  /** One pass over the CAs (all, or those named); `force` downloads whatever the last nextUpdate says. */
  async runOnce(opts: { cas?: string[]; force?: boolean } = {}): Promise<CaOutcome[]> {
    const cas = opts.cas ? this.o.cas.filter((c) => opts.cas!.includes(c.name)) : this.o.cas;
    const out: CaOutcome[] = [];
    for (const ca of cas) out.push(await this.runCa(ca, opts.force === true || ca.crl.ignoreNextUpdate));
    return out;
  }

  private async runCa(ca: CrlDownloadCa, always: boolean): Promise<CaOutcome> {
    const now = this.o.clock.now();
    const before = await this.o.store.lastCrls(ca.name);
    const full = !always && before.full && fresh(before.full, now) ? notDue(before.full) : await this.fetchAndApply(ca, ca.crl.urls, 'full');
    const last = full.status === 'applied' ? await this.o.store.lastCrls(ca.name) : before;
    const urls = last.full?.freshestCrlUrls ?? [];
    if (urls.length === 0) return { ca: ca.name, full };
    // A new full CRL starts a new delta sequence: its delta is fetched at once.
    const deltaDue = always || full.status === 'applied' || !last.delta || !fresh(last.delta, now);
    return { ca: ca.name, full, delta: deltaDue ? await this.fetchAndApply(ca, urls, 'delta') : notDue(last.delta!) };
  }

  /** Tries the URLs in order until one yields a CRL of `kind` that is applied. Store failures are thrown. */
  private async fetchAndApply(ca: CrlDownloadCa, urls: string[], kind: CrlKind): Promise<StepOutcome> {
    const stale: string[] = [];
    const failed: string[] = [];
    for (const url of urls) {
      // A URL may carry a password (http://user:password@…, basic authentication): logs and messages get it masked.
      const shown = redactSecrets(url);
      try {
        const crls = await this.download(ca, url, kind);
        const applied = await applyCrls(this.o.store, ca.name, crls);
        this.o.onApplied?.();
        for (const a of applied) this.o.log.info({ ca: ca.name, url: shown, crl: describeCrl(a.crl), entries: a.crl.entries.length, ...a.result }, 'CRL applied');
        return { status: 'applied', url: shown, applied };
      } catch (e) {
        if (e instanceof StaleCrlError) stale.push(redactSecrets(e.message));
        else if (e instanceof CrlError || e instanceof DownloadError) failed.push(redactSecrets(e.message));
        else throw e;
      }
    }
    // A CRL that was reached but is not newer means the store is up to date, whatever other URLs did.
    const message = [...stale, ...failed].join('; ');
    if (stale.length > 0) {
      this.o.log.info({ ca: ca.name, kind, reason: message }, 'downloaded CRL is not newer than the one applied: ignored');
      return { status: 'stale', message };
    }
    this.o.log.warn({ ca: ca.name, kind, err: message }, 'CRL download failed: nothing changed');
    return { status: 'failed', message };
  }

  private async download(ca: CrlDownloadCa, url: string, kind: CrlKind): Promise<VerifiedCrl[]> {
    const body = await this.fetch(url, { maxBytes: ca.crl.maxSize, timeoutMs: ca.crl.timeout });
    const crls: VerifiedCrl[] = [];
    for (const der of crlBlocks(body, url)) {
      const crl = await readCrl(der, ca.certificate, url);
      if (crl.isDelta !== (kind === 'delta')) {
        const where = kind === 'full' ? 'in crl.urls' : 'as a Freshest CRL URL';
        throw new CrlError(`${url}: a ${crl.isDelta ? 'delta' : 'full'} CRL where a ${kind} CRL was expected (${where})`, 'unsupported');
      }
      crls.push({ crl, where: url });
    }
    return crls;
  }
}

/** The daemon's hook: one pass over the CAs due, outcomes already logged by the service. */
export function crlDownloadJob(service: CrlDownloadService, cas?: string[]): () => Promise<void> {
  return async () => void (await service.runOnce(cas ? { cas } : {}));
}

function fresh(c: AppliedCrl, now: Date): boolean {
  return c.nextUpdate !== undefined && now.getTime() < c.nextUpdate.getTime();
}

function notDue(c: AppliedCrl): StepOutcome {
  return { status: 'not-due', nextUpdate: c.nextUpdate! };
}
