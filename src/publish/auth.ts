// Who may publish: a bearer token (read from a file at startup, compared in constant time) or a TLS client
// certificate the listener verified against the configured CA bundle.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import type { RequestHandler } from 'express';

export class PublishingStartupError extends Error {
  override name = 'PublishingStartupError';
}

/**
 * The token in `file`, without its trailing newline. Errors name `field` and the file, never the content.
 * `warn` hears of a file others can read, as for PIN files.
 */
export function readBearerToken(file: string, field: string, warn: (message: string) => void): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
    if (statSync(file).mode & 0o044) warn(`${field}: token file ${file} is readable by group or others`);
  } catch (e) {
    throw new PublishingStartupError(`${field}: cannot read token file ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  const token = text.replace(/\r?\n$/, '');
  if (!token) throw new PublishingStartupError(`${field}: token file ${file} is empty`);
  // RFC 6750 section 2.1: the token travels in a header as b64token; anything else could never match.
  if (!/^[A-Za-z0-9\-._~+/]+=*$/.test(token)) {
    throw new PublishingStartupError(`${field}: token file ${file} must hold one line of letters, digits and -._~+/ (e.g. openssl rand -hex 32)`);
  }
  return token;
}

/** Both sides hashed first: equal lengths for timingSafeEqual, and no early exit that tells how much matched. */
export function bearerAuth(token: string, refused: (reason: string) => void): RequestHandler {
  const expected = digest(token);
  return (req, res, next) => {
    const m = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '');
    const ok = timingSafeEqual(digest(m?.[1] ?? ''), expected) && m !== null;
    if (ok) return next();
    refused(m ? 'wrong bearer token' : 'no bearer token');
    res.status(401).set('WWW-Authenticate', 'Bearer realm="ocsp-hsm publishing"').json({ error: 'a valid bearer token is required' });
  };
}

/**
 * The TLS layer already refused clients without a certificate from the CA (requestCert, rejectUnauthorized); this
 * holds the line should the listener ever be set up otherwise.
 */
export function clientCertificateAuth(refused: (reason: string) => void): RequestHandler {
  return (req, res, next) => {
    const socket = req.socket as Partial<TLSSocket>;
    if (socket.encrypted && socket.authorized) return next();
    refused('no verified client certificate');
    res.status(401).json({ error: 'a client certificate issued by the configured CA is required' });
  };
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}
