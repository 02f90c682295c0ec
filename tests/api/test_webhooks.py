"""/v1/webhooks: api.md, Webhooks (scope `admin`)."""

from __future__ import annotations

import pytest

from audit.models import AuditEntry, ChangeEvent
from tests.factories import make_flag
from tests.receiver import running_receiver
from webhooks import secrets
from webhooks.models import Webhook, WebhookDelivery
from webhooks.worker import Worker

pytestmark = pytest.mark.django_db

PUBLIC = "https://93.184.215.14/hooks/flags"  # a global address: no DNS needed offline


def create(api, **fields):
    body = {"url": PUBLIC, "events": ["flag.*", "segment.deleted"], **fields}
    return api.post("/v1/webhooks", body, format="json")


def test_webhook_create__answers_201_with_the_secret_once(api, tenant):
    response = create(api, description="chat")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["secret"].startswith("whsec_")
    assert {k: body[k] for k in ("url", "events", "active", "description")} == {
        "url": PUBLIC,
        "events": ["flag.*", "segment.deleted"],
        "active": True,
        "description": "chat",
    }
    assert response["Location"] == f"/v1/webhooks/{body['id']}"
    assert response["Cache-Control"] == "no-store"
    shown = api.get(f"/v1/webhooks/{body['id']}").json()
    assert "secret" not in shown and "secret" not in api.get("/v1/webhooks").json()["results"][0]
    stored = Webhook.objects.for_tenant(tenant).get()
    assert body["secret"] not in stored.secret_encrypted
    assert secrets.decrypt(stored.secret_encrypted) == body["secret"], "the worker can sign with it"


def test_webhook_rotate_secret__new_secret_once_and_the_old_one_replaced(api, tenant):
    created = create(api).json()
    rotated = api.post(f"/v1/webhooks/{created['id']}/rotate-secret")
    assert rotated.status_code == 200
    assert rotated.json()["secret"].startswith("whsec_") and rotated.json()["secret"] != created["secret"]
    stored = Webhook.objects.for_tenant(tenant).get()
    assert secrets.decrypt(stored.secret_encrypted) == rotated.json()["secret"]


def test_webhook_list_get_patch_delete(api):
    first = create(api).json()
    create(api, url="https://93.184.215.15/other")
    listed = api.get("/v1/webhooks?limit=1")
    assert listed.status_code == 200
    assert listed.json()["count"] == 2 and [w["id"] for w in listed.json()["results"]] == [first["id"]]
    patched = api.patch(f"/v1/webhooks/{first['id']}", {"active": False, "events": ["*"]}, format="json")
    assert patched.status_code == 200
    assert patched.json()["active"] is False and patched.json()["events"] == ["*"]
    assert patched.json()["url"] == PUBLIC
    assert api.delete(f"/v1/webhooks/{first['id']}").status_code == 204
    assert api.get(f"/v1/webhooks/{first['id']}").status_code == 404
    assert api.get("/v1/webhooks/not-a-number").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://127.0.0.1:8080/hook"}, "url"),
        ({"url": "http://10.1.2.3/hook"}, "url"),
        ({"url": "http://192.168.0.10/hook"}, "url"),
        ({"url": "http://172.16.5.4/hook"}, "url"),
        ({"url": "http://169.254.169.254/latest/meta-data"}, "url"),
        ({"url": "http://[::1]/hook"}, "url"),
        ({"url": "http://[fe80::1]/hook"}, "url"),
        ({"url": "http://[::ffff:127.0.0.1]/hook"}, "url"),
        ({"url": "http://[::ffff:8.8.8.8]/hook"}, "url"),
        ({"url": "http://0.0.0.0/hook"}, "url"),
        ({"url": "http://224.0.0.1/hook"}, "url"),
        ({"url": "http://240.0.0.1/hook"}, "url"),
        ({"url": "http://100.64.0.1/hook"}, "url"),
        ({"url": "http://localhost:8080/hook"}, "url"),
        ({"url": "http://api.localhost/hook"}, "url"),
        ({"url": "ftp://93.184.215.14/hook"}, "url"),
        ({"url": "https://user:pw@93.184.215.14/hook"}, "url"),
        ({"url": 42}, "url"),
        ({"events": ["flag.exploded"]}, "events"),
        ({"events": []}, "events"),
        ({"events": "flag.*"}, "events"),
        ({"events": ["*.updated"]}, "events"),
        ({"active": "yes"}, "active"),
        ({"description": "x" * 501}, "description"),
        ({"secret": "whsec_mine"}, "secret"),
    ],
)
def test_webhook_create__invalid_or_private__422_naming_the_field(api, body, field):
    response = create(api, **body)
    assert response.status_code == 422, response.content
    assert response.json()["error"]["code"] == "validation_error"
    assert list(response.json()["error"]["details"]["fields"]) == [field]


