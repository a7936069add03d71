// Which CA certificates we answer for are themselves revoked for a key-compromise reason (RFC 6960 section 2.7,
// EJBCA "Revoked CA certificates"): their status lives in the store under the CA that issued them, when we serve
// that CA too. Kept in memory, read again when the change follower sees a change to one of them.
import type { LoadedCertificate } from '../pki/certificate';
import { issuedBy } from '../pki/chain';
import { parseSerial } from '../ocsp/serial';
import type { StatusStore } from '../store/status-store';
import { ISSUER_COMPROMISE_REASONS } from './status-policy';

interface Watched {
  caCert: LoadedCertificate;
  /** The configured CA that issued caCert: its records hold caCert's status. */
  parentName: string;
  serial: string;
}

export class IssuerRevocations {
  private readonly revokedAt = new Map<LoadedCertificate, Date>();
  private readonly watched: Watched[] = [];

  /** Call once the bindings exist: each CA certificate with a configured issuer among `cas` is watched. */
  watch(cas: readonly { name: string; caCert: LoadedCertificate }[]): void {
    for (const child of cas) {
      if (this.watched.some((w) => w.caCert === child.caCert)) continue;
      const parent = cas.find((p) => p.caCert !== child.caCert && issuedBy(child.caCert, p.caCert));
      if (parent) this.watched.push({ caCert: child.caCert, parentName: parent.name, serial: parseSerial(child.caCert.x509.serialNumber) });
    }
  }

  /** When `caCert` was revoked for a compromise reason, or undefined. Cheap: on every request. */
  at(caCert: LoadedCertificate): Date | undefined {
    return this.revokedAt.get(caCert);
  }

  /** Whether a status change of (ca, serial) is one of the watched CA certificates. */
  concerns(ca: string, serial: string): boolean {
    return this.watched.some((w) => w.parentName === ca && w.serial === serial);
  }

  /** Reads every watched CA certificate's status; true when any changed. */
  async refresh(store: Pick<StatusStore, 'getCertificate'>): Promise<boolean> {
    let changed = false;
    for (const w of this.watched) {
      const rec = await store.getCertificate(w.parentName, w.serial);
      const at = rec?.status === 'revoked' && ISSUER_COMPROMISE_REASONS.has(rec.reason) ? (rec.revokedAt ?? new Date(0)) : undefined;
      if (at?.getTime() === this.revokedAt.get(w.caCert)?.getTime()) continue;
      changed = true;
      if (at) this.revokedAt.set(w.caCert, at);
      else this.revokedAt.delete(w.caCert);
    }
    return changed;
  }
}
