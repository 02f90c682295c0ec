"""Import a config-as-code document: plan against the future state, then apply it all or nothing."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

from flagsvc_sdk.engine import (
    DefinitionError,
    PayloadTooLarge,
    PrerequisiteCycle,
    ValidationFailed,
    validate_flag,
    validate_segment,
)

from audit.diff import document_diff
from flags import selectors as flag_selectors
from flags.approvals import ApprovalRequired
from flags.config_io.documents import DOCUMENT_FIELDS, FORMAT_VERSION
from flags.integrity import BrokenFlag, broken_flags
from flags.models import FLAG_READ_ONLY_FIELDS
from flags.services import flag_archive, flag_create, flag_update
from kernel.errors import ApiError
from segments import selectors as segment_selectors
from segments.services import segment_create, segment_delete, segment_update
from tenancy.models import Tenant
from tenancy.ruleset import ruleset_change

IMPORT_ACTOR = "system:import_flags"
Entity = Literal["segment", "flag"]
Action = Literal["create", "update", "archive", "delete"]

_SEGMENT_BOOKKEEPING = ("version", "created_at", "updated_at")


@dataclass(frozen=True)
class Problem:
    """One reason the document cannot be applied, at the entity and field it concerns."""

    where: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.field}: {self.message}"


class ImportRejected(Exception):
    """The document was not applied and nothing was written; `problems` say why."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"Nothing was written: {len(problems)} problem(s) in the document.\n{lines}")


@dataclass(frozen=True)
class EntityChange:
    entity: Entity
    key: str
    action: Action
    diff: dict[str, dict[str, Any]] = field(default_factory=dict)
    content: dict[str, Any] | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class ImportPlan:
    """The changes an import makes (or, on a dry run, would make), in the order it makes them."""

    changes: tuple[EntityChange, ...]
    unchanged: int
    applied: bool
    change_requests: tuple[tuple[str, int], ...] = ()
    """(flag key, change request id) of the protected flags the import proposed instead of writing."""

    def count(self, action: Action) -> int:
        return sum(1 for change in self.changes if change.action == action)

    def render(self) -> list[str]:
        signs = {"create": "+", "update": "~", "archive": "-", "delete": "-"}
        lines: list[str] = []
        for change in self.changes:
            lines.append(f"{signs[change.action]} {change.action} {change.entity} {change.key}")
            for path, values in change.diff.items():
                if change.action == "create" and (path == "key" or values["to"] in (None, "", [], {})):
                    continue
                lines.append(f"    {path}: {_show(values['from'])} -> {_show(values['to'])}")
        verbs: tuple[Action, ...] = ("create", "update", "archive", "delete")
        done = ", ".join(
            f"{self.count(v)} {v}d" if self.applied else f"{self.count(v)} to {v}" for v in verbs
        )
        lines.append(f"{done}, {self.unchanged} unchanged.")
        for key, cr_id in self.change_requests:
            lines.append(f"! flag {key} is protected: change request #{cr_id} opened; it needs approval.")
        if not self.changes:
            lines.append("Nothing to do.")
        elif not self.applied:
            lines.append("Dry run: nothing was written.")
        return lines


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 200 else text[:197] + "..."


@dataclass
class _Entry:
    where: str
    key: str
    content: dict[str, Any]