def test_webhook_update__private_url__422(api):
    created = create(api).json()
    response = api.patch(f"/v1/webhooks/{created['id']}", {"url": "http://127.0.0.1/x"}, format="json")
    assert response.status_code == 422
    assert "loopback" in response.json()["error"]["details"]["fields"]["url"][0]


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://127.0.0.1:18190/x\u0001y", "a control character (U+0001) at character 25"),
        ("http://127.0.0.1:18190/x\ty", "whitespace (U+0009)"),
        ("http://127.0.0.1:18190/x\u007fy", "a control character (U+007F)"),
        ("http://127.0.0.1:18190/x\u0085y", "whitespace (U+0085)"),
        ("http://exa mple.com/", "a space (U+0020) at character 11"),
        ("http://example.com/a b", "a space (U+0020)"),
        ("http://example.com/a\u00a0b", "whitespace (U+00A0)"),
        ("http://exa\u200bmple.com/", "an invisible formatting character (U+200B)"),
        ("http://example.com/\u202egnp.exe", "an invisible formatting character (U+202E)"),
        ("http://" + "a" * 64 + ".example.com/", "at most 63 characters"),
        ("http://" + ("a" * 60 + ".") * 5 + "com/", "longer than 253 characters"),
        ("http://exa%41mple.com/", "only letters, digits, hyphens and underscores"),
        ("http://-hook.example.com/", "start or end with a hyphen"),
        ("http://hooks..example.com/", "empty label"),
        ("http://xn--zz.example.com/", "Not a valid URL"),
        ("http://127.0.0.1:99999/", "port must be from 1 to 65535"),
        ("http://127.0.0.1:0/", "port must be from 1 to 65535"),
        ("http://[fe80::1%25eth0]/", "zone"),
    ],
)
def test_webhook_create__url_the_worker_could_not_send__422_at_url_saying_why(
    api, tenant, settings, url, says
):
    """Even where private networks are allowed (so that only the URL's form is judged): a URL httpx
    cannot send, or that no resolver would look up, is refused now rather than failing every attempt."""
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True

    response = create(api, url=url)

    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert list(error["details"]["fields"]) == ["url"]
    assert says in error["details"]["fields"]["url"][0], error["details"]["fields"]["url"]
    assert not Webhook.objects.for_tenant(tenant).exists()


def test_webhook_update__url_with_a_control_character__422_at_url_and_unchanged(api, tenant):
    created = create(api).json()

    response = api.patch(
        f"/v1/webhooks/{created['id']}", {"url": "https://93.184.215.14/x\u0001y"}, format="json"
    )

    assert response.status_code == 422, response.content
    assert "control character (U+0001)" in response.json()["error"]["details"]["fields"]["url"][0]
    assert Webhook.objects.for_tenant(tenant).get().url == PUBLIC


def test_webhook_create__international_name_or_surrounding_spaces__201_stored_as_written(api, tenant):
    """The check refuses what cannot be sent, not what merely looks unusual."""
    assert create(api, url="https://bücher.example/hooks?x=%20y").status_code == 201
    assert create(api, url="  https://93.184.215.14/hooks/flags  ").json()["url"] == PUBLIC
    assert create(api, url="https://hooks_1.example.com.:8443/a").status_code == 201


