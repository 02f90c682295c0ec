"""Racing writers on real PostgreSQL cannot break the ruleset (issue 10, item 3).

Each race runs many rounds of two real concurrent requests through the whole API stack (two threads,
each with its own database connection). Either order may win, but after every round the stored ruleset
compiles with the engine, every live flag the API lists is in the compiled ruleset, every segment and
prerequisite it names exists (with the variants it names) and no prerequisite chain loops.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from django.db import connection, connections
from flagsvc_sdk.engine import compile_ruleset
from rest_framework.test import APIClient

from flags.config_io import ImportRejected, ruleset_import
from flags.mappers import flag_to_engine
from flags.selectors import live_flags_for_evaluation
from segments.mappers import segment_to_engine
from segments.selectors import segments_for_evaluation
from tenancy.models import Tenant

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="runs in the PostgreSQL pass of make test"),
]

ROUNDS = 20


def at_once(*requests: Callable[[], Any]) -> list[Any]:
    """Run each request in its own thread (and connection), released together; their responses."""
    barrier = threading.Barrier(len(requests))
    responses: list[Any] = [None] * len(requests)

    def worker(index: int) -> None:
        try:
            barrier.wait(10)
            responses[index] = requests[index]()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(response is not None for response in responses), "a request did not finish within 60 s"
    return responses


def listed_live_flags(api: APIClient) -> set[str]:
    keys: set[str] = set()
    url: str | None = "/v1/flags?limit=200"
    while url:
        page = api.get(url).json()
        keys |= {flag["key"] for flag in page["results"]}
        url = page["next"]
    return keys


def assert_ruleset_whole(api: APIClient, tenant: Tenant) -> None:
    """The stored ruleset compiles, holds every flag the API calls live, and refers to nothing missing;
    and the service's own evaluation serves every one of them (none is `FLAG_NOT_FOUND`)."""
    flags = [flag_to_engine(flag) for flag in live_flags_for_evaluation(tenant=tenant)]
    segments = [segment_to_engine(segment) for segment in segments_for_evaluation(tenant=tenant)]
    compiled = compile_ruleset(tenant=tenant.slug, version="check", flags=flags, segments=segments)
    listed = listed_live_flags(api)
    assert listed <= set(compiled.flags), "a live flag is missing from the compiled ruleset"
    for flag in compiled.flags.values():
        for prerequisite in flag.prerequisites:
            required = compiled.flags.get(prerequisite.flag_key)
            assert required is not None, f"{flag.key} requires {prerequisite.flag_key}, which is not live"
            offered = {variant["key"] for variant in required.doc["variants"]}
            assert prerequisite.variants <= offered, f"{flag.key} requires variants {required.key} lacks"
    edges = {key: [p.flag_key for p in flag.prerequisites] for key, flag in compiled.flags.items()}
    assert find_loop(edges) is None, f"prerequisite cycle {find_loop(edges)}"
    served = api.post(
        "/v1/evaluate/bulk", {"user": {"id": "u-1"}, "flag_keys": sorted(listed)}, format="json"
    ).json()["flags"]
    not_served = sorted(key for key, result in served.items() if result.get("error_code") is not None)
    assert not_served == [], "the service's own compiled ruleset does not serve these live flags"


