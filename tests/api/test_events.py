"""GET /v1/events polled as JSON, and the event document (api.md, Change events)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import ChangeEvent
from audit.outbox import prune_events
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}


def poll(api, query: str = "after=0", **headers):
    return api.get(f"/v1/events?{query}", **{**JSON, **headers})


def test_events__every_change_type__documents_in_commit_order(api, tenant):
    api.post("/v1/segments", {"key": "beta"}, format="json")
    api.post("/v1/flags", {"key": "f"}, format="json", HTTP_X_REQUEST_ID="req-1")
    api.patch("/v1/flags/f", {"state": "on"}, format="json")
    api.delete("/v1/flags/f")
    api.post("/v1/flags/f/restore")
    api.post("/v1/flags/f/rollback", {"version": 1}, format="json")
    api.patch("/v1/segments/beta", {"description": "x"}, format="json")
    api.delete("/v1/segments/beta")

    response = poll(api)

    assert response.status_code == 200
    events = response.json()["events"]
    assert [event["type"] for event in events] == [
        "segment.created",
        "flag.created",
        "flag.updated",
        "flag.archived",
        "flag.restored",
        "flag.rolled_back",
        "segment.updated",
        "segment.deleted",
    ]
    ids = [int(event["id"]) for event in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    created = events[1]
    assert set(created) == {
        "id",
        "type",
        "tenant",
        "entity",
        "key",
        "version",
        "ruleset_version",
        "actor",
        "request_id",
        "ts",
    }
    assert created["tenant"] == "acme" and created["entity"] == "flag" and created["key"] == "f"
    assert created["version"] == 1 and created["request_id"] == "req-1"
    assert created["actor"].startswith("client:acme-") and created["ts"].endswith("Z")
    assert isinstance(created["id"], str) and created["id"].isdigit()
    assert response.json()["next"] == events[-1]["id"]


def test_events__ruleset_version__is_the_version_that_includes_the_change(api, tenant):
    api.post("/v1/flags", {"key": "f"}, format="json")
    api.patch("/v1/flags/f", {"state": "on"}, format="json")

    events = poll(api).json()["events"]

    versions = [int(event["ruleset_version"]) for event in events]
    assert versions[1] == versions[0] + 1
    assert versions[-1] == Tenant.objects.get(pk=tenant.pk).ruleset_version
    bulk = api.post("/v1/evaluate/bulk", {"user": {"id": "u"}}, format="json").json()
    assert bulk["ruleset_version"] == events[-1]["ruleset_version"]


def test_events__after_and_limit__pages_without_gaps_or_repeats(api):
    for n in range(5):
        api.post("/v1/flags", {"key": f"f{n}"}, format="json")

    first = poll(api, "after=0&limit=2").json()
    second = poll(api, f"after={first['next']}&limit=2").json()
    third = poll(api, f"after={second['next']}&limit=2").json()
    empty = poll(api, f"after={third['next']}").json()

    keys = [event["key"] for page in (first, second, third) for event in page["events"]]
    assert keys == ["f0", "f1", "f2", "f3", "f4"]
    assert empty == {"events": [], "next": third["next"]}


def test_events__last_event_id__wins_over_after(api):
    api.post("/v1/flags", {"key": "a"}, format="json")
    api.post("/v1/flags", {"key": "b"}, format="json")
    first = poll(api, "limit=1&after=0").json()["events"][0]["id"]

    body = poll(api, "after=0", HTTP_LAST_EVENT_ID=first).json()

    assert [event["key"] for event in body["events"]] == ["b"]


def test_events__no_cursor__starts_at_the_present(api):
    api.post("/v1/flags", {"key": "old"}, format="json")

    present = poll(api, "").json()
    api.post("/v1/flags", {"key": "new"}, format="json")
    later = poll(api, f"after={present['next']}").json()

    assert present["events"] == []
    assert [event["key"] for event in later["events"]] == ["new"]


def test_events__limit_above_maximum__is_capped_at_1000(api):
    assert poll(api, "after=0&limit=5000").status_code == 200


@pytest.mark.parametrize("query", ["after=abc", "after=-1", "after=1.5", f"after={'9' * 25}"])
def test_events__malformed_after__422_naming_it(api, query):
    response = poll(api, query)

    assert response.status_code == 422
    body = response.json()
    assert body["error"]["code"] == "validation_error"
    assert "after" in body["error"]["details"]["fields"]


def test_events__malformed_last_event_id__422_naming_it(api):
    response = poll(api, "", HTTP_LAST_EVENT_ID="x1")

    assert response.status_code == 422
    assert "Last-Event-ID" in response.json()["error"]["details"]["fields"]


def test_events__limit_zero__422(api):
    response = poll(api, "after=0&limit=0")

    assert response.status_code == 422
    assert "limit" in response.json()["error"]["details"]["fields"]


def test_events__without_events_read_scope__403(make_api, tenant):
    client = make_api(tenant, scopes=["flags:read"])

    response = poll(client)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"


def test_events__errors_asked_as_event_stream__are_json(client, tenant):
    response = client.get("/v1/events", HTTP_ACCEPT="text/event-stream")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "unauthenticated"


def test_events__other_tenant__never_sees_them(api, other_api):
    api.post("/v1/flags", {"key": "secret"}, format="json")
    cursor_of_a = poll(api).json()["next"]

    everything = poll(other_api).json()
    after_a_cursor = poll(other_api, f"after={cursor_of_a}").json()

    assert everything["events"] == []
    assert after_a_cursor["events"] == [] and after_a_cursor.get("reset") is True


def test_events__pruned_cursor__reset_and_the_present(api, tenant):
    api.post("/v1/flags", {"key": "old"}, format="json")
    old = poll(api).json()["next"]
    api.post("/v1/flags", {"key": "older-than-retention"}, format="json")
    ChangeEvent.all_tenants.filter(pk=int(old)).update(ts=timezone.now() - timedelta(days=30))
    assert prune_events(timezone.now()) == 1
    present = poll(api).json()["next"]

    body = poll(api, f"after={old}").json()

    assert body == {"events": [], "next": present, "reset": True}


def test_events__cursor_zero_after_pruning__reset(api, tenant):
    api.post("/v1/flags", {"key": "old"}, format="json")
    api.post("/v1/flags", {"key": "new"}, format="json")
    first = ChangeEvent.all_tenants.order_by("pk").first()
    ChangeEvent.all_tenants.filter(pk=first.pk).update(ts=timezone.now() - timedelta(days=30))
    assert poll(api, "after=0").json().get("reset") is None
    prune_events(timezone.now())

    body = poll(api, "after=0").json()

    assert body["reset"] is True and body["events"] == []


def test_prune_events__deletes_only_older_rows_in_batches__audit_stays(api, tenant, settings):
    settings.EVENT_PRUNE_BATCH = 2
    for n in range(5):
        api.post("/v1/flags", {"key": f"f{n}"}, format="json")
    ids = list(ChangeEvent.all_tenants.order_by("pk").values_list("pk", flat=True))
    ChangeEvent.all_tenants.filter(pk__in=ids[:3]).update(ts=timezone.now() - timedelta(days=8))

    deleted = prune_events(timezone.now())

    assert deleted == 3
    assert list(ChangeEvent.all_tenants.values_list("pk", flat=True).order_by("pk")) == ids[3:]
    from audit.models import AuditEntry

    assert AuditEntry.all_tenants.filter(tenant=tenant, entity="flag").count() == 5


def test_events__stream_asked_of_a_wsgi_process__406_pointing_at_the_stream_process(api):
    response = api.get("/v1/events", HTTP_ACCEPT="text/event-stream")

    assert response.status_code == 406
    assert response["Content-Type"] == "application/json"
    assert "stream process" in response.json()["error"]["message"]


def test_events__stream_on_wsgi_when_enabled__opens_with_a_comment_then_the_events(api, settings):
    settings.EVENTS_STREAM_ON_WSGI = True
    api.post("/v1/flags", {"key": "f"}, format="json")
    response = api.get("/v1/events?after=0", HTTP_ACCEPT="text/event-stream")
    chunks = iter(response.streaming_content)

    opening, event = next(chunks), next(chunks)
    response.close()

    assert response.status_code == 200 and response["Content-Type"] == "text/event-stream"
    assert response["Cache-Control"] == "no-cache"
    assert opening == b": events\n\n"
    assert event.startswith(b"id: ") and b"\nevent: flag.created\ndata: {" in event
