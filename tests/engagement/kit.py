"""Helpers of the engagement and fallback tests."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.outbound.kit import use


def sendgrid_key(app, monkeypatch):
    """A test key pair; its public half configured as SendGrid's verification key (base64 DER), as
    tests/intake/test_sendgrid_events.py's fixture does."""
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    use(monkeypatch, app.config["SETTINGS"], sendgrid_event_public_key=base64.b64encode(der).decode())
    return private
