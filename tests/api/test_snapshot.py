"""`GET /v1/snapshot` and `/v1/snapshot/keys` (api.md, Snapshot; ADR 0017)."""

from __future__ import annotations

import gzip
import json
import logging

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.core.management import call_command
from django.core.management.base import CommandError
from flagsvc_sdk.engine import compile_ruleset, evaluate, validate_user

from evaluation.cache import RULESETS, ruleset_documents
from evaluation.checks import snapshot_signing_key
from evaluation.snapshot import SNAPSHOTS, snapshot_body
from evaluation.snapshot_keys import b64url, b64url_decode, parse_signature_header, raw_public_key
from tenancy.models import Tenant
from tests.factories import make_flag, make_segment

ROLLOUT = {
    "key": "checkout-redesign",
    "state": "on",
    "variants": [{"key": "on", "value": True, "weight": 20}, {"key": "off", "value": False, "weight": 80}],
    "rules": [{"id": "beta", "when": {"segment": "beta-testers"}, "serve": {"variant": "on"}}],
}


@pytest.fixture
def ruleset(tenant):
    make_segment(tenant, "beta-testers", included=["u-1"], when={"attr": "plan", "op": "eq", "value": "pro"})
    make_flag(tenant, **ROLLOUT)
    make_flag(
        tenant,
        "banner",
        type="string",
        variants=[{"key": "a", "value": "Hello", "weight": 1}],
        off_variant="a",
    )
    return tenant


def verify(api, response) -> dict:
    """The body, after checking its signature with the published key it names; raises if it is forged."""
    kid, signature = parse_signature_header(response["X-Snapshot-Signature"])
    keys = {key["kid"]: key for key in api.get("/v1/snapshot/keys").json()["keys"]}
    assert keys[kid]["alg"] == "Ed25519"
    raw = response.content
    if response.get("Content-Encoding") == "gzip":
        raw = gzip.decompress(raw)
    Ed25519PublicKey.from_public_bytes(b64url_decode(keys[kid]["public_key"])).verify(signature, raw)
    return json.loads(raw)


@pytest.mark.django_db
def test_snapshot__the_engine_input_signed_with_a_strong_etag(api, ruleset):
    response = api.get("/v1/snapshot")

    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    body = verify(api, response)
    version = Tenant.objects.get(pk=ruleset.pk).ruleset_version
    assert response["ETag"] == f'"{version}"', "strong, from the ruleset version"
    assert set(body) == {"tenant", "ruleset_version", "generated_at", "flags", "segments"}
    assert body["tenant"] == "acme" and body["ruleset_version"] == str(version)
    flags, segments = ruleset_documents(ruleset)
    assert body["flags"] == json.loads(json.dumps(flags)), "the same mapper the compiled ruleset uses"
    assert body["segments"] == json.loads(json.dumps(segments))
    assert [flag["key"] for flag in body["flags"]] == ["banner", "checkout-redesign"]


@pytest.mark.django_db
def test_snapshot__compiles_in_the_engine_and_answers_as_the_server(api, ruleset):
    body = verify(api, api.get("/v1/snapshot"))
    local = compile_ruleset(
        tenant=body["tenant"], version=body["ruleset_version"], flags=body["flags"], segments=body["segments"]
    )
    for user in ({"id": "u-1"}, {"id": "u-2", "attributes": {"plan": "pro"}}, {"id": "u-3"}):
        server = api.post("/v1/evaluate", {"flag_key": "checkout-redesign", "user": user}, format="json")
        assert evaluate(local, "checkout-redesign", validate_user(user)).to_dict() == server.json()


@pytest.mark.django_db
def test_snapshot__if_none_match_current__304_with_etag_and_signature_no_body(api, ruleset):
    first = api.get("/v1/snapshot")

    again = api.get("/v1/snapshot", HTTP_IF_NONE_MATCH=first["ETag"])

    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == first["ETag"]
    assert again["X-Snapshot-Signature"] == first["X-Snapshot-Signature"]
    weak_or_listed = api.get("/v1/snapshot", HTTP_IF_NONE_MATCH=f'"0", W/{first["ETag"]}')
    assert weak_or_listed.status_code == 304, "If-None-Match compares weakly and takes a list"
    assert api.get("/v1/snapshot", HTTP_IF_NONE_MATCH='"0"').status_code == 200


