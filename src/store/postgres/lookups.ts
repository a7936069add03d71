// The request path's lookups on PostgreSQL, many keys per query (lookup-batcher.ts gathers them): each statement is
// prepared once per connection (named), and its rows come back as arrays of cheap-to-read text.
import type { Pool } from 'pg';
import type { HashName } from '../../ocsp/oids';
import type { StoredResponse } from '../response-store';
import type { CertificateRecord } from '../status-store';
import * as rows from './rows';

export type ResponseLookup = [ca: string, serial: string, hash: HashName];
export type CertificateLookup = [ca: string, serial: string];

// The latest response per key (the primary key's index, read backwards), with the key's position (WITH
// ORDINALITY) to match rows to lookups. Times as epoch milliseconds and DER as base64: node-postgres reads every
// column as text, and a timestamp's or a hex bytea's text costs several times more to turn back into a value.
const RESPONSES_BY_KEYS = {
  name: 'ocsp-hsm-responses-by-keys',
  text: `SELECT k.i, (extract(epoch FROM r.produced_at) * 1000)::int8, (extract(epoch FROM r.this_update) * 1000)::int8,
      (extract(epoch FROM r.next_update) * 1000)::int8, r.final, encode(r.cert_id, 'base64'), encode(r.der, 'base64'),
      r.profile, r.status_seq, r.signer
    FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS k(ca, serial, hash, i)
    CROSS JOIN LATERAL (SELECT * FROM responses WHERE ca = k.ca AND serial = k.serial AND hash = k.hash
      ORDER BY produced_at DESC LIMIT 1) r`,
  rowMode: 'array',
};
type ResponseLookupRow = [i: string, producedAt: string, thisUpdate: string, nextUpdate: string, final: boolean, certId: string, der: string,
  profile: string | null, statusSeq: string, signer: string];

const CERTIFICATES_BY_KEYS = {
  name: 'ocsp-hsm-certificates-by-keys',
  text: `SELECT k.i, c.* FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(ca, serial, i)
    JOIN certificates c ON c.ca = k.ca AND c.serial = k.serial`,
};

/** The latest stored response for each key, in the keys' order (undefined: none). */
export async function responsesByKeys(pool: Pool, keys: ResponseLookup[]): Promise<(StoredResponse | undefined)[]> {
  const { rows: found } = await pool.query<ResponseLookupRow>({
    ...RESPONSES_BY_KEYS,
    values: [keys.map((k) => k[0]), keys.map((k) => k[1]), keys.map((k) => k[2])],
  });
  const out: (StoredResponse | undefined)[] = new Array(keys.length).fill(undefined);
  for (const row of found) {
    const i = Number(row[0]) - 1;
    out[i] = fromLookupRow(keys[i]!, row);
  }
  return out;
}

/** The certificate record for each key, in the keys' order (undefined: none). */
export async function certificatesByKeys(pool: Pool, keys: CertificateLookup[]): Promise<(CertificateRecord | undefined)[]> {
  const { rows: found } = await pool.query<rows.CertificateRow & { i: string }>({
    ...CERTIFICATES_BY_KEYS,
    values: [keys.map((k) => k[0]), keys.map((k) => k[1])],
  });
  const out: (CertificateRecord | undefined)[] = new Array(keys.length).fill(undefined);
  for (const row of found) out[Number(row.i) - 1] = rows.fromCertificateRow(row);
  return out;
}

function fromLookupRow([ca, serial, hash]: ResponseLookup, row: ResponseLookupRow): StoredResponse {
  const [, producedAt, thisUpdate, nextUpdate, final, certId, der, profile, statusSeq, signer] = row;
  const r: StoredResponse = {
    ca, serial, hash, certIdDer: Buffer.from(certId, 'base64'), der: Buffer.from(der, 'base64'),
    producedAt: new Date(Number(producedAt)), thisUpdate: new Date(Number(thisUpdate)), nextUpdate: new Date(Number(nextUpdate)),
    final, statusVersion: Number(statusSeq), signer,
  };
  if (profile !== null) r.profile = profile;
  return r;
}
