// Every fuzz target, in the order `npm test` and `npm run bench -- fuzz` run them.
import type { FuzzTarget } from '../fuzz-target';
import { configTarget } from './config';
import { crlTarget } from './crl';
import { getPathTarget } from './get-path';
import { ocspHttpTarget } from './ocsp-http';
import { ocspRequestTarget } from './ocsp-request';
import { opensslIndexTarget } from './openssl-index';
import { publishEventTarget } from './publish-event';

export const TARGETS: readonly FuzzTarget[] = [
  ocspRequestTarget, getPathTarget, ocspHttpTarget, publishEventTarget, crlTarget, opensslIndexTarget, configTarget,
];
