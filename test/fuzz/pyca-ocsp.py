#!/usr/bin/python3
"""Reads OCSPResponses, one base64 DER per line on stdin, and writes one JSON line for each: what Python
`cryptography` (Debian's python3-cryptography) reads in it, or the error it raised. Successful responses must be
signed by the responder certificate given as the only argument. One process checks a whole fuzz run.
"""
import base64
import json
import sys

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

responder = x509.load_pem_x509_certificate(open(sys.argv[1], "rb").read())


def describe(der):
    r = ocsp.load_der_ocsp_response(der)
    out = {"status": r.response_status.name}
    if r.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return out
    responder.public_key().verify(r.signature, r.tbs_response_bytes, ec.ECDSA(r.signature_hash_algorithm))
    nonce = None
    for ext in r.extensions:
        if isinstance(ext.value, x509.OCSPNonce):
            nonce = ext.value.nonce.hex()
    singles = []
    for s in r.responses:
        singles.append({
            "serial": format(s.serial_number, "x") if s.serial_number >= 0 else "-" + format(-s.serial_number, "x"),
            "hash": s.hash_algorithm.name,
            "nameHash": s.issuer_name_hash.hex(),
            "keyHash": s.issuer_key_hash.hex(),
            "status": s.certificate_status.name,
            "reason": s.revocation_reason.name if s.revocation_reason else None,
            "thisUpdate": s.this_update.isoformat(),
            "nextUpdate": s.next_update.isoformat() if s.next_update else None,
        })
    out.update({
        "producedAt": r.produced_at.isoformat(),
        "responderKeyHash": r.responder_key_hash.hex() if r.responder_key_hash else None,
        "certificates": len(r.certificates),
        "nonce": nonce,
        "responses": singles,
    })
    return out


for line in sys.stdin:
    try:
        result = {"ok": True, **describe(base64.b64decode(line))}
    except Exception as e:  # every failure to read is reported, the run goes on
        result = {"ok": False, "error": f"{type(e).__name__}: {e}"}
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