def test_webhook_create__private_networks_allowed_by_the_operator__201(api, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    assert create(api, url="http://localhost:8080/hook").status_code == 201
    assert create(api, url="http://10.1.2.3/hook").status_code == 201


def test_webhook_routes__need_the_admin_scope(make_api, tenant):
    reader = make_api(tenant, scopes=["flags:read", "flags:write", "audit:read"])
    assert reader.get("/v1/webhooks").status_code == 403
    assert create(reader).json()["error"]["code"] == "insufficient_scope"


def test_webhook_routes__another_tenants_webhook__404_everywhere(api, other_api, other_tenant, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    with running_receiver([500]) as receiver:
        theirs = create(other_api, url=receiver.url).json()
        make_flag(other_tenant, "f")
        Worker().run_once()
    delivery = WebhookDelivery.objects.for_tenant(other_tenant).get()
    base = f"/v1/webhooks/{theirs['id']}"
    assert api.get(base).status_code == 404
    assert api.patch(base, {"active": False}, format="json").status_code == 404
    assert api.delete(base).status_code == 404
    assert api.post(f"{base}/rotate-secret").status_code == 404
    assert api.get(f"{base}/deliveries").status_code == 404
    assert api.post(f"{base}/deliveries/{delivery.pk}/redeliver").status_code == 404
    assert api.get("/v1/webhooks").json()["count"] == 0
    mine = create(api).json()
    assert api.post(f"/v1/webhooks/{mine['id']}/deliveries/{delivery.pk}/redeliver").status_code == 404
    assert other_api.get(base).status_code == 200, "still there for its owner"


def test_webhook_deliveries__listed_newest_first_and_filtered_by_status(api, tenant, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    with running_receiver([500, 200]) as receiver:
        hook = create(api, url=receiver.url, events=["flag.created"]).json()
        make_flag(tenant, "a")
        Worker().run_once()
        make_flag(tenant, "b")
        Worker().run_once()
    listed = api.get(f"/v1/webhooks/{hook['id']}/deliveries")
    assert listed.status_code == 200
    page = listed.json()
    assert page["count"] == 2 and page["next"] is None
    newest, oldest = page["results"]
    assert (newest["status"], newest["attempts"], newest["last_status_code"]) == ("succeeded", 1, 200)
    assert (oldest["status"], oldest["attempts"], oldest["last_status_code"]) == ("pending", 1, 500)
    assert oldest["last_error"].startswith("HTTP 500") and oldest["next_attempt_at"] is not None
    assert isinstance(oldest["duration_ms"], int) and oldest["event_type"] == "flag.created"
    pending = api.get(f"/v1/webhooks/{hook['id']}/deliveries?status=pending").json()
    assert [d["id"] for d in pending["results"]] == [oldest["id"]]
    assert api.get(f"/v1/webhooks/{hook['id']}/deliveries?status=lost").status_code == 422
    assert api.get(f"/v1/webhooks/{hook['id']}/deliveries?limit=0").status_code == 422


def test_webhook_redeliver__only_a_failed_delivery__202_else_409(api, tenant, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    settings.WEBHOOK_RETRY_HOURS = 0
    with running_receiver([500]) as receiver:
        hook = create(api, url=receiver.url).json()
        make_flag(tenant, "a")
        Worker().run_once()
    delivery = WebhookDelivery.objects.for_tenant(tenant).get()
    assert delivery.status == "failed"
    url = f"/v1/webhooks/{hook['id']}/deliveries/{delivery.pk}/redeliver"
    queued = api.post(url)
    assert queued.status_code == 202
    assert queued.json()["status"] == "pending" and queued.json()["next_attempt_at"] is not None
    again = api.post(url)
    assert again.status_code == 409 and again.json()["error"]["details"]["status"] == "pending"
    assert api.post(f"/v1/webhooks/{hook['id']}/deliveries/999999/redeliver").status_code == 404


def test_webhook_changes__audited_without_the_secret_and_without_change_events(api, tenant):
    created = create(api).json()
    api.patch(f"/v1/webhooks/{created['id']}", {"description": "ops"}, format="json")
    rotated = api.post(f"/v1/webhooks/{created['id']}/rotate-secret").json()
    api.delete(f"/v1/webhooks/{created['id']}")
    entries = list(AuditEntry.objects.for_tenant(tenant).filter(entity="webhook").order_by("seq"))
    assert [e.action for e in entries] == ["create", "update", "update", "delete"]
    assert {e.entity_key for e in entries} == {created["id"]}
    assert entries[0].actor.startswith("client:")
    assert "secret_rotated_at" in entries[2].diff or any(
        "secret_rotated_at" in str(k) for k in entries[2].diff
    )
    for entry in entries:
        text = str(entry.before) + str(entry.after) + str(entry.diff)
        assert created["secret"] not in text and rotated["secret"] not in text
    assert not ChangeEvent.objects.for_tenant(tenant).exists()
