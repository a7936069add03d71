#!/usr/bin/python3
"""Loads OCSP responses with Python `cryptography` (Debian's python3-cryptography), as a strict client would.

usage: py_load_responses.py RESPONSE_DER...
Prints one JSON list, per file: response_status and, when successful, certificate_status, serial and hash; or the
error `ocsp.load_der_ocsp_response` raised.
"""
import json
import sys

from cryptography.x509 import ocsp


def load(path):
    try:
        resp = ocsp.load_der_ocsp_response(open(path, "rb").read())
        if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            return {"response_status": resp.response_status.name}
        return {
            "response_status": "SUCCESSFUL",
            "certificate_status": resp.certificate_status.name,
            "serial": format(resp.serial_number, "x"),
            "hash": resp.hash_algorithm.name,
        }
    except Exception as e:  # noqa: BLE001 - any failure to load is what the test reports
        return {"error": f"{type(e).__name__}: {e}"}


print(json.dumps([load(p) for p in sys.argv[1:]]))
