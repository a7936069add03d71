// Command-line usage text and the error type for bad arguments (exit code 2).

export class UsageError extends Error {
  override name = 'UsageError';
}

export const USAGE = `usage: ocsp-hsm <command> [options]

commands:
  serve                              run the OCSP responder
  demo [--dir DIR] [--port N] [--setup-only]
                                     create a demo token, CA and certificates (once), then serve them
  import index --ca NAME FILE        import an OpenSSL index.txt
  import certs --ca NAME [--profile ID] FILE...
                                     import issued certificates (PEM or DER) as good
  revoke --ca NAME --serial HEX --reason REASON [--date ISO-8601]
                                     record a revocation
  status --ca NAME --serial HEX      show what the store holds for a certificate
  presign [--ca NAME[,NAME]] [--all] produce and store responses that are missing or due for refresh
                                     (--all: re-sign every certificate); progress and ETA on stderr
  cleanup                            remove all but the latest stored response per certificate

options for every command but demo:
  --config FILE                      config file (default: $OCSP_HSM_CONFIG, else ./ocsp-hsm.yaml)
`;
