// Builds BasicOCSPResponse DER (RFC 6960 section 4.2.1) with asn1js, from parts encoded once where possible.
import * as asn1js from 'asn1js';
import { toArrayBuffer } from './der';
import { OID } from './oids';
import { encode, preEncoded } from './pre-encoded';
import { REASONS, ReasonName } from './reasons';

export type CertStatus =
  | { kind: 'good' }
  | { kind: 'revoked'; revokedAt: Date; reason?: ReasonName }
  | { kind: 'unknown' };

export interface SingleResponseInput {
  /** The request's CertID, echoed byte for byte (same hash algorithm, same encoding). */
  certIdDer: Buffer;
  status: CertStatus;
  thisUpdate: Date;
  nextUpdate: Date;
}

export interface ResponseDataInput {
  /** Encoded ResponderID: see encodeResponderId. */
  responderIdDer: Buffer;
  producedAt: Date;
  responses: SingleResponseInput[];
  /** Nonce extnValue to echo (RFC 9654). */
  nonce?: Buffer;
}

/** RFC 5280 section 4.1.2.5.2: GeneralizedTime carries whole seconds only. */
export function wholeSeconds(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

/** ResponderID ::= CHOICE { byName [1] Name, byKey [2] KeyHash } (RFC 6960 section 4.2.1). */
export function encodeResponderId(id: { byKey: Buffer } | { byNameDer: Buffer }): Buffer {
  return 'byKey' in id
    ? encode(new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 2 }, value: [new asn1js.OctetString({ valueHex: toArrayBuffer(id.byKey) })] }))
    : encode(new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 1 }, value: [preEncoded(id.byNameDer)] }));
}

/** certs [0] EXPLICIT SEQUENCE OF Certificate, encoded once per signer. */
export function encodeCerts(ders: Buffer[]): Buffer {
  return encode(new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [new asn1js.Sequence({ value: ders.map(preEncoded) })] }));
}

export function encodeResponseData(input: ResponseDataInput): Buffer {
  const value: asn1js.BaseBlock[] = [
    preEncoded(input.responderIdDer),
    time(input.producedAt),
    new asn1js.Sequence({ value: input.responses.map(singleResponse) }),
  ];
  if (input.nonce) {
    const ext = new asn1js.Sequence({
      value: [new asn1js.ObjectIdentifier({ value: OID.ocspNonce }), new asn1js.OctetString({ valueHex: toArrayBuffer(input.nonce) })],
    });
    value.push(new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 1 }, value: [new asn1js.Sequence({ value: [ext] })] }));
  }
  return encode(new asn1js.Sequence({ value }));
}

function singleResponse(r: SingleResponseInput): asn1js.Sequence {
  return new asn1js.Sequence({
    value: [
      preEncoded(r.certIdDer),
      encodeStatus(r.status),
      time(r.thisUpdate),
      new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [time(r.nextUpdate)] }),
    ],
  });
}

function encodeStatus(s: CertStatus): asn1js.BaseBlock {
  switch (s.kind) {
    case 'good':
      return new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 0 } });
    case 'unknown':
      return new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 2 } });
    case 'revoked': {
      const value: asn1js.BaseBlock[] = [time(s.revokedAt)];
      if (s.reason !== undefined) {
        value.push(new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [new asn1js.Enumerated({ value: REASONS[s.reason] })] }));
      }
      return new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 1 }, value });
    }
  }
}

// A busy responder writes the same few timestamps thousands of times a second: encode each once.
const timeCache = new Map<number, asn1js.BaseBlock>();
function time(d: Date): asn1js.BaseBlock {
  const ms = wholeSeconds(d).getTime();
  let block = timeCache.get(ms);
  if (!block) {
    if (timeCache.size > 64) timeCache.clear();
    block = preEncoded(encode(new asn1js.GeneralizedTime({ valueDate: new Date(ms) })));
    timeCache.set(ms, block);
  }
  return block;
}

export interface SignedEnvelope {
  tbs: Buffer;
  signatureAlgorithmDer: Buffer;
  signature: Buffer;
  /** Encoded `certs` field (encodeCerts), or undefined to include none. */
  certsDer?: Buffer;
}

/** Wraps a signed ResponseData into a successful OCSPResponse (responseType id-pkix-ocsp-basic). */
export function encodeSuccessfulResponse(env: SignedEnvelope): Buffer {
  const basic = [preEncoded(env.tbs), preEncoded(env.signatureAlgorithmDer), new asn1js.BitString({ valueHex: toArrayBuffer(env.signature) })];
  if (env.certsDer) basic.push(preEncoded(env.certsDer));
  const basicDer = encode(new asn1js.Sequence({ value: basic }));
  return encode(
    new asn1js.Sequence({
      value: [
        new asn1js.Enumerated({ value: 0 }),
        new asn1js.Constructed({
          idBlock: { tagClass: 3, tagNumber: 0 },
          value: [new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: OID.ocspBasic }), new asn1js.OctetString({ valueHex: toArrayBuffer(basicDer) })] })],
        }),
      ],
    }),
  );
}