def find_loop(edges: dict[str, list[str]]) -> list[str] | None:
    done: set[str] = set()

    def walk(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for target in edges.get(node, []):
            loop = walk(target, [*path, node])
            if loop is not None:
                return loop
        done.add(node)
        return None

    return next((loop for key in edges if (loop := walk(key, [])) is not None), None)


def uses(segment: str) -> list[dict[str, Any]]:
    return [{"id": "r", "when": {"segment": segment}, "serve": {"variant": "on"}}]


def needs(flag: str) -> list[dict[str, Any]]:
    return [{"flag": flag, "variants": ["on"]}]


@pytest.fixture
def writers(make_api: Any, tenant: Tenant) -> tuple[APIClient, APIClient]:
    return make_api(tenant), make_api(tenant)


def test_segment_delete_racing_a_flag_create_that_uses_it__never_leaves_a_dangling_reference(
    api, tenant, writers
):
    one, two = writers
    for round_ in range(ROUNDS):
        segment, flag = f"s{round_}", f"f{round_}"
        assert api.post("/v1/segments", {"key": segment}, format="json").status_code == 201

        deleted, created = at_once(
            partial(one.delete, f"/v1/segments/{segment}"),
            partial(two.post, "/v1/flags", {"key": flag, "rules": uses(segment)}, format="json"),
        )

        if deleted.status_code == 204:
            assert created.status_code == 422, created.content
            assert list(created.json()["error"]["details"]["fields"]) == ["rules[0].when.segment"]
        else:
            assert (deleted.status_code, created.status_code) == (409, 201), (
                deleted.content,
                created.content,
            )
            assert deleted.json()["error"]["details"]["flags"] == [flag]
        assert_ruleset_whole(api, tenant)


def test_segment_delete_racing_a_flag_patch_that_starts_using_it__never_leaves_a_dangling_reference(
    api, tenant, writers
):
    one, two = writers
    for round_ in range(ROUNDS):
        segment, flag = f"s{round_}", f"f{round_}"
        assert api.post("/v1/segments", {"key": segment}, format="json").status_code == 201
        assert api.post("/v1/flags", {"key": flag}, format="json").status_code == 201

        deleted, patched = at_once(
            partial(one.delete, f"/v1/segments/{segment}"),
            partial(two.patch, f"/v1/flags/{flag}", {"rules": uses(segment)}, format="json"),
        )

        if deleted.status_code == 204:
            assert patched.status_code == 422, patched.content
        else:
            assert (deleted.status_code, patched.status_code) == (409, 200), (
                deleted.content,
                patched.content,
            )
        assert_ruleset_whole(api, tenant)


def test_two_patches_closing_a_cycle_at_once__exactly_one_is_refused_as_a_cycle(api, tenant, writers):
    one, two = writers
    for round_ in range(ROUNDS):
        a, b = f"a{round_}", f"b{round_}"
        for key in (a, b):
            assert api.post("/v1/flags", {"key": key}, format="json").status_code == 201

        first, second = at_once(
            partial(one.patch, f"/v1/flags/{a}", {"prerequisites": needs(b)}, format="json"),
            partial(two.patch, f"/v1/flags/{b}", {"prerequisites": needs(a)}, format="json"),
        )

        statuses = sorted([first.status_code, second.status_code])
        assert statuses == [200, 409], (first.content, second.content)
        refused = first if first.status_code == 409 else second
        error = refused.json()["error"]
        assert error["code"] == "prerequisite_cycle"
        assert sorted(error["details"]["cycle"][:-1]) == [a, b]
        assert_ruleset_whole(api, tenant)


def test_archive_of_a_prerequisite_racing_a_create_of_its_dependant__never_leaves_it_required(
    api, tenant, writers
):
    one, two = writers
    for round_ in range(ROUNDS):
        prerequisite, dependant = f"p{round_}", f"d{round_}"
        assert api.post("/v1/flags", {"key": prerequisite}, format="json").status_code == 201

        archived, created = at_once(
            partial(one.delete, f"/v1/flags/{prerequisite}"),
            partial(
                two.post, "/v1/flags", {"key": dependant, "prerequisites": needs(prerequisite)}, format="json"
            ),
        )

        if archived.status_code == 204:
            assert created.status_code == 422, created.content
            assert list(created.json()["error"]["details"]["fields"]) == ["prerequisites[0].flag"]
        else:
            assert (archived.status_code, created.status_code) == (409, 201), (
                archived.content,
                created.content,
            )
            assert archived.json()["error"]["details"]["flags"] == [dependant]
        assert_ruleset_whole(api, tenant)


def test_import_racing_a_delete_of_the_segment_it_uses__never_leaves_a_dangling_reference(
    api, tenant, writers
):
    """The importer path (as `import_flags` runs it) takes the same lock and passes the same check."""
    one, _ = writers
    for round_ in range(ROUNDS):
        segment, flag = f"s{round_}", f"f{round_}"
        assert api.post("/v1/segments", {"key": segment}, format="json").status_code == 201
        document = {"format_version": 1, "flags": [{"key": flag, "rules": uses(segment)}]}

        deleted, imported = at_once(
            partial(one.delete, f"/v1/segments/{segment}"), partial(import_outcome, tenant, document)
        )

        if deleted.status_code == 204:
            assert imported == [f'flags[0] "{flag}": rules[0].when.segment'], imported
        else:
            assert (deleted.status_code, imported) == (409, "applied"), (deleted.content, imported)
        assert_ruleset_whole(api, tenant)


def import_outcome(tenant: Tenant, document: dict[str, Any]) -> str | list[str]:
    """ "applied", or where and at which field the import was rejected."""
    try:
        ruleset_import(tenant=tenant, document=document)
    except ImportRejected as rejected:
        return [f"{problem.where}: {problem.field}" for problem in rejected.problems]
    return "applied"
