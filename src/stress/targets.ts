// The serials a stress run asks about: a random sample of one CA's store entries, or those of a file.
import { readFileSync } from 'node:fs';
import { parseSerial } from '../ocsp/serial';
import { certificatesFromPem, LoadedCertificate } from '../pki/certificate';
import { issuedBy } from '../pki/chain';
import type { StatusStore } from '../store/status-store';
import { Reservoir } from './reservoir';

/** How many serials a run picks from: enough to spread load over a CA, little enough to hold in memory. */
export const MAX_TARGETS = 10_000;
const PAGE = 1000;

/** A uniform sample of at most `max` serials of the CA, walking the whole CA page by page. */
export async function serialsFromStore(store: StatusStore, ca: string, max = MAX_TARGETS, random: () => number = Math.random): Promise<string[]> {
  const sample = new Reservoir<string>(max, random);
  for (let after = ''; ; ) {
    const page = await store.listCertificates(ca, after, PAGE);
    for (const r of page) sample.offer(r.serial);
    if (page.length < PAGE) break;
    after = page[page.length - 1]!.serial;
  }
  return [...sample.items()];
}

/**
 * PEM certificates (each must be issued by the CA: the requests name it as issuer), or hex serials one per line
 * (blank lines and # comments skipped). Errors name the file, and the line or certificate.
 */
export function serialsFromFile(file: string, ca: LoadedCertificate): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'latin1');
  } catch (e) {
    throw new Error(`--certs: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  if (text.includes('-----BEGIN')) {
    return certificatesFromPem(text, file).map((c, i) => {
      if (!issuedBy(c, ca)) throw new Error(`${file} (certificate ${i + 1}): not issued by the CA's certificate`);
      return parseSerial(c.x509.serialNumber);
    });
  }
  const serials: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) return;
    try {
      serials.push(parseSerial(line));
    } catch (e) {
      throw new Error(`${file}:${i + 1}: ${(e as Error).message}`);
    }
  });
  if (serials.length === 0) throw new Error(`${file}: no certificates or serials in it`);
  return serials;
}