def ruleset_import(
    *, tenant: Tenant, document: Any, dry_run: bool = False, prune: bool = False, actor: str = IMPORT_ACTOR
) -> ImportPlan:
    """Make the tenant's segments and live flags what the document says, or change nothing at all.

    Raises ImportRejected, before any write, when the document or the state it leads to is invalid.
    """
    if dry_run:
        changes, unchanged = _plan(tenant, document, prune)
        return ImportPlan(changes=tuple(changes), unchanged=unchanged, applied=False)
    try:
        # One ruleset change: planned under the tenant's lock on the state it will change, every write
        # joins it, and the ruleset check judges the final state once, before the commit.
        with ruleset_change(tenant):
            changes, unchanged = _plan(tenant, document, prune)
            opened = [cr for change in changes if (cr := _apply(tenant, change, actor)) is not None]
    except (ApiError, DefinitionError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        raise ImportRejected([Problem("ruleset", "(after the import)", message)]) from exc
    return ImportPlan(
        changes=tuple(changes), unchanged=unchanged, applied=True, change_requests=tuple(opened)
    )


@dataclass(frozen=True)
class _Stored:
    """The tenant's state the import starts from."""

    segments: dict[str, dict[str, Any]]
    flags: dict[str, dict[str, Any]]
    archived_flag_keys: frozenset[str]
    purged_flag_keys: frozenset[str]

    @classmethod
    def read(cls, tenant: Tenant) -> _Stored:
        archived = flag_selectors.flag_queryset(tenant=tenant, include_archived=True).filter(
            archived_at__isnull=False
        )
        return cls(
            segments={s.key: s.content() for s in segment_selectors.segment_queryset(tenant=tenant)},
            flags=flag_selectors.live_flag_contents(tenant=tenant),
            archived_flag_keys=frozenset(archived.values_list("key", flat=True)),
            purged_flag_keys=frozenset(flag_selectors.purged_flag_keys(tenant=tenant)),
        )


def _plan(tenant: Tenant, document: Any, prune: bool) -> tuple[list[EntityChange], int]:
    """Every check first (ImportRejected lists all it found), then the changes in the order to apply them.

    The checks run in two rounds: each entity on its own, then (once every flag of the file is known to
    be well-formed) the ruleset check (`flags.integrity.broken_flags`, the rule every write is held to)
    on the state the import leads to: the file's flags with their references, and the live flags it
    leaves alone but would break.
    """
    problems: list[Problem] = []
    segments_in, flags_in = _entries(document, problems)
    stored = _Stored.read(tenant)
    new_segments = _validated_segments(segments_in, problems)
    future_segments = {**({} if prune else stored.segments), **new_segments}
    new_flags = _validated_flags(flags_in, stored, future_segments, problems)
    if problems:
        raise ImportRejected(problems)
    future_flags = {**({} if prune else stored.flags), **new_flags}
    pruned_flags = set(stored.flags) - set(new_flags) if prune else set()
    pruned_segments = set(stored.segments) - set(new_segments) if prune else set()
    where = {entry.key: entry.where for entry in flags_in}
    for broken in broken_flags(
        flags=future_flags,
        segment_keys=future_segments,
        flags_written=set(new_flags) | pruned_flags,
        segments_written=set(new_segments) | pruned_segments,
    ):
        problems.extend(_problems_of(broken, where))
    if problems:
        raise ImportRejected(problems)

    changes: list[EntityChange] = []
    for key in sorted(new_segments):
        changes += _change("segment", key, stored.segments.get(key), new_segments[key])
    for key in _prerequisite_order(new_flags):
        changes += _change("flag", key, stored.flags.get(key), new_flags[key])
    unchanged = len(new_segments) + len(new_flags) - len(changes)
    if prune:
        changes += [
            EntityChange("flag", key, "archive") for key in sorted(set(stored.flags) - set(new_flags))
        ]
        changes += [
            EntityChange("segment", key, "delete") for key in sorted(set(stored.segments) - set(new_segments))
        ]
    return changes, unchanged


def _validated_segments(entries: list[_Entry], problems: list[Problem]) -> dict[str, dict[str, Any]]:
    validated: dict[str, dict[str, Any]] = {}
    for entry in entries:
        content = _checked(partial(validate_segment, entry.content), entry.where, problems)
        if content is not None:
            validated[entry.key] = content
    return validated


def _validated_flags(
    entries: list[_Entry], stored: _Stored, segment_keys: Mapping[str, Any], problems: list[Problem]
) -> dict[str, dict[str, Any]]:
    """Each flag on its own (prerequisites come next, once every flag of the file is known)."""
    validated: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if entry.key in stored.archived_flag_keys:
            message = "belongs to an archived flag; restore it first, or remove it from the file"
            problems.append(Problem(entry.where, "key", message))
            continue
        if entry.key in stored.purged_flag_keys:
            message = (
                "belonged to a flag that was archived and purged; choose another key, or create the "
                'flag through the API with "reuse_key": true'
            )
            problems.append(Problem(entry.where, "key", message))
            continue
        content = _checked(
            partial(validate_flag, entry.content, segment_keys=segment_keys), entry.where, problems
        )
        if content is None:
            continue
        current = stored.flags.get(entry.key)
        if current is not None and current["type"] != content["type"]:
            problems.append(Problem(entry.where, "type", f"cannot change (it is {current['type']!r})"))
            continue
        validated[entry.key] = content
    return validated


def _entries(document: Any, problems: list[Problem]) -> tuple[list[_Entry], list[_Entry]]:
    """The document's segments and flags, bookkeeping fields set aside; what is malformed goes to problems."""
    if not isinstance(document, dict):
        raise ImportRejected(
            [Problem("document", "(root)", "must be an object with format_version, segments, flags")]
        )
    if document.get("format_version") != FORMAT_VERSION:
        problems.append(
            Problem(
                "document",
                "format_version",
                f"must be {FORMAT_VERSION}; got {document.get('format_version')!r}",
            )
        )
    for name in sorted(set(document) - set(DOCUMENT_FIELDS)):
        problems.append(
            Problem("document", name, f"unknown field; the fields are {', '.join(DOCUMENT_FIELDS)}")
        )
    segments = _list_of_entries(document, "segments", _SEGMENT_BOOKKEEPING, problems)
    flags = _list_of_entries(document, "flags", FLAG_READ_ONLY_FIELDS, problems)
    return segments, flags


def _list_of_entries(
    document: dict[str, Any], name: str, bookkeeping: tuple[str, ...], problems: list[Problem]
) -> list[_Entry]:
    raw = document.get(name, [])
    if not isinstance(raw, list):
        problems.append(Problem("document", name, "must be a list of objects"))
        return []
    entries: list[_Entry] = []
    first_seen: dict[str, str] = {}
    for index, item in enumerate(raw):
        key = item.get("key") if isinstance(item, dict) else None
        where = f'{name}[{index}] "{key}"' if isinstance(key, str) else f"{name}[{index}]"
        if not isinstance(item, dict):
            problems.append(Problem(where, "(entry)", "must be an object"))
            continue
        if not isinstance(key, str) or not key:
            problems.append(Problem(where, "key", "required: a non-empty string"))
            continue
        if key in first_seen:
            problems.append(Problem(where, "key", f"duplicate of {first_seen[key]}"))
            continue
        first_seen[key] = where
        if item.get("archived_at"):
            problems.append(
                Problem(where, "archived_at", "archived flags are not imported; remove the entry")
            )
            continue
        entries.append(
            _Entry(where=where, key=key, content={k: v for k, v in item.items() if k not in bookkeeping})
        )
    return entries


def _checked(
    validate: Callable[[], dict[str, Any]], where: str, problems: list[Problem]
) -> dict[str, Any] | None:
    """Run one engine validation; its errors become problems at their exact field paths."""
    try:
        return validate()
    except ValidationFailed as exc:
        problems.extend(Problem(where, path, " ".join(messages)) for path, messages in exc.fields.items())
    except PrerequisiteCycle as exc:
        problems.append(Problem(where, "prerequisites", str(exc)))
    except PayloadTooLarge as exc:
        problems.append(Problem(where, exc.field, str(exc)))
    except DefinitionError as exc:
        problems.append(Problem(where, "(definition)", str(exc)))
    return None


def _problems_of(broken: BrokenFlag, where: Mapping[str, str]) -> list[Problem]:
    """The ruleset check's verdict on one flag, as problems of the file entry (or the live flag) it concerns."""
    if broken.written:
        place, note = where[broken.key], ""
    else:
        place, note = f'flag "{broken.key}" (live, not in the file)', "the import would break it: "
    if isinstance(broken.error, PrerequisiteCycle):
        return [Problem(place, "prerequisites", note + str(broken.error))]
    return [Problem(place, path, note + " ".join(messages)) for path, messages in broken.error.fields.items()]


def _change(
    entity: Entity, key: str, stored: dict[str, Any] | None, new: dict[str, Any]
) -> list[EntityChange]:
    """A create, an update with its field-level diff, or nothing when the content is the same."""
    diff = document_diff(stored, new)
    if stored is None:
        return [EntityChange(entity, key, "create", diff, new)]
    return [EntityChange(entity, key, "update", diff, new)] if diff else []


def _prerequisite_order(flags: dict[str, dict[str, Any]]) -> list[str]:
    """Keys sorted so that each flag comes after the flags (among these) that it names as prerequisites."""
    ordered: list[str] = []
    placed: set[str] = set()

    def place(key: str, path: frozenset[str]) -> None:
        if key in placed or key in path:  # a cycle cannot get here: validation refused it
            return
        for entry in flags[key]["prerequisites"]:
            if entry["flag"] in flags:
                place(entry["flag"], path | {key})
        placed.add(key)
        ordered.append(key)

    for key in sorted(flags):
        place(key, frozenset())
    return ordered


def _apply(tenant: Tenant, change: EntityChange, actor: str) -> tuple[str, int] | None:
    """Write one change; for a protected flag, the (key, id) of the change request the gate opened."""
    content = change.content or {}
    try:
        if change.entity == "segment":
            if change.action == "create":
                segment_create(tenant=tenant, data=content, actor=actor)
            elif change.action == "update":
                segment_update(tenant=tenant, key=change.key, data=content, actor=actor)
            else:
                segment_delete(tenant=tenant, key=change.key, actor=actor)
        elif change.action == "create":
            flag_create(tenant=tenant, actor=actor, data=content)
        elif change.action == "update":
            # The file's content is whole (normalised by the engine): a partial write replaces all of
            # it and keeps the attributes a file does not carry (kill_category, flags.attributes).
            flag_update(tenant=tenant, key=change.key, data=content, actor=actor, partial=True)
        else:
            flag_archive(tenant=tenant, key=change.key, actor=actor)
    except ApprovalRequired as exc:  # four eyes: kept, inside the import's transaction
        return change.key, exc.change_request.pk
    except (ApiError, DefinitionError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        raise ImportRejected([Problem(f'{change.entity} "{change.key}"', change.action, message)]) from exc
    return None
