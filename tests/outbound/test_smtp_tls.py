"""The connection to a real relay as production has it: STARTTLS (the certificate checked) then AUTH
with SMTP_USERNAME / SMTP_PASSWORD; a relay that requires them refuses a connection without."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import replace

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.domains.outbound.providers import smtp
from app.domains.outbound.providers.transport import Outgoing, SendError
from tests.outbound.fakes import SmtpHandler, free_port

USER, PASSWORD = "relay-user", "relay-password"


def _certificate(tmp_path) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1: (cert file, key file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "relay.pem", tmp_path / "relay.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_file), str(key_file)


def _check_login(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok)


@pytest.fixture
def relay(tmp_path, monkeypatch):
    """A relay that requires STARTTLS before anything and AUTH before mail, trusted by this process
    (SSL_CERT_FILE) as a real relay's certificate is by the system's CAs."""
    cert_file, key_file = _certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    monkeypatch.setenv("SSL_CERT_FILE", cert_file)
    handler = SmtpHandler()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=context,
        require_starttls=True,
        authenticator=_check_login,
        auth_required=True,
    )
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()
        smtp._drop_connection()


def _message(key: str) -> Outgoing:
    return Outgoing(
        notification_id=1,
        channel="email",
        to="patient@example.com",
        sender="clinic@example.com",
        subject="Your visit",
        text="See you soon.",
        html=None,
        dedupe_key=key,
    )


def test_mail_goes_over_starttls_and_logs_in(app, relay):
    handler, port = relay
    settings = replace(
        app.config["SETTINGS"],
        email_backend="smtp",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=True,
        smtp_username=USER,
        smtp_password=PASSWORD,
    )
    smtp.send_smtp(_message("tls-1"), settings)
    assert handler.accepted["tls-1"] == 1


@pytest.mark.parametrize(
    "without", [{"smtp_starttls": False}, {"smtp_username": None}, {"smtp_password": "wrong"}]
)
def test_a_relay_requiring_tls_and_login_refuses_a_connection_without(app, relay, without):
    handler, port = relay
    settings = replace(
        app.config["SETTINGS"],
        email_backend="smtp",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=True,
        smtp_username=USER,
        smtp_password=PASSWORD,
    )
    with pytest.raises(SendError):
        smtp.send_smtp(_message("tls-2"), replace(settings, **without))
    assert handler.accepted["tls-2"] == 0
