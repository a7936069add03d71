// Builds the OCSP requests the stress tool sends (RFC 6960 section 4.1.1): one CertID, optionally a fresh nonce.
import { randomBytes } from 'node:crypto';
import * as asn1js from 'asn1js';
import { encodeCertId } from '../ocsp/cert-id';
import { encode } from '../ocsp/der';
import { HashName, OID } from '../ocsp/oids';
import { issuerHashes, LoadedCertificate } from '../pki/certificate';
import { tlv, TAG } from '../ocsp/tlv';

export interface BuiltRequest {
  /** Canonical hex serial asked about. */
  serial: string;
  der: Buffer;
  /** The CertID as sent: the response must carry the same one. */
  certIdDer: Buffer;
  /** The nonce octets sent (RFC 9654), when one was. */
  nonce?: Buffer;
}

const NONCE_OID_DER = encode(new asn1js.ObjectIdentifier({ value: OID.ocspNonce }));
// RFC 9654 section 2.1: a responder must accept 32 octets; 16 random octets is what common clients send.
const NONCE_BYTES = 16;

export class RequestBuilder {
  private readonly nameHash: Buffer;
  private readonly keyHash: Buffer;
  // Most runs ask about a few thousand serials over and over: their CertIDs are encoded once.
  private readonly certIds = new Map<string, Buffer>();

  constructor(
    issuer: LoadedCertificate,
    private readonly hash: HashName,
    private readonly withNonce: boolean,
    private readonly random: (n: number) => Buffer = randomBytes,
  ) {
    ({ nameHash: this.nameHash, keyHash: this.keyHash } = issuerHashes(issuer, hash));
  }

  build(serial: string): BuiltRequest {
    let certIdDer = this.certIds.get(serial);
    if (!certIdDer) {
      certIdDer = encodeCertId(this.hash, this.nameHash, this.keyHash, serial);
      this.certIds.set(serial, certIdDer);
    }
    // OCSPRequest { TBSRequest { requestList { Request { reqCert } }, requestExtensions [2] EXPLICIT Extensions } }
    const requestList = tlv(TAG.sequence, tlv(TAG.sequence, certIdDer));
    if (!this.withNonce) return { serial, der: tlv(TAG.sequence, tlv(TAG.sequence, requestList)), certIdDer };
    const nonce = this.random(NONCE_BYTES);
    // Extension { extnID id-pkix-ocsp-nonce, extnValue OCTET STRING (Nonce ::= OCTET STRING) }
    const extension = tlv(TAG.sequence, NONCE_OID_DER, tlv(TAG.octetString, tlv(TAG.octetString, nonce)));
    const extensions = tlv(TAG.ctxConstructed(2), tlv(TAG.sequence, extension));
    return { serial, der: tlv(TAG.sequence, tlv(TAG.sequence, requestList, extensions)), certIdDer, nonce };
  }
}
