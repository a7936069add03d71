#!/usr/bin/python3
"""Queries an OCSP responder with Python `cryptography` (Debian's python3-cryptography) and verifies the answer.

usage: py_ocsp_check.py URL ISSUER_PEM CERT_PEM GET|POST sha1|sha256 nonce|no-nonce
Prints one JSON object; exits non-zero when the response does not verify.
"""
import base64
import hashlib
import json
import os
import sys
import urllib.parse
import urllib.request

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp


def verify_sig(public_key, signature, data, hash_alg):
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(signature, data, ec.ECDSA(hash_alg))
    elif isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(signature, data, padding.PKCS1v15(), hash_alg)
    else:
        raise ValueError("unsupported key type")


def subject_public_key_bits(public_key):
    """The subjectPublicKey BIT STRING value, input of ResponderID byKey (RFC 6960 section 4.2.1)."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)


def main():
    url, issuer_file, cert_file, method, hash_name, nonce_mode = sys.argv[1:7]
    issuer = x509.load_pem_x509_certificate(open(issuer_file, "rb").read())
    cert = x509.load_pem_x509_certificate(open(cert_file, "rb").read())
    algo = hashes.SHA1() if hash_name == "sha1" else hashes.SHA256()
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algo)
    nonce = os.urandom(16) if nonce_mode == "nonce" else None
    if nonce:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    der = builder.build().public_bytes(serialization.Encoding.DER)
    if method == "GET":
        req = urllib.request.Request(url + "/" + urllib.parse.quote(base64.b64encode(der).decode(), safe=""))
    else:
        req = urllib.request.Request(url, data=der, headers={"Content-Type": "application/ocsp-request"})
    with urllib.request.urlopen(req, timeout=10) as r:
        content_type = r.headers.get("Content-Type")
        body = r.read()
    resp = ocsp.load_der_ocsp_response(body)
    if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        print(json.dumps({"response_status": resp.response_status.name}))
        return 1
    # The signer is the delegated responder certificate in the response, or the CA itself.
    signer = resp.certificates[0] if resp.certificates else issuer
    if signer != issuer:
        verify_sig(issuer.public_key(), signer.signature, signer.tbs_certificate_bytes, signer.signature_hash_algorithm)
        eku = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert x509.oid.ExtendedKeyUsageOID.OCSP_SIGNING in eku, "responder lacks id-kp-OCSPSigning"
    verify_sig(signer.public_key(), resp.signature, resp.tbs_response_bytes, resp.signature_hash_algorithm)
    key_hash_ok = resp.responder_key_hash == hashlib.sha1(subject_public_key_bits(signer.public_key())).digest()
    nonce_ok = None
    nonce_echoed = None
    if nonce:
        try:
            ext = resp.extensions.get_extension_for_class(x509.OCSPNonce)
            nonce_echoed, nonce_ok = True, ext.value.nonce == nonce
        except x509.ExtensionNotFound:
            # A pre-produced answer (RFC 9654 lets a responder leave the nonce out): a strict check fails here.
            nonce_echoed, nonce_ok = False, False
    print(json.dumps({
        "response_status": "SUCCESSFUL",
        "content_type": content_type,
        "status": resp.certificate_status.name,
        "reason": resp.revocation_reason.name if resp.revocation_reason else None,
        "revocation_time": resp.revocation_time.isoformat() if resp.revocation_time else None,
        "serial": format(resp.serial_number, "x"),
        "hash": resp.hash_algorithm.name,
        "this_update": resp.this_update.isoformat(),
        "next_update": resp.next_update.isoformat() if resp.next_update else None,
        "responder_key_hash_ok": key_hash_ok,
        "nonce_ok": nonce_ok,
        "nonce_echoed": nonce_echoed,
        "response_sha256": hashlib.sha256(body).hexdigest(),
        "signature_verified": True,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
