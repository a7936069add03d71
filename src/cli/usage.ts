// Command-line usage text and the error type for bad arguments (exit code 2).
import { redactSecrets } from '../config/redaction';
import { EXIT_USAGE, exitCodeFor } from './exit-codes';

export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * What the command prints and exits with for an error it could not handle: 2 for bad arguments, 3 or 4 for a
 * PIN the token refused or has locked (exit-codes.ts), 1 otherwise.
 * `code` is not always a string (PKCS#11 errors carry the CKR number), so it is checked before use.
 */
export function failure(e: unknown): { message: string; exitCode: number } {
  const err: Error & { code?: unknown } = e instanceof Error ? e : new Error(String(e));
  // The last line of defence: whatever an error quotes, a URL's password is not printed.
  const message = redactSecrets(err.message);
  const usage = err instanceof UsageError || (typeof err.code === 'string' && err.code.startsWith('ERR_PARSE_ARGS'));
  return usage
    ? { message: `ocsp-hsm: ${message}\nRun "ocsp-hsm --help" for usage.\n`, exitCode: EXIT_USAGE }
    : { message: `ocsp-hsm: ${message}\n`, exitCode: exitCodeFor(e) };
}

export const USAGE = `usage: ocsp-hsm <command> [options]

commands:
  serve                              run the OCSP responder
  config check                       check the config as serve would (files, certificates, store, ports,
                                     tokens, PINs, keys) without serving; one line per problem, exit 1 if any
  demo [--dir DIR] [--port N] [--setup-only]
                                     create a demo token, CA and certificates (once), then serve them
  import index --ca NAME FILE        import an OpenSSL index.txt
  import certs --ca NAME [--profile ID] FILE...
                                     import issued certificates (PEM or DER) as good
  import crl --ca NAME FILE...       apply CRLs (DER or PEM; full, then delta) verified against the CA
  crl-download [--ca NAME[,NAME]] [--force]
                                     download and apply the CRLs of CAs with cas[].crl that are due
  revoke --ca NAME --serial HEX --reason REASON [--date ISO-8601]
                                     record a revocation
  status --ca NAME --serial HEX      show what the store holds for a certificate
  presign [--ca NAME[,NAME]] [--all] produce and store responses that are missing or due for refresh
                                     (--all: re-sign every certificate); progress and ETA on stderr
  cleanup                            remove all but the latest stored response per certificate
  check --ca NAME --against FILE     compare the store with an index.txt or CRL (DER or PEM) and check the
                                     stored responses; exit 1 when anything is missing, extra or wrong
  bench --ca NAME --url URL [--duration 30s] [--connections 16] [--method GET|POST] [--nonce]
        [--certs FILE] [--sample 100] [--hash sha1|sha256] [--timeout 10s] [--json]
                                     load a running responder with requests for the CA's certificates (from
                                     the store, or FILE: PEM certificates or hex serials); print requests/s,
                                     latency percentiles and status counts, verify a sample of responses;
                                     exit 1 when a sampled response fails or no request succeeded
  keys generate --token NAME --label LABEL --type TYPE [--id HEX] [--out FILE]
                                     generate a signing key pair in a configured token (TYPE: ec-p256, ec-p384,
                                     rsa-2048, rsa-3072, rsa-4096); prints its id, URI and public key (PEM)
  keys list [--token NAME]           the tokens the config's modules show, and the key pairs on configured
                                     tokens with the CA binding using each
  cluster status [--json]            the responders sharing the store (last heartbeat, applied change, lag
                                     behind the change log, ready, live or stale) and who holds each lease
  csr --token NAME (--label LABEL | --id HEX | --key PKCS11-URI) --subject /O=.../CN=... [--out FILE]
                                     a certificate request for a delegated OCSP responder, signed in the token
                                     (the PIN always comes from the token's configured pin source)

  help, --help, -h                   this text (also after a command: ocsp-hsm serve --help)
  --version                          the version of ocsp-hsm

options for every command but demo:
  --config FILE                      config file (default: $OCSP_HSM_CONFIG, else ./ocsp-hsm.yaml)

exit codes: 0 success, 1 failure (config check: problems found), 2 bad arguments,
            3 the token refused the PIN, 4 the token's PIN is locked or expired
`;
