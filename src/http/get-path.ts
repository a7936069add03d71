// Decodes the OCSP GET form: {prefix}/{url-encoding of base64(DER)} (RFC 6960 appendix A.1, RFC 9919 section 6).
import { MalformedRequestError } from '../ocsp/errors';

// Both base64 alphabets, and a space: a '+' that went through form decoding arrives as one.
const BASE64_EITHER_ALPHABET = /^[A-Za-z0-9+/\-_ ]+$/;

/**
 * `rawPath` is the request path still percent-encoded, prefix already removed. Tolerates raw '/' and '+'
 * inside the base64, %2B/%2F/%3D, base64url characters and missing padding. Runs on every GET, so it
 * makes no string it does not need.
 */
export function decodeGetPath(rawPath: string): Buffer {
  let start = 0;
  while (rawPath.charCodeAt(start) === 0x2f) start++;
  let text = start ? rawPath.slice(start) : rawPath;
  if (text.includes('%')) {
    try {
      text = decodeURIComponent(text);
    } catch {
      throw new MalformedRequestError('GET path is not valid percent-encoding');
    }
  }
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 0x3d) end--;
  const body = end < text.length ? text.slice(0, end) : text;
  if (body.length === 0) throw new MalformedRequestError('GET path holds no request');
  if (!BASE64_EITHER_ALPHABET.test(body) || body.length % 4 === 1) {
    throw new MalformedRequestError('GET path is not base64');
  }
  // Node's base64 decoder reads the base64url alphabet too (RFC 4648 section 5).
  return Buffer.from(body.includes(' ') ? body.replace(/ /g, '+') : body, 'base64');
}
