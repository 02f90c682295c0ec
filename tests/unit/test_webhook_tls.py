"""Webhooks to HTTPS receivers: certificates verified against the URL's name, with the public CAs and
the operator's own (`WEBHOOK_CA_BUNDLE`), and the signature still verifiable by `standardwebhooks`."""

from __future__ import annotations

import ipaddress
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from standardwebhooks.webhooks import Webhook as StandardWebhook

from tests.factories import make_flag
from tests.receiver import running_receiver
from webhooks.delivery import send
from webhooks.models import WebhookDelivery
from webhooks.services import webhook_create
from webhooks.worker import Worker

pytestmark = pytest.mark.django_db


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


class PrivateCA:
    """A throwaway certificate authority, as a company's internal one would be."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name("flagsvc test CA"))
            .issuer_name(_name("flagsvc test CA"))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.bundle = folder / "ca.pem"
        self.bundle.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def server_context(self, *names: str) -> ssl.SSLContext:
        """A TLS server context whose certificate, signed by this CA, is valid for `names`."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        alt_names: list[x509.GeneralName] = [x509.DNSName(name) for name in names]
        alt_names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        cert_file = self.folder / f"{names[0]}.pem"
        key_file = self.folder / f"{names[0]}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        return context


@pytest.fixture
def private_ca(tmp_path: Path) -> PrivateCA:
    return PrivateCA(tmp_path)


@pytest.fixture
def loopback_allowed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True


def test_https_receiver__behind_the_operators_ca__delivered_and_the_signature_verifies(
    tenant, loopback_allowed, settings, private_ca
):
    settings.WEBHOOK_CA_BUNDLE = str(private_ca.bundle)
    with running_receiver([200], tls=private_ca.server_context("localhost")) as receiver:
        created = webhook_create(
            tenant=tenant, data={"url": f"https://localhost:{receiver.port}/hook", "events": ["flag.*"]}
        )
        make_flag(tenant, "checkout")
        Worker().run_once()

        delivery = WebhookDelivery.objects.for_tenant(tenant).get()
        assert (delivery.status, delivery.last_status_code) == ("succeeded", 200), delivery.last_error
        [request] = receiver.requests
        payload = StandardWebhook(created.secret).verify(request.body, request.headers)
        assert payload["key"] == "checkout" and payload["type"] == "flag.created"


def test_https_receiver__certificate_from_an_unknown_ca__refused_and_nothing_received(
    loopback_allowed, settings, private_ca
):
    settings.WEBHOOK_CA_BUNDLE = ""  # only the public CAs
    with running_receiver([200], tls=private_ca.server_context("localhost")) as receiver:
        outcome = send(
            url=f"https://localhost:{receiver.port}/hook",
            secret="whsec_" + "A" * 32,
            message_id="1",
            body="{}",
            timeout=5,
        )
    assert not outcome.ok and outcome.status_code is None
    assert "CERTIFICATE_VERIFY_FAILED" in outcome.error
    assert receiver.requests == []


def test_https_receiver__certificate_for_another_name__refused_and_nothing_received(
    loopback_allowed, settings, private_ca
):
    settings.WEBHOOK_CA_BUNDLE = str(private_ca.bundle)
    with running_receiver([200], tls=private_ca.server_context("hooks.example.com")) as receiver:
        outcome = send(
            url=f"https://localhost:{receiver.port}/hook",
            secret="whsec_" + "A" * 32,
            message_id="1",
            body="{}",
            timeout=5,
        )
    assert not outcome.ok and outcome.status_code is None
    assert "CERTIFICATE_VERIFY_FAILED" in outcome.error and "localhost" in outcome.error
    assert receiver.requests == []