@pytest.mark.django_db(transaction=True)
def test_snapshot__after_a_write__new_etag_and_the_change(api, ruleset):
    first = api.get("/v1/snapshot")
    api.patch("/v1/flags/banner", {"state": "on"}, format="json")

    second = api.get("/v1/snapshot", HTTP_IF_NONE_MATCH=first["ETag"])

    assert second.status_code == 200
    assert second["ETag"] != first["ETag"]
    banner = next(flag for flag in verify(api, second)["flags"] if flag["key"] == "banner")
    assert banner["state"] == "on" and banner["version"] == 2


@pytest.mark.django_db(transaction=True)
def test_snapshot__archived_flags_left_out(api, ruleset):
    api.delete("/v1/flags/banner")
    body = verify(api, api.get("/v1/snapshot"))
    assert [flag["key"] for flag in body["flags"]] == ["checkout-redesign"]


@pytest.mark.django_db
def test_snapshot__same_version__byte_identical_in_every_process(api, ruleset):
    """generated_at is when the version was committed, so a fresh process makes the same bytes."""
    first = api.get("/v1/snapshot")
    SNAPSHOTS.clear()
    RULESETS.clear()  # as another process that never saw this tenant

    second = api.get("/v1/snapshot")

    assert second.content == first.content
    assert second["X-Snapshot-Signature"] == first["X-Snapshot-Signature"], "Ed25519 is deterministic"
    assert second["ETag"] == first["ETag"]


