"""The last known state kept for a process that starts during a database outage (ADR 0007).

The outage itself (a real PostgreSQL refusing connections, workers killed) is in
tests/e2e/test_server_outage.py; here: the records, their file or Redis form, and the rule that the
database wins over them.
"""

from __future__ import annotations

import os
import shutil
import stat
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.test import override_settings
from flagsvc_sdk.engine import evaluate, recompile

from evaluation import cache as cache_module
from evaluation.cache import RULESETS, RulesetCache, build_ruleset, kept_body
from evaluation.texts import NO_RULESET_TEXTS
from flags.services import flag_update
from segments.services import segment_update
from tenancy import last_known
from tenancy.models import ApiClient, Tenant
from tenancy.services import api_client_create, api_client_revoke, tenant_set_active
from tests.factories import make_flag, make_segment

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
USER = {"id": "u-1", "attributes": {}}


def _redis_available() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(params=["file", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each test runs against the local directory and, when Redis is there, against Redis."""
    if request.param == "file":
        yield "file"
        return
    if not _redis_available():
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    caches = {
        "default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": prefix}
    }
    with override_settings(REDIS_URL=REDIS_URL, CACHES=caches):
        yield "redis"
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def _files() -> list[Path]:
    return sorted(path for path in Path(settings.LAST_KNOWN_DIR).rglob("*") if path.is_file())


def _ruleset_record(version: int, variant: str = "on") -> dict[str, Any]:
    flag = {"key": "a", "state": "on", "rules": [], "default": {"variant": variant}}
    return {"flags": [flag], "segments": [], "tenant_id": 1}


def test_last_known__round_trip__gives_back_the_data_and_its_version(store):
    data = {"tenant_id": 7, "flags": [{"key": "a", "value": "é", "n": 1.5}], "segments": []}

    assert last_known.save("acme", last_known.RULESET, data, version=3) is None

    record = last_known.load("acme", last_known.RULESET)
    assert record is not None
    assert (record.tenant, record.kind, record.version, record.data) == ("acme", "ruleset", 3, data)
    assert last_known.stored_version("acme", last_known.RULESET) == 3
    assert last_known.load("globex", last_known.RULESET) is None, "per tenant"


def test_last_known__an_older_version__is_refused_and_the_newer_kept(store):
    last_known.save("acme", last_known.RULESET, _ruleset_record(5, "new"), version=5)

    assert last_known.save("acme", last_known.RULESET, _ruleset_record(4, "old"), version=4) == 5
    assert last_known.save("acme", last_known.RULESET, _ruleset_record(5, "old"), version=5) == 5

    record = last_known.load("acme", last_known.RULESET)
    assert record is not None and record.version == 5
    assert record.data["flags"][0]["default"] == {"variant": "new"}
    assert (
        last_known.save("acme", last_known.RULESET, _ruleset_record(4, "db"), version=4, replace=True) is None
    )
    assert last_known.stored_version("acme", last_known.RULESET) == 4, "replace: the database said so"


def test_last_known__a_name_that_is_not_a_tenant_slug_or_client_id__reads_and_writes_nothing(store):
    for tenant in ("../etc", "acme/../globex", "acme\n", "", "ACME", "a" * 64):
        assert last_known.save(tenant, last_known.TENANT, {"active": True}) is None
        assert last_known.load(tenant, last_known.TENANT) is None
    assert last_known.client_kind("../../passwd") is None
    last_known.remember_client("acme", "x/../../y", active=True)
    assert last_known.last_known_client_active("acme", "x/../../y") is None
    assert _files() == []


def test_last_known_file__a_record_copied_into_another_tenant__is_ignored():
    last_known.save("acme", last_known.TENANT, {"active": True, "id": 1, "name": "Acme"})
    [source] = _files()
    target = source.parent.parent / "globex" / source.name
    target.parent.mkdir(mode=0o700)
    shutil.copy(source, target)

    assert last_known.load("globex", last_known.TENANT) is None
    assert last_known.last_known_tenant("globex") == (False, None)


def test_last_known_file__directories_and_files__are_the_service_users_alone():
    last_known.save("acme", last_known.RULESET, _ruleset_record(1), version=1)
    last_known.save("acme", last_known.TENANT, {"active": True, "id": 1, "name": "Acme"})

    root = Path(settings.LAST_KNOWN_DIR)
    directories = [root, *(path for path in root.rglob("*") if path.is_dir())]
    assert len(directories) == 3  # root / database / tenant
    for path in directories:
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    for path in _files():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert path.stat().st_uid == os.geteuid()


def test_last_known_file__a_directory_open_to_others__is_made_private_again():
    root = Path(settings.LAST_KNOWN_DIR)
    root.chmod(0o755)

    last_known.save("acme", last_known.TENANT, {"active": True, "id": 1, "name": "Acme"})

    assert stat.S_IMODE(root.stat().st_mode) == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="giving the directory to another user needs root")
def test_last_known_file__a_directory_of_another_user__is_neither_read_nor_written():
    last_known.save("acme", last_known.TENANT, {"active": True, "id": 1, "name": "Acme"})
    root = Path(settings.LAST_KNOWN_DIR)
    os.chown(root, 65534, 65534)

    assert last_known.load("acme", last_known.TENANT) is None
    assert last_known.save("globex", last_known.TENANT, {"active": True, "id": 2, "name": "G"}) is None
    assert not any(path.name == "globex" for path in root.rglob("*"))


def test_last_known_file__a_write_that_fails_midway__leaves_the_old_record_whole(monkeypatch):
    last_known.save("acme", last_known.RULESET, _ruleset_record(1, "old"), version=1)

    def disk_full(source: str, target: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    assert last_known.save("acme", last_known.RULESET, _ruleset_record(2, "new"), version=2) is None
    monkeypatch.undo()

    record = last_known.load("acme", last_known.RULESET)
    assert record is not None and record.version == 1
    assert record.data["flags"][0]["default"] == {"variant": "old"}
    assert [path.name for path in _files()] == [".lock", "ruleset.json"], "no temporary file is left"


def test_last_known_file__concurrent_writers__a_reader_always_sees_one_whole_record():
    big = "x" * 200_000  # several writes per record: a torn file would be caught
    last_known.save("acme", last_known.RULESET, {"filler": big, "tenant_id": 0}, version=0)
    stop = threading.Event()
    seen: list[int] = []
    torn: list[str] = []

    def write(start: int) -> None:
        for version in range(start, 200, 4):
            last_known.save(
                "acme", last_known.RULESET, {"filler": big, "tenant_id": version}, version=version
            )

    def read() -> None:
        while not stop.is_set():
            record = last_known.load("acme", last_known.RULESET)
            if (
                record is None
                or record.data.get("filler") != big
                or record.data["tenant_id"] != record.version
            ):
                torn.append(repr(record)[:80])
            else:
                seen.append(record.version or 0)

    readers = [threading.Thread(target=read) for _ in range(2)]
    writers = [threading.Thread(target=write, args=(start,)) for start in range(1, 5)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in readers:
        thread.join()

    assert torn == []
    assert seen, "the readers read while the writers wrote"
    assert last_known.stored_version("acme", last_known.RULESET) == 199, "the newest version stays"


@pytest.mark.django_db
def test_ruleset_cache__a_compile__keeps_the_documents_and_version_the_database_gave(store, tenant):
    make_flag(tenant, "a", state="on", default={"variant": "on"})

    ruleset = RULESETS.get(tenant)

    record = last_known.load("acme", last_known.RULESET)
    assert record is not None
    assert str(record.version) == ruleset.version == str(Tenant.objects.get(pk=tenant.pk).ruleset_version)
    assert record.data["tenant_id"] == tenant.pk
    assert [flag["key"] for flag in record.data["flags"]] == ["a"]


@pytest.mark.django_db
def test_ruleset_cache__kept_ruleset_older_than_the_database__is_ignored_and_replaced(store, tenant):
    make_flag(tenant, "a", state="on", default={"variant": "on"})
    flag_update(tenant=tenant, key="a", data={"state": "off"}, partial=True)
    version = Tenant.objects.get(pk=tenant.pk).ruleset_version
    stale = {"tenant_id": tenant.pk, "flags": [{"key": "a", "state": "on", "rules": [], "version": 1}]}
    last_known.save("acme", last_known.RULESET, {**stale, "segments": []}, version=version - 1)

    assert evaluate(RULESETS.get(tenant), "a", USER).reason == "OFF"

    assert last_known.stored_version("acme", last_known.RULESET) == version


@pytest.mark.django_db
def test_ruleset_cache__kept_ruleset_newer_than_the_database__the_database_wins(store, tenant):
    """After a restore from a backup, versions go back: the kept record must follow the database."""
    make_flag(tenant, "a", state="off")
    last_known.save("acme", last_known.RULESET, _ruleset_record(999) | {"tenant_id": tenant.pk}, version=999)

    assert evaluate(RULESETS.get(tenant), "a", USER).reason == "OFF"

    record = last_known.load("acme", last_known.RULESET)
    assert record is not None and record.version == Tenant.objects.get(pk=tenant.pk).ruleset_version
    assert record.data["flags"][0]["state"] == "off"


@pytest.mark.django_db
def test_ruleset_cache__without_database__never_serves_a_kept_ruleset_older_than_its_own(tenant):
    make_flag(tenant, "a", state="on", default={"variant": "on"})
    own = RULESETS.get(tenant)
    older = int(own.version) - 1
    kept = _ruleset_record(older, "old") | {"tenant_id": tenant.pk}
    last_known.save("acme", last_known.RULESET, kept, version=older, replace=True)

    assert RULESETS._without_database(tenant) is own


@pytest.mark.django_db
def test_ruleset_cache__without_database__a_newer_kept_ruleset_serves_until_the_database_answers(tenant):
    make_flag(tenant, "a", state="on", default={"variant": "on"})
    own = RULESETS.get(tenant)
    newer = int(own.version) + 1
    off = {"key": "a", "state": "off", "rules": [], "default": {"variant": "on"}, "version": 2}
    last_known.save(
        "acme", last_known.RULESET, {"tenant_id": tenant.pk, "flags": [off], "segments": []}, version=newer
    )

    restored = RULESETS._without_database(tenant)
    assert restored is not None and restored.version == str(newer)
    assert evaluate(restored, "a", USER).reason == "OFF"

    RULESETS.forget(tenant.pk)
    assert evaluate(RULESETS.get(tenant), "a", USER).reason == "DEFAULT", "the database answers: it wins"


@pytest.mark.django_db
def test_ruleset_cache__without_database__a_kept_ruleset_of_another_tenant_id__is_ignored_and_said_once(
    tenant, caplog
):
    last_known.save("acme", last_known.RULESET, _ruleset_record(5) | {"tenant_id": tenant.pk + 1}, version=5)

    assert RULESETS._without_database(tenant) is None
    assert RULESETS._without_database(tenant) is None

    assert [r.message for r in caplog.records if "another tenant" in r.message] == [
        "the last known ruleset is another tenant's of that name; ignored"
    ]


@pytest.mark.django_db
def test_api_client_revoke__kept_at_once__even_if_no_process_reads_it_again(store, tenant):
    issued = api_client_create(tenant=tenant, scopes=["evaluate"])
    last_known.remember_client("acme", issued.client.client_id, active=True)

    api_client_revoke(client=ApiClient.all_tenants.get(pk=issued.client.pk))

    assert last_known.last_known_client_active("acme", issued.client.client_id) is False


@pytest.mark.django_db
def test_tenant_set_active_false__kept_at_once(store, tenant):
    last_known.remember_tenant("acme", tenant)
    assert last_known.last_known_tenant("acme")[1] is not None

    tenant_set_active(tenant=tenant, active=False)

    assert last_known.last_known_tenant("acme") == (True, None)


@pytest.mark.django_db
def test_last_known__after_token_and_evaluations__keeps_no_secret(store, make_api, tenant, settings):
    make_flag(tenant, "a", state="on", default={"variant": "on"})
    issued = api_client_create(tenant=tenant, scopes=["evaluate"])
    api = make_api(tenant, ["evaluate"])
    response = api.post(
        "/v1/auth/token",
        {"client_id": issued.client.client_id, "client_secret": issued.client_secret},
        format="json",
    )
    assert response.status_code == 200
    assert api.post("/v1/evaluate", {"flag_key": "a", "user": USER}, format="json").status_code == 200

    if store == "redis":
        client = redis.Redis.from_url(REDIS_URL)
        prefix = settings.CACHES["default"]["KEY_PREFIX"]
        kept = "\n".join(str(client.hgetall(key)) for key in client.scan_iter(f"{prefix}:last-known:*"))
    else:
        kept = "\n".join(path.read_text() for path in _files())
    assert "tenant" in kept and '"active"' in kept
    secrets = (
        issued.client_secret,
        issued.client.secret_hash,
        response.json()["access_token"],
        settings.JWT_SECRET,
    )
    for secret in secrets:
        assert secret not in kept
    assert "secret" not in kept.lower()


def test_remember_client__store_unwritable_then_back__written_on_the_next_read(settings, tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    writable = settings.LAST_KNOWN_DIR
    settings.LAST_KNOWN_DIR = str(blocked / "last-known")  # a directory under a file: cannot be made

    last_known.remember_client("acme", "acme-0123", active=True)
    settings.LAST_KNOWN_DIR = writable
    assert last_known.last_known_client_active("acme", "acme-0123") is None

    last_known.remember_client("acme", "acme-0123", active=True)

    assert last_known.last_known_client_active("acme", "acme-0123") is True


def test_last_known_file__a_link_in_place_of_the_directory__is_neither_read_nor_written(settings, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    link = tmp_path / "last-known-link"
    link.symlink_to(elsewhere)
    settings.LAST_KNOWN_DIR = str(link)

    last_known.save("acme", last_known.TENANT, {"active": True, "id": 1, "name": "Acme"})

    assert last_known.load("acme", last_known.TENANT) is None
    assert list(elsewhere.iterdir()) == []


@pytest.mark.django_db(transaction=True)  # the write's version is published after its commit
def test_ruleset_cache__a_catch_up_keeps_its_version__serialising_only_what_changed(store, tenant, settings):
    """After a write, the process that catches up first keeps the new version; it reuses the texts of
    the definitions that did not change (the same compiled objects), so a write to a large tenant no
    longer serialises the whole tenant in the request that caught up."""
    settings.RULESET_CHECK_INTERVAL = 0
    for n in range(20):
        make_flag(tenant, f"f{n}", state="on", default={"variant": "on"})
    other = RulesetCache()  # another process, holding the tenant before the write
    other.get(tenant)
    texts = other._entries[tenant.pk].texts
    unchanged, changed = texts.text("flag:f0"), texts.text("flag:f3")

    flag_update(tenant=tenant, key="f3", data={"state": "off"}, partial=True)
    caught_up = other.get(tenant)

    version = Tenant.objects.get(pk=tenant.pk).ruleset_version
    assert caught_up.version == str(version)
    record = last_known.load("acme", last_known.RULESET)
    assert record is not None and record.version == version
    expected = {
        "tenant_id": tenant.pk,
        "flags": [
            {**flag.doc, "version": flag.version} for flag in build_ruleset(tenant, version).flags.values()
        ],
        "segments": [],
    }
    assert record.data == expected
    texts = other._entries[tenant.pk].texts
    assert texts.text("flag:f0") is unchanged, "an unchanged flag's text is reused, not made again"
    assert texts.text("flag:f3") != changed and '"state":"off"' in (texts.text("flag:f3") or "")


@pytest.mark.django_db
def test_kept_body__is_the_text_of_the_record_whole__and_follows_each_change(tenant):
    make_segment(tenant, "beta", included=["u-1"])
    for n in range(5):
        make_flag(
            tenant, f"f{n}", rules=[{"id": "r", "when": {"segment": "beta"}, "serve": {"variant": "on"}}]
        )
    version = Tenant.objects.get(pk=tenant.pk).ruleset_version
    ruleset = build_ruleset(tenant, version)

    def whole(compiled: Any) -> str:
        return last_known.dumps(
            {
                "tenant_id": tenant.pk,
                "flags": [{**flag.doc, "version": flag.version} for flag in compiled.flags.values()],
                "segments": [
                    {**segment.doc, "version": segment.version} for segment in compiled.segments.values()
                ],
            }
        )

    body, texts = kept_body(tenant.pk, ruleset, NO_RULESET_TEXTS)
    assert body == whole(ruleset)
    assert texts.held == ["flag:f0", "flag:f1", "flag:f2", "flag:f3", "flag:f4", "segment:beta"]
    segment = {**ruleset.segments["beta"].doc, "included": ["u-2"], "version": 9}
    changed = recompile(ruleset, version="99", segments=[segment], removed_flags=["f4"])
    body, texts = kept_body(tenant.pk, changed, texts)
    assert body == whole(changed)
    assert "flag:f4" not in texts.held, "the texts hold this ruleset's definitions only"


@pytest.mark.django_db(transaction=True)
def test_ruleset_cache__a_worker_that_does_not_write_the_record__drops_the_replaced_texts(
    store, tenant, settings
):
    settings.RULESET_CHECK_INTERVAL = 0
    make_segment(tenant, "beta", included=["u-1"])
    make_flag(tenant, "plain", state="on", default={"variant": "on"})
    make_flag(
        tenant, "uses-beta", rules=[{"id": "r", "when": {"segment": "beta"}, "serve": {"variant": "on"}}]
    )
    first, second = RulesetCache(), RulesetCache()  # two workers
    first.get(tenant)  # writes the record: its texts are filled
    second.get(tenant)
    texts = first._entries[tenant.pk].texts
    assert texts.held == ["flag:plain", "flag:uses-beta", "segment:beta"]

    flag_update(tenant=tenant, key="plain", data={"state": "off"}, partial=True)
    segment_update(tenant=tenant, key="beta", data={"included": ["u-2"]}, partial=True)
    second.get(tenant)  # the other worker catches up first and writes the record
    first.get(tenant)  # this one finds it kept: writes nothing

    assert (
        last_known.stored_version("acme", last_known.RULESET)
        == Tenant.objects.get(pk=tenant.pk).ruleset_version
    )
    assert first._entries[tenant.pk].texts.held == [], "no replaced compiled object (all three were) stays"


def test_claim_version__one_claimant_per_version__none_once_that_or_a_newer_version_is_kept(store):
    """Every process applies every change; the claim lets one of them serialise the record. In files
    (one machine, no Redis) there is no claim, only the kept version."""
    assert last_known.claim_version("acme", last_known.RULESET, 5) is True
    assert last_known.claim_version("acme", last_known.RULESET, 5) is (store == "file")
    assert last_known.claim_version("acme", last_known.RULESET, 4) is (store == "file")
    assert last_known.claim_version("acme", last_known.RULESET, 6) is True

    last_known.save("acme", last_known.RULESET, {"flags": [], "segments": []}, version=7)

    assert last_known.claim_version("acme", last_known.RULESET, 7) is False
    assert last_known.claim_version("acme", last_known.RULESET, 6) is False
    assert last_known.claim_version("acme", last_known.RULESET, 8) is True
    assert last_known.claim_version("../etc", last_known.RULESET, 9) is False


@pytest.mark.django_db(transaction=True)
def test_ruleset_cache__two_workers_catch_up_to_one_version__only_one_serialises_the_record(
    store, tenant, settings, monkeypatch
):
    settings.RULESET_CHECK_INTERVAL = 0
    for n in range(3):
        make_flag(tenant, f"f{n}", state="on", default={"variant": "on"})
    first, second = RulesetCache(), RulesetCache()
    first.get(tenant)
    second.get(tenant)
    serialised: list[str] = []
    real_kept_body = cache_module.kept_body

    def counting_kept_body(*args: Any) -> str:
        serialised.append("once")
        return real_kept_body(*args)

    monkeypatch.setattr(cache_module, "kept_body", counting_kept_body)
    monkeypatch.setattr(last_known, "stored_version", lambda *args: None)  # neither sees it kept yet

    flag_update(tenant=tenant, key="f1", data={"state": "off"}, partial=True)
    first.get(tenant)
    second.get(tenant)

    version = Tenant.objects.get(pk=tenant.pk).ruleset_version
    assert first.held(tenant.pk).version == second.held(tenant.pk).version == str(version)
    record = last_known.load("acme", last_known.RULESET)
    assert record is not None and record.version == version
    assert len(serialised) == 1
