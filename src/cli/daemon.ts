// Builds the object graph from a validated config and starts serving; the only place that wires components.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Clock } from '../clock';
import type { LoadedConfig } from '../config/load';
import type { CaConfig } from '../config/schema';
import { createApp } from '../http/app';
import { keyMatchesCertificate } from '../hsm/key-check';
import { finalizeModules } from '../hsm/module';
import { describePkcs11Error } from '../hsm/pkcs11-errors';
import { findPrivateKey, Pkcs11Signer } from '../hsm/pkcs11-signer';
import { algorithmForPublicKey } from '../hsm/signer';
import { activateToken, ActiveToken } from '../hsm/token';
import { OID } from '../ocsp/oids';
import { readCertificate, LoadedCertificate } from '../pki/certificate';
import { Authority, AuthorityIndex, makeAuthority } from '../source/authority';
import { IssuerFilter } from '../source/issuer-filter';
import { LiveSigner } from '../source/live-signer';
import { openStatusStore } from './store';
import type { StatusStore } from '../store/status-store';

export class StartupError extends Error {
  override name = 'StartupError';
}

export interface Daemon {
  port: number;
  close(): Promise<void>;
}

export async function startDaemon(loaded: LoadedConfig, deps: { logger: Logger; clock: Clock }): Promise<Daemon> {
  const { config } = loaded;
  const { logger, clock } = deps;
  const tokens = new Map<string, ActiveToken>();
  let store: StatusStore | undefined;
  try {
    store = openStatusStore(loaded, clock);
    for (const [i, t] of config.tokens.entries()) {
      tokens.set(t.name, await activateToken(t, i, { resolvePath: loaded.path, warn: (m) => logger.warn(m) }));
      logger.info({ token: t.name, tokenLabel: t.tokenLabel, sessions: t.sessions }, 'token activated');
    }
    const authorities: Authority[] = [];
    for (const [i, ca] of config.cas.entries()) {
      authorities.push(await bindAuthority(loaded, ca, i, tokens.get(ca.signer.token)!));
      logger.info({ ca: ca.name, delegated: !!ca.signer.certificate }, 'signing key verified against certificate');
    }
    const source = new IssuerFilter(new AuthorityIndex(authorities), new LiveSigner(store, clock));
    const app = createApp({
      source,
      limits: { maxCertIds: config.server.maxCertIdsPerRequest },
      bodyLimit: config.server.bodyLimit,
      ...(config.server.pathPrefix ? { pathPrefix: config.server.pathPrefix } : {}),
      responseTimeoutMs: config.server.responseTimeout,
      logger,
    });
    const server = await listen(app, config.server.host, config.server.port);
    server.requestTimeout = config.server.requestTimeout;
    server.headersTimeout = config.server.requestTimeout;
    const port = (server.address() as AddressInfo).port;
    logger.info({ host: config.server.host, port, pathPrefix: config.server.pathPrefix ?? '/' }, 'listening');
    const openStore = store;
    return {
      port,
      close: async () => {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        for (const t of tokens.values()) t.pool.close();
        finalizeModules();
        await openStore.close();
      },
    };
  } catch (e) {
    for (const t of tokens.values()) t.pool.close();
    finalizeModules();
    await store?.close();
    throw e;
  }
}

async function bindAuthority(loaded: LoadedConfig, ca: CaConfig, i: number, token: ActiveToken): Promise<Authority> {
  const field = `cas[${i}]`;
  const caCert = certificateAt(loaded, ca.certificate, `${field}.certificate`);
  const signerCert = ca.signer.certificate
    ? certificateAt(loaded, ca.signer.certificate, `${field}.signer.certificate`)
    : caCert;
  if (signerCert !== caCert) checkDelegatedResponder(caCert, signerCert, `${field}.signer.certificate`);
  const keyWhat = `${field}.signer.key (${'label' in ca.signer.key ? `label "${ca.signer.key.label}"` : `id ${ca.signer.key.id}`} on token "${token.name}")`;
  let signer: Pkcs11Signer;
  try {
    const algorithm = algorithmForPublicKey(signerCert.x509.publicKey);
    signer = new Pkcs11Signer(token.pool, findPrivateKey(token.pool, ca.signer.key), algorithm);
  } catch (e) {
    throw new StartupError(`CA "${ca.name}": ${keyWhat}: ${(e as Error).message}`);
  }
  let matches: boolean;
  try {
    matches = await keyMatchesCertificate(signer, signerCert.x509.publicKey);
  } catch (e) {
    throw new StartupError(`CA "${ca.name}": ${keyWhat}: test signature failed: ${describePkcs11Error(e)}`);
  }
  if (!matches) {
    const certField = ca.signer.certificate ? `${field}.signer.certificate` : `${field}.certificate`;
    throw new StartupError(`CA "${ca.name}": ${keyWhat} does not match the certificate in ${certField} (${signerCert.x509.subject.replace(/\n/g, ', ')})`);
  }
  return makeAuthority({
    name: ca.name,
    caCert,
    signerCert,
    signer,
    responderId: ca.responderId ?? loaded.config.defaults.responderId,
    validityMs: ca.validity ?? loaded.config.defaults.validity,
  });
}

function certificateAt(loaded: LoadedConfig, p: string, field: string): LoadedCertificate {
  try {
    return readCertificate(loaded.path(p));
  } catch (e) {
    throw new StartupError(`${field}: ${(e as Error).message}`);
  }
}

// RFC 6960 section 4.2.2.2: a delegated responder is issued directly by the CA and carries id-kp-OCSPSigning.
function checkDelegatedResponder(ca: LoadedCertificate, responder: LoadedCertificate, field: string): void {
  if (!responder.x509.checkIssued(ca.x509) || !responder.x509.verify(ca.x509.publicKey)) {
    throw new StartupError(`${field}: responder certificate was not issued by the CA certificate`);
  }
  if (!(responder.x509.keyUsage ?? []).includes(OID.kpOcspSigning)) {
    throw new StartupError(`${field}: responder certificate lacks extended key usage id-kp-OCSPSigning`);
  }
}

function listen(app: import('express').Express, host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host);
    server.once('listening', () => resolve(server));
    server.once('error', (e) => reject(new StartupError(`cannot listen on ${host}:${port}: ${(e as Error).message}`)));
  });
}
