// Child-process entry for test/cluster-signing: plays the primary of a cluster daemon, a SignService signing with a
// software key behind a real SigningLimiter, reached over the real IPC channel through cluster/channel.ts.
// usage: fork('sign-primary-child.js', { serialization: 'advanced' })
import { systemClock } from '../../src/clock';
import { Channel, IpcEndpoint } from '../../src/cluster/channel';
import { bindingKey, SIGN_OP } from '../../src/cluster/remote-signer';
import { SignService } from '../../src/cluster/sign-service';
import { SigningLimiter } from '../../src/signing/signing-limiter';
import { makeAuthority } from '../../src/source/authority';
import { GateSigner } from './gate-signer';
import { softwarePki } from './software-pki';

async function main(): Promise<void> {
  const pki = await softwarePki('ec-p256');
  const gate = new GateSigner(pki.responderSigner);
  const limiter = new SigningLimiter({
    name: 'child', ratePerSecond: 0, burst: 1, maxConcurrent: 1, maxQueue: 1, queueTimeoutMs: 5_000, clientShare: 1, clock: systemClock,
  });
  const authority = makeAuthority({
    name: 'unit', caCert: pki.ca, signerCert: pki.responder, signer: gate, limiters: [limiter], responderId: 'byKey', validityMs: 3_600_000,
  });
  // The same key behind a limiter with room for a burst.
  const roomy = makeAuthority({
    name: 'roomy', caCert: pki.ca, signerCert: pki.responder, signer: pki.responderSigner, responderId: 'byKey', validityMs: 3_600_000,
    limiters: [new SigningLimiter({ name: 'roomy', ratePerSecond: 0, burst: 1, maxConcurrent: 4, maxQueue: 256, queueTimeoutMs: 5_000, clientShare: 1, clock: systemClock })],
  });
  const service = new SignService(systemClock);
  service.publish(1, [authority, roomy]);
  let messages = 0;
  process.on('message', () => messages++);
  new Channel(process as unknown as IpcEndpoint, {
    [SIGN_OP]: service.sign,
    setup: () => ({ key: bindingKey(authority), roomyKey: bindingKey(roomy), signerId: authority.signerId, publicKeyPem: pki.responder.x509.publicKey.export({ type: 'spki', format: 'pem' }) }),
    hold: () => gate.hold(),
    release: () => gate.release(),
    until: (n: number) => gate.until(n),
    stats: () => ({ messages, signed: pki.responderSigner.signCount, inFlight: limiter.inFlightCount }),
  }, systemClock);
}

main().catch((e) => {
  process.stderr.write(String(e?.stack ?? e));
  process.exit(1);
});