@pytest.mark.django_db
def test_snapshot__gzip_when_accepted__signature_over_the_uncompressed_bytes(api, ruleset):
    plain = api.get("/v1/snapshot")

    zipped = api.get("/v1/snapshot", HTTP_ACCEPT_ENCODING="br;q=1.0, gzip;q=0.8")

    assert zipped.status_code == 200
    assert zipped["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped["Vary"]
    assert zipped["ETag"] == plain["ETag"]
    assert gzip.decompress(zipped.content) == plain.content
    assert verify(api, zipped) == json.loads(plain.content)
    assert "Accept-Encoding" in plain["Vary"]
    assert not plain.has_header("Content-Encoding")


@pytest.mark.django_db
@pytest.mark.parametrize("accept", ["gzip;q=0", "identity", "*;q=0", "deflate", "br"])
def test_snapshot__gzip_not_accepted__identity(api, ruleset, accept):
    response = api.get("/v1/snapshot", HTTP_ACCEPT_ENCODING=accept)
    assert response.status_code == 200
    assert not response.has_header("Content-Encoding")
    json.loads(response.content)


@pytest.mark.django_db
def test_snapshot__another_tenants_token__403_and_its_own_snapshot_holds_none_of_ours(
    api, ruleset, make_api, other_tenant
):
    make_flag(other_tenant, "globex-only")
    intruder = make_api(other_tenant, tenant_header="acme")
    response = intruder.get("/v1/snapshot")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "tenant_mismatch"

    own = make_api(other_tenant).get("/v1/snapshot")
    body = verify(make_api(other_tenant), own)
    assert body["tenant"] == "globex"
    assert [flag["key"] for flag in body["flags"]] == ["globex-only"]
    assert body["segments"] == []


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/v1/snapshot", "/v1/snapshot/keys"])
def test_snapshot_routes__need_the_evaluate_scope(make_api, tenant, path):
    response = make_api(tenant, scopes=["flags:read"]).get(path)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"
    assert make_api(tenant, scopes=["evaluate"]).get(path).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/v1/snapshot", "/v1/snapshot/keys"])
def test_snapshot_routes__without_token__401(client, tenant, path):
    response = client.get(path, HTTP_X_TENANT_ID="acme")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/v1/snapshot", "/v1/snapshot/keys"])
def test_snapshot_routes__no_signing_key_and_debug_off__signed_with_a_key_from_secret_key_and_a_check_warns(
    api, settings, path
):
    settings.SNAPSHOT_SIGNING_KEY = ""
    settings.DEBUG = False

    response = api.get(path)

    assert response.status_code == 200
    assert [message.id for message in snapshot_signing_key()] == ["evaluation.W001"]
    first = api.get("/v1/snapshot/keys").json()["keys"]
    assert len(first) == 1 and first[0]["kid"].startswith("ed25519-")
    assert first[0]["kid"] != "dev-insecure"
    settings.SECRET_KEY = "another-deployment-secret-key"
    assert api.get("/v1/snapshot/keys").json()["keys"] != first, "each deployment its own key"


@pytest.mark.django_db
def test_snapshot_routes__malformed_key__503_and_a_check_error(api, settings):
    settings.SNAPSHOT_SIGNING_KEY = "not-a-key"
    response = api.get("/v1/snapshot")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "snapshot_signing_key_invalid"
    assert [message.id for message in snapshot_signing_key()] == ["evaluation.E001"]


@pytest.mark.django_db
def test_snapshot__debug_without_key__signed_with_the_marked_development_key(api, ruleset, settings, caplog):
    settings.SNAPSHOT_SIGNING_KEY = ""
    settings.DEBUG = True

    response = api.get("/v1/snapshot")

    assert response.status_code == 200
    assert response["X-Snapshot-Signature"].startswith("ed25519 keyid=dev-insecure sig=")
    verify(api, response)
    assert [message.id for message in snapshot_signing_key()] == ["evaluation.W002"]


@pytest.mark.django_db
def test_snapshot_keys__rotation__both_published_and_the_current_one_signs(api, ruleset, settings):
    old = Ed25519PrivateKey.generate()
    new = Ed25519PrivateKey.generate()
    old_public = b64url(raw_public_key(old.public_key()))
    settings.SNAPSHOT_SIGNING_KEY = b64url(new.private_bytes_raw())
    settings.SNAPSHOT_SIGNING_KEY_ID = "2026-12"
    settings.SNAPSHOT_PUBLISHED_KEYS = [f"2026-11:{old_public}"]

    keys = api.get("/v1/snapshot/keys").json()["keys"]
    response = api.get("/v1/snapshot")

    assert keys == [
        {"kid": "2026-12", "alg": "Ed25519", "public_key": b64url(raw_public_key(new.public_key()))},
        {"kid": "2026-11", "alg": "Ed25519", "public_key": old_public},
    ]
    kid, signature = parse_signature_header(response["X-Snapshot-Signature"])
    assert kid == "2026-12"
    new.public_key().verify(signature, response.content)
    with pytest.raises(InvalidSignature):
        old.public_key().verify(signature, response.content)


@pytest.mark.django_db
@pytest.mark.parametrize("kid", ["", "same-kid"])
def test_snapshot__key_changes__signed_again_by_the_new_key(api, ruleset, settings, kid):
    settings.SNAPSHOT_SIGNING_KEY_ID = kid
    first = api.get("/v1/snapshot")
    settings.SNAPSHOT_SIGNING_KEY = b64url(Ed25519PrivateKey.generate().private_bytes_raw())

    second = api.get("/v1/snapshot")

    assert second.content == first.content
    assert second["X-Snapshot-Signature"] != first["X-Snapshot-Signature"]
    verify(api, second)


@pytest.mark.django_db
def test_snapshot_keys__pem_private_key_accepted(api, settings):
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    settings.SNAPSHOT_SIGNING_KEY = pem.replace("\n", "\\n")

    keys = api.get("/v1/snapshot/keys").json()["keys"]

    assert keys[0]["public_key"] == b64url(raw_public_key(key.public_key()))
    assert keys[0]["kid"].startswith("ed25519-"), "derived from the public key when not given"


@pytest.mark.django_db
def test_snapshot__over_5_mb__served_and_logged_as_a_warning(api, tenant, caplog):
    big = {"blob": "x" * 30_000}
    for index in range(22):  # a flag holds at most 256 KiB: 8 values of 30 KB each
        make_flag(
            tenant,
            f"big-{index}",
            type="json",
            variants=[{"key": f"v{n}", "value": {**big, "n": n}, "weight": 1} for n in range(8)],
            off_variant="v0",
        )
    caplog.set_level(logging.INFO, logger="flagsvc.snapshot")

    response = api.get("/v1/snapshot")

    assert response.status_code == 200
    assert len(response.content) > 5_000_000
    warnings = [r for r in caplog.records if r.name == "flagsvc.snapshot" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].bytes == len(response.content) and warnings[0].tenant == "acme"
    api.get("/v1/snapshot")
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1, "once per version"


@pytest.mark.django_db
def test_snapshot__a_stored_flag_that_no_longer_compiles__left_out_as_the_server_does(api, ruleset):
    broken = make_flag(ruleset, "broken")
    broken.rules = [
        {"id": "r", "when": {"attr": "plan", "op": "no-such-op", "value": 1}, "serve": {"variant": "on"}}
    ]
    broken.save()  # behind the services' back, as an older release could leave it
    Tenant.objects.filter(pk=ruleset.pk).update(ruleset_version=999)

    body = verify(api, api.get("/v1/snapshot"))

    assert "broken" not in [flag["key"] for flag in body["flags"]]
    compile_ruleset(tenant="acme", version="x", flags=body["flags"], segments=body["segments"])


@pytest.mark.django_db
def test_publish_snapshot__writes_the_routes_exact_bytes_signature_and_keys(api, ruleset, tmp_path):
    served = api.get("/v1/snapshot")
    SNAPSHOTS.clear()  # the command runs in a process of its own

    call_command("publish_snapshot", "--tenant", "acme", "--to", str(tmp_path))

    assert (tmp_path / "snapshot.json").read_bytes() == served.content
    assert (tmp_path / "snapshot.json.sig").read_text().strip() == served["X-Snapshot-Signature"]
    assert json.loads((tmp_path / "keys.json").read_text()) == api.get("/v1/snapshot/keys").json()
    assert (tmp_path / "snapshot.json.etag").read_text().strip() == served["ETag"]


@pytest.mark.django_db
def test_snapshot__served_from_memory__built_once_per_version(
    api, ruleset, caplog, django_assert_max_num_queries
):
    caplog.set_level(logging.INFO, logger="flagsvc.snapshot")
    api.get("/v1/snapshot")

    with django_assert_max_num_queries(0, info="a warm snapshot is bytes in memory, as a warm evaluation is"):
        api.get("/v1/snapshot")
        api.get("/v1/snapshot", HTTP_ACCEPT_ENCODING="gzip")

    assert [r.getMessage() for r in caplog.records if r.name == "flagsvc.snapshot"] == ["snapshot built"]
    exposed = api.get("/metrics").content.decode()
    assert 'flagsvc_snapshot_bytes{tenant="acme"}' in exposed
    assert "flagsvc_snapshot_build_seconds_count" in exposed


@pytest.mark.django_db
def test_publish_snapshot__unknown_tenant_or_malformed_key__a_clear_error_and_no_files(
    tenant, settings, tmp_path
):
    with pytest.raises(CommandError, match="No active tenant"):
        call_command("publish_snapshot", "--tenant", "nobody", "--to", str(tmp_path / "a"))
    settings.SNAPSHOT_SIGNING_KEY = "not-a-key"
    with pytest.raises(CommandError, match="signing key configuration is malformed"):
        call_command("publish_snapshot", "--tenant", "acme", "--to", str(tmp_path / "b"))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.django_db
def test_snapshot__built_from_the_compiled_ruleset__same_bytes_as_from_the_stored_documents(api, tenant):
    """The usual build (texts of the compiled definitions) and the build from the database's documents
    (a process holding no ruleset of that version) make the same bytes: non-ASCII text, nested JSON
    values, numbers, targets, prerequisites and `bucket_by` included."""
    make_segment(
        tenant, "vip", included=["u-ß"], when={"attr": "org.plan", "op": "in", "value": ["pro", "è"]}
    )
    make_flag(
        tenant,
        "config",
        type="json",
        description="Grüße, 日本, \u2028",
        variants=[
            {"key": "big", "value": {"z": [1, 2.5, {"ü": None}], "a": "x"}, "weight": 70},
            {"key": "small", "value": [], "weight": 30},
        ],
        off_variant="small",
        bucket_by="account_id",
        targets={"allow": ["u-1", "u-é"], "allow_variant": "big", "deny": ["u-x"]},
        rules=[{"id": "vips", "when": {"segment": "vip"}, "serve": {"variant": "big"}}],
    )
    make_flag(tenant, "gate", state="on", prerequisites=[{"flag": "config", "variants": ["big"]}])

    served = api.get("/v1/snapshot").content
    flags, segments = ruleset_documents(tenant)
    tenant.refresh_from_db()
    from_documents = snapshot_body(
        tenant=tenant.slug,
        version=tenant.ruleset_version,
        generated_at=tenant.ruleset_changed_at,
        flags=flags,
        segments=segments,
    )

    assert served == from_documents
    assert "日本" in served.decode("utf-8")


@pytest.mark.django_db(transaction=True)
def test_snapshot__after_one_write__only_the_written_flag_is_serialised_again(api, ruleset):
    api.get("/v1/snapshot")
    before = SNAPSHOTS._get(ruleset.pk).texts

    api.patch("/v1/flags/banner", {"description": "now with words"}, format="json")
    body = verify(api, api.get("/v1/snapshot"))
    after = SNAPSHOTS._get(ruleset.pk).texts

    assert next(f for f in body["flags"] if f["key"] == "banner")["description"] == "now with words"
    assert after.text("flag:checkout-redesign") is before.text("flag:checkout-redesign"), (
        "reused, not made again"
    )
    assert after.text("segment:beta-testers") is before.text("segment:beta-testers")
    assert after.text("flag:banner") is not before.text("flag:banner")
    assert '"now with words"' in (after.text("flag:banner") or "")
