// Entry point of the `ocsp-hsm` command: parses argv and dispatches; exit codes in exit-codes.ts (2: usage).
import { parseArgs } from 'node:util';
import { systemClock } from '../clock';
import { loadConfig } from '../config/load';
import { bench, BENCH_OPTIONS } from './bench';
import { check } from './check';
import { clusterStatus } from './cluster-status';
import { configCheck } from './config-check';
import { crlDownload } from './crl-download';
import { csr } from './csr';
import { demo } from './demo';
import { presign, runCleanup } from './presign';
import { keysGenerate, keysList } from './keys';
import { importCerts, importCrl, importIndex, revoke, status } from './records';
import { serve } from './serve';
import { failure, USAGE, UsageError } from './usage';
import { packageVersion } from './version';

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string' },
      ca: { type: 'string' },
      serial: { type: 'string' },
      reason: { type: 'string' },
      date: { type: 'string' },
      profile: { type: 'string' },
      dir: { type: 'string' },
      port: { type: 'string' },
      'setup-only': { type: 'boolean' },
      all: { type: 'boolean' },
      against: { type: 'string' },
      force: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean' },
      token: { type: 'string' },
      label: { type: 'string' },
      id: { type: 'string' },
      key: { type: 'string' },
      type: { type: 'string' },
      subject: { type: 'string' },
      out: { type: 'string' },
      ...BENCH_OPTIONS,
    },
  });
  const [command, ...rest] = positionals;
  const out = (line: string) => void process.stdout.write(line + '\n');
  // Neither needs a config file.
  if (values.version) return out(packageVersion());
  if (values.help || command === 'help' || !command) {
    process.stdout.write(USAGE);
    if (!command && !values.help) process.exitCode = 2;
    return;
  }
  const configFile = values.config ?? process.env.OCSP_HSM_CONFIG ?? 'ocsp-hsm.yaml';
  if (command === 'config') {
    if (rest[0] !== 'check' || rest.length > 1) throw new UsageError('config needs a subcommand: "config check"');
    // Problems are the report, not a failure of the command: printed on stdout, then exit 1.
    if (!(await configCheck(configFile, { clock: systemClock, out }))) process.exitCode = 1;
    return;
  }
  const port = values.port === undefined ? undefined : parsePort(values.port);
  if (command === 'demo') {
    return demo({ dir: values.dir ?? 'demo', port: port ?? 8080, setupOnly: !!values['setup-only'], out });
  }
  const loaded = loadConfig(configFile);
  const ctx = { loaded, clock: systemClock, out };
  switch (command) {
    case 'serve':
      return serve(loaded, port === undefined ? {} : { port });
    case 'import':
      if (rest[0] === 'index') return importIndex(ctx, values.ca, rest.slice(1));
      if (rest[0] === 'certs') return importCerts(ctx, values.ca, rest.slice(1), values.profile);
      if (rest[0] === 'crl') return importCrl(ctx, values.ca, rest.slice(1));
      throw new UsageError('import needs a kind: "import index", "import certs" or "import crl"');
    case 'revoke':
      return revoke(ctx, values);
    case 'status':
      return status(ctx, values.ca, values.serial);
    case 'presign':
      return presign(ctx, { ...(values.ca ? { ca: values.ca } : {}), all: !!values.all });
    case 'cleanup':
      return runCleanup(ctx);
    case 'check':
      // Findings are not a failure of the command, but scripts must see them: exit 1 after the summary.
      if (!(await check(ctx, values.ca, values.against, rest))) process.exitCode = 1;
      return;
    case 'bench':
      // Like check: the report is printed either way; a failed verification or no success at all is exit 1.
      if (!(await bench(ctx, values, rest))) process.exitCode = 1;
      return;
    case 'keys':
      if (rest[0] === 'generate') return keysGenerate(ctx, values);
      // Like check: the listing is printed either way; a configured token that could not be listed sets the exit code.
      if (rest[0] === 'list') {
        const code = await keysList(ctx, values.token);
        if (code !== 0) process.exitCode = code;
        return;
      }
      throw new UsageError('keys needs a subcommand: "keys generate" or "keys list"');
    case 'csr':
      return csr(ctx, values);
    case 'crl-download':
      return crlDownload(ctx, { ca: values.ca, force: !!values.force });
    case 'cluster':
      if (rest[0] !== 'status' || rest.length > 1) throw new UsageError('cluster needs a subcommand: "cluster status"');
      return clusterStatus(ctx, !!values.json);
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

function parsePort(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`--port: "${text}" is not a port number`);
  return n;
}

// A closed stdout (e.g. piped into `head`) is not an error worth a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

main(process.argv.slice(2)).catch((e: unknown) => {
  const f = failure(e);
  process.stderr.write(f.message);
  process.exit(f.exitCode);
});
