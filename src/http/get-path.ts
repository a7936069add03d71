// Decodes the OCSP GET form: {prefix}/{url-encoding of base64(DER)} (RFC 6960 appendix A.1, RFC 9919 section 6).
import { MalformedRequestError } from '../ocsp/errors';

/**
 * `rawPath` is the request path still percent-encoded, prefix already removed. Tolerates raw '/' and '+'
 * inside the base64, %2B/%2F/%3D, base64url characters and missing padding.
 */
export function decodeGetPath(rawPath: string): Buffer {
  let text: string;
  try {
    text = decodeURIComponent(rawPath.replace(/^\/+/, ''));
  } catch {
    throw new MalformedRequestError('GET path is not valid percent-encoding');
  }
  // A '+' that went through form decoding arrives as a space.
  text = text.replace(/ /g, '+').replace(/-/g, '+').replace(/_/g, '/');
  const body = text.replace(/=+$/, '');
  if (body.length === 0) throw new MalformedRequestError('GET path holds no request');
  if (!/^[A-Za-z0-9+/]+$/.test(body) || body.length % 4 === 1) {
    throw new MalformedRequestError('GET path is not base64');
  }
  return Buffer.from(body, 'base64');
}
