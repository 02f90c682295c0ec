"""The one client address (kernel.client_address): `X-Forwarded-For` counts only from our own proxies."""

from __future__ import annotations

import re

import pytest
from django.test import RequestFactory, override_settings

from flagsvc.env import ImproperlyConfiguredEnv, env_networks
from kernel.client_address import client_address


def _request(peer: str, forwarded_for: str | None = None):
    extra = {"REMOTE_ADDR": peer}
    if forwarded_for is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return RequestFactory().get("/v1/flags", **extra)


@override_settings(TRUSTED_PROXIES=[])
def test_client_address__no_trusted_proxies__is_the_peer_whatever_the_header_says():
    assert client_address(_request("192.0.2.10", "203.0.113.5")) == "192.0.2.10"


@override_settings(TRUSTED_PROXIES=["10.0.0.0/8"])
def test_client_address__header_from_an_untrusted_peer__is_ignored():
    assert client_address(_request("192.0.2.10", "203.0.113.5")) == "192.0.2.10"


@override_settings(TRUSTED_PROXIES=["10.0.0.0/8", "2001:db8::/32"])
@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        ("10.0.0.2", "203.0.113.5", "203.0.113.5"),
        ("10.0.0.2", "198.51.100.1, 203.0.113.5", "203.0.113.5"),  # the left part is the client's own
        ("10.0.0.2", "198.51.100.1, 203.0.113.5, 10.9.9.9", "203.0.113.5"),  # two proxies of ours
        ("10.0.0.2", " 203.0.113.5 ,10.9.9.9 ", "203.0.113.5"),
        ("10.0.0.2", "not-an-address, 10.9.9.9", "10.9.9.9"),  # garbage: the nearest address we trust
        ("10.0.0.2", "", "10.0.0.2"),
        ("10.0.0.2", None, "10.0.0.2"),
        ("2001:db8::1", "2001:db8::2, 2a00:1450::1", "2a00:1450::1"),
        ("::ffff:10.0.0.2", "203.0.113.5", "203.0.113.5"),  # a dual-stack socket's view of an IPv4 proxy
        ("10.0.0.2", "::ffff:10.9.9.9, ::ffff:203.0.113.5, 10.9.9.9", "203.0.113.5"),
    ],
)
def test_client_address__from_a_trusted_proxy__is_the_rightmost_untrusted_address(
    peer, forwarded_for, client
):
    assert client_address(_request(peer, forwarded_for)) == client


@pytest.mark.parametrize("entry", ["proxy.internal", "10.0.0.1/8"])
def test_trusted_proxies_setting__not_an_address_or_network__fails_at_start(monkeypatch, entry):
    monkeypatch.setenv("TRUSTED_PROXIES", f"10.0.0.0/8, {entry}")
    with pytest.raises(ImproperlyConfiguredEnv, match=re.escape(repr(entry))):
        env_networks("TRUSTED_PROXIES")


def test_trusted_proxies_setting__addresses_and_networks__are_kept(monkeypatch):
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7 ,2001:db8::/32")
    assert env_networks("TRUSTED_PROXIES") == ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]
