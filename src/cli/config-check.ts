// `ocsp-hsm config check`: everything `serve` checks before it listens, each problem reported on a line of its own
// naming the field, without serving: schema, certificates and their validity, delegated responders, publishing
// files, the store, the listen addresses, then the tokens, their PINs and keys. Uses the checks serve uses.
import type { X509Certificate } from 'node:crypto';
import type { Clock } from '../clock';
import { ConfigError, LoadedConfig, loadConfig } from '../config/load';
import { finalizeModules } from '../hsm/module';
import { expiresWithin, validityProblem } from '../pki/validity';
import { readBearerToken } from '../publish/auth';
import { publishingTls } from '../publish/server';
import { CheckReport } from './check-report';
import { listenAddresses, listenProblems } from './listen-check';
import { bindingInputs, certificateAt, nonIssuedProblem, resolveSigner } from './signer-binding';
import { storeProblems } from './store-check';
import { checkToken, KeyToCheck } from './token-check';

export interface ConfigCheckDeps {
  clock: Clock;
  out: (line: string) => void;
}

/** Prints the findings and a summary; true when there is no problem (warnings allowed). */
export async function configCheck(file: string, deps: ConfigCheckDeps): Promise<boolean> {
  const report = new CheckReport(deps.out);
  let loaded: LoadedConfig;
  try {
    loaded = loadConfig(file);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    // Nothing further can be checked without a valid config.
    for (const p of e.problems) report.problem(p);
    return report.finish(file);
  }
  try {
    const keys = checkCertificates(loaded, deps.clock, report);
    checkPublishingFiles(loaded, report);
    for (const p of await storeProblems(loaded)) report.problem(p);
    for (const p of await listenProblems(listenAddresses(loaded.config))) report.problem(p);
    for (const [i, t] of loaded.config.tokens.entries()) {
      await checkToken(loaded, t, i, keys.filter((k) => k.token === t.name), deps.clock, report);
    }
  } finally {
    finalizeModules();
  }
  return report.finish(file);
}

/** Each binding's certificates, as the daemon reads them, and their validity; returns the keys to prove. */
function checkCertificates(loaded: LoadedConfig, clock: Clock, report: CheckReport): (KeyToCheck & { token: string })[] {
  const { config } = loaded;
  const keys: (KeyToCheck & { token: string })[] = [];
  const nowMs = clock.now().getTime();
  const warnMs = config.certificates.expiryWarning;
  for (const { ca, binding } of bindingInputs(config)) {
    const keyField = `${binding.field}.signer.key`;
    let resolved;
    try {
      resolved = resolveSigner(loaded, ca.name, binding);
    } catch (e) {
      report.problem((e as Error).message);
      report.skipped(`${keyField}: not checked without a usable certificate to prove it against`);
      continue;
    }
    // Only the signer's validity decides whether the binding answers: a CA certificate that expired (a previous
    // key, a CA past its end with final responses) is still answered for, so it is a warning.
    const nonIssued = nonIssuedProblem(config, ca.name, binding, resolved.caCert);
    if (nonIssued) report.problem(nonIssued);
    const delegated = resolved.signerCert !== resolved.caCert;
    checkValidity(resolved.caCert.x509, `${binding.field}.certificate`, nowMs, warnMs, report, delegated);
    if (delegated) checkValidity(resolved.signerCert.x509, resolved.certField, nowMs, warnMs, report);
    keys.push({ field: keyField, spec: resolved.keySpec, token: binding.signer.token });
  }
  config.chainCertificates.forEach((f, i) => {
    try {
      certificateAt(loaded, f, `chainCertificates[${i}]`);
    } catch (e) {
      report.problem((e as Error).message);
    }
  });
  return keys;
}

/** A signer outside its validity period: a problem (the daemon will not sign with it). Expiring soon: a warning. */
function checkValidity(x509: X509Certificate, field: string, nowMs: number, warnMs: number, report: CheckReport, onlyWarn = false): void {
  const problem = validityProblem(x509, nowMs);
  if (problem && onlyWarn) return report.warning(`${field}: ${problem} (its signer still answers for it)`);
  if (problem) return report.problem(`${field}: ${problem} (its requests would get tryLater)`);
  const left = expiresWithin(x509, nowMs, warnMs);
  if (left !== undefined) {
    const days = Math.floor(left / 86_400_000);
    report.warning(`${field}: certificate expires at ${new Date(nowMs + left).toISOString()} (in ${days} day${days === 1 ? '' : 's'}; certificates.expiryWarning)`);
  }
}

function checkPublishingFiles(loaded: LoadedConfig, report: CheckReport): void {
  const auth = loaded.config.publishing?.auth;
  if (!auth) return;
  try {
    if ('tokenFile' in auth) readBearerToken(loaded.path(auth.tokenFile), 'publishing.auth.tokenFile', (m) => report.warning(m));
    else publishingTls(auth.mtls, loaded.path);
  } catch (e) {
    report.problem((e as Error).message);
  }
}
