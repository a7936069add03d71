// The publishing API's request bodies: issuance and revocation events, validated into typed events or refused
// with a PublishError naming the field.
import { z } from 'zod';
import { parseReason, ReasonName } from '../ocsp/reasons';
import { parseSerial } from '../ocsp/serial';
import { certificatesFromPem, LoadedCertificate } from '../pki/certificate';
import { PublishError } from './errors';

/** A certificate the CA issued: by serial (with what the CA says of it), or as the certificate itself. */
export type IssuanceEvent = (
  | { serial: string; notAfter?: Date; profile?: string }
  | { certificate: LoadedCertificate; profile?: string }
) & {
  /** When the CA first published the certificate or its precertificate (BR 4.9.9's 15 minutes count from it). */
  publishedAt?: Date;
};

export interface RevocationEvent {
  serial: string;
  revokedAt: Date;
  reason: ReasonName;
}

/** As the CLI allows for `revoke --date`: a CA's clock a little ahead of ours is not an error. */
const FUTURE_SKEW_MS = 60_000;

// Offsets required: a time without one would be read in this machine's zone, which the CA does not know.
const isoDate = z
  .string({ invalid_type_error: 'expected an ISO 8601 date string, e.g. "2026-01-15T10:00:00Z"' })
  .datetime({ offset: true, message: 'expected an ISO 8601 date with a time zone, e.g. "2026-01-15T10:00:00Z"' })
  .transform((s, ctx) => {
    const d = new Date(s);
    // zod takes offsets up to ±99:99, Date none past ±23:59: an Invalid Date was stored as a revocation time.
    if (!Number.isNaN(d.getTime())) return d;
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'time zone offset out of range (at most ±23:59)' });
    return z.NEVER;
  });
const serial = z.string({ invalid_type_error: 'expected a hex string, e.g. "1a2b"' }).transform((s, ctx) => convert(s, parseSerial, ctx));
const profile = z.string().min(1).max(128);

const issuance = z
  .object({
    serial: serial.optional(),
    certificate: z.string({ invalid_type_error: 'expected a PEM certificate string' }).optional(),
    notAfter: isoDate.optional(),
    profile: profile.optional(),
    publishedAt: isoDate.optional(),
  })
  .strict()
  .superRefine((b, ctx) => {
    if ((b.serial === undefined) === (b.certificate === undefined)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['serial'], message: 'give exactly one of serial (hex) or certificate (PEM)' });
    } else if (b.certificate !== undefined && b.notAfter !== undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['notAfter'], message: 'not allowed with certificate: it is read from the certificate' });
    }
  });

const revocation = z
  .object({
    serial,
    revokedAt: isoDate,
    reason: z.string({ invalid_type_error: 'expected a reason name, e.g. "keyCompromise"' }).transform((s, ctx) => convert(s, parseReason, ctx)),
  })
  .strict();

/** `now` bounds publishedAt, as it does revokedAt (the publisher's clock: Publisher.parseIssuance). */
export function parseIssuance(body: unknown, now?: Date): IssuanceEvent {
  const b = check(issuance, body);
  if (now && b.publishedAt && b.publishedAt.getTime() > now.getTime() + FUTURE_SKEW_MS) {
    throw new PublishError(400, 'publishedAt', `${b.publishedAt.toISOString()} is in the future`);
  }
  const extra = { ...(b.profile !== undefined ? { profile: b.profile } : {}), ...(b.publishedAt ? { publishedAt: b.publishedAt } : {}) };
  if (b.certificate !== undefined) return { certificate: oneCertificate(b.certificate), ...extra };
  return { serial: b.serial!, ...(b.notAfter ? { notAfter: b.notAfter } : {}), ...extra };
}

/** `now` bounds revokedAt: a revocation recorded ahead of time would be answered before it happened. */
export function parseRevocation(body: unknown, now: Date): RevocationEvent {
  const ev = check(revocation, body);
  if (ev.revokedAt.getTime() > now.getTime() + FUTURE_SKEW_MS) {
    throw new PublishError(400, 'revokedAt', `${ev.revokedAt.toISOString()} is in the future`);
  }
  return ev;
}

/** A serial from a URL path segment. */
export function serialParam(text: string): string {
  try {
    return parseSerial(text);
  } catch (e) {
    throw new PublishError(400, 'serial', (e as Error).message);
  }
}

function oneCertificate(pem: string): LoadedCertificate {
  let certs: LoadedCertificate[];
  try {
    certs = certificatesFromPem(pem, 'certificate');
  } catch (e) {
    throw new PublishError(400, 'certificate', (e as Error).message);
  }
  if (certs.length !== 1) throw new PublishError(400, 'certificate', `expected one PEM certificate, found ${certs.length}`);
  return certs[0]!;
}

function check<T extends z.ZodTypeAny>(schema: T, body: unknown): z.output<T> {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  if (issue.code === z.ZodIssueCode.unrecognized_keys) {
    throw new PublishError(400, issue.keys[0], `unknown field "${issue.keys[0]}"`);
  }
  const field = issue.path.length === 0 ? '(body)' : issue.path.join('.');
  let message = issue.message;
  if (issue.code === z.ZodIssueCode.invalid_type && issue.path.length === 0) message = 'expected a JSON object';
  else if (issue.code === z.ZodIssueCode.invalid_type && issue.received === 'undefined') message = 'required';
  throw new PublishError(400, field, message);
}

function convert<T>(s: string, parse: (s: string) => T, ctx: z.RefinementCtx): T {
  try {
    return parse(s);
  } catch (e) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: (e as Error).message });
    return z.NEVER;
  }
}
