// Downloads a body over http(s) with a size ceiling and a deadline: never buffers more than the ceiling.
import * as http from 'node:http';
import * as https from 'node:https';
import type { Clock } from '../clock';

export class DownloadError extends Error {
  override name = 'DownloadError';
}

/** The body went over the ceiling: the download was cut off there. */
export class TooLargeError extends DownloadError {
  override name = 'TooLargeError';
}

export type Fetch = (url: string, o: { maxBytes: number; timeoutMs: number }) => Promise<Buffer>;

/** A GET answered 200 with its body; anything else (redirects too) is a DownloadError naming the URL. */
export function httpGet(clock: Clock): Fetch {
  return (url, { maxBytes, timeoutMs }) =>
    new Promise<Buffer>((resolve, reject) => {
      let settled = false;
      let req: http.ClientRequest | undefined;
      const fail = (e: Error) => {
        if (settled) return;
        settled = true;
        deadline.cancel();
        req?.destroy();
        reject(e);
      };
      const deadline = clock.setTimer(() => fail(new DownloadError(`${url}: no complete answer within ${timeoutMs} ms`)), timeoutMs);
      const onResponse = (res: http.IncomingMessage) => {
        if (res.statusCode !== 200) {
          res.resume();
          return fail(new DownloadError(`${url}: HTTP ${res.statusCode}${res.headers.location ? ' (redirects are not followed)' : ''}`));
        }
        const declared = Number(res.headers['content-length']);
        if (declared > maxBytes) return fail(new TooLargeError(`${url}: ${declared} bytes, over the limit of ${maxBytes} (crl.maxSize)`));
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBytes) return fail(new TooLargeError(`${url}: more than ${maxBytes} bytes, the limit (crl.maxSize); download cut off`));
          chunks.push(chunk);
        });
        res.on('end', () => {
          if (!res.complete) return fail(new DownloadError(`${url}: connection closed before the whole body arrived`));
          if (settled) return;
          settled = true;
          deadline.cancel();
          resolve(Buffer.concat(chunks));
        });
        res.on('error', (e) => fail(new DownloadError(`${url}: ${e.message}`)));
      };
      try {
        req = (url.startsWith('https:') ? https.get : http.get)(url, onResponse);
      } catch (e) {
        return fail(new DownloadError(`${url}: ${(e as Error).message}`));
      }
      req.on('error', (e) => fail(new DownloadError(`${url}: ${e.message}`)));
    });
}
