// Certificate lifetimes at scrape time: seconds until each binding's signer and CA certificate expire (negative once
// expired), and whether the signer may be used now, so an alert fires weeks before clients start refusing answers.
import { Gauge, Registry } from 'prom-client';
import type { Clock } from '../clock';
import { validityOf } from '../pki/validity';
import type { Authority } from '../source/authority';
import { signerProblem } from '../source/signer-validity';

/** `authorities`: the bindings being served now (a reload replaces them). */
export function registerCertificateMetrics(registry: Registry, authorities: () => readonly Authority[], clock: Clock): void {
  const labelNames = ['ca', 'binding'] as const;
  const expiry = (name: string, help: string, cert: (a: Authority) => Authority['caCert']) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset(); // a reload may remove a binding: its series goes with it
        const now = clock.now().getTime();
        for (const a of authorities()) this.set({ ca: a.name, binding: a.binding }, (validityOf(cert(a).x509).notAfter - now) / 1000);
      },
    });
  expiry('ocsp_signer_certificate_expiry_seconds', 'Seconds until the signer certificate of each CA binding expires (negative: expired).', (a) => a.signerCert);
  expiry('ocsp_ca_certificate_expiry_seconds', 'Seconds until the CA certificate of each binding expires (negative: expired).', (a) => a.caCert);
  new Gauge({
    name: 'ocsp_signer_usable',
    help: '1 while the signer certificate of the CA binding is within its validity; 0: its requests get tryLater.',
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      const now = clock.now().getTime();
      for (const a of authorities()) this.set({ ca: a.name, binding: a.binding }, signerProblem(a, now) ? 0 : 1);
    },
  });
}
