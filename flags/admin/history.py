"""What one change to a flag did, in words: the history page's diff and the rollback confirmation.

A change is read from the two documents (an audit entry's `before` and `after`, or the current
content and a stored version), part by part, the way a product manager thinks of a flag: the state,
each variant ("on 20 % → 50 %"), the targets, each rule by id (added, removed, changed, with the rule
in words before → after, or moved), who everyone else gets, the prerequisites, and the plain fields.
`audit.diff.document_diff` stays the API's diff (`path → {from, to}`); this is its reading.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from flags.admin.display import percent_text, serve_shares
from flags.admin.in_words import (
    NO_LINKS,
    Links,
    attribute_html,
    rule_html,
    serve_words,
    value_html,
)
from flags.models import FLAG_CONTENT_FIELDS

Kind = Literal["added", "removed", "changed", "moved"]

PLAIN_FIELDS: tuple[tuple[str, str], ...] = (
    ("name", "Name"),
    ("description", "Description"),
    ("off_variant", "Off variant (served when off, denied or a prerequisite fails)"),
)


@dataclass(frozen=True)
class Change:
    kind: Kind
    subject: str
    before: SafeString | str | None = None
    after: SafeString | str | None = None


def content_of(document: Mapping[str, Any] | None) -> dict[str, Any]:
    """The parts of a flag document that a rollback restores (no version, dates or archive mark)."""
    return {k: document.get(k) for k in FLAG_CONTENT_FIELDS} if document else {}


def _variants(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [v for v in document.get("variants") or [] if isinstance(v, dict)]


def _shares(variants: list[dict[str, Any]]) -> dict[str, float]:
    return dict(serve_shares(None, variants))


def _variant_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    before, after = _variants(old), _variants(new)
    old_by_key = {str(v.get("key")): v for v in before}
    new_by_key = {str(v.get("key")): v for v in after}
    old_shares, new_shares = _shares(before), _shares(after)
    changes: list[Change] = []
    for key, variant in new_by_key.items():
        share = percent_text(new_shares.get(key, 0.0))
        if key not in old_by_key:
            changes.append(
                Change(
                    "added",
                    f"Variant {key}",
                    after=format_html("{}, weight {}", value_html(variant.get("value")), share),
                )
            )
            continue
        previous = old_by_key[key]
        if previous.get("value") != variant.get("value"):
            changes.append(
                Change(
                    "changed",
                    f"Variant {key}: value",
                    value_html(previous.get("value")),
                    value_html(variant.get("value")),
                )
            )
        old_share = percent_text(old_shares.get(key, 0.0))
        if old_share != share:
            changes.append(Change("changed", f"Variant {key}", old_share, share))
    for key, variant in old_by_key.items():
        if key not in new_by_key:
            changes.append(Change("removed", f"Variant {key}", before=value_html(variant.get("value"))))
    if [str(v.get("key")) for v in before if str(v.get("key")) in new_by_key] != [
        str(v.get("key")) for v in after if str(v.get("key")) in old_by_key
    ]:
        changes.append(
            Change(
                "moved",
                "Variant order",
                ", ".join(str(v.get("key")) for v in before),
                ", ".join(str(v.get("key")) for v in after),
            )
        )
    return changes


def _ids(document: Mapping[str, Any], part: str) -> list[str]:
    targets = document.get("targets") if isinstance(document.get("targets"), Mapping) else {}
    return [str(i) for i in (targets or {}).get(part) or []]


def _id_list(ids: list[str]) -> SafeString:
    shown = ids[:20]
    text = format_html_join(", ", "{}", ((value_html(i),) for i in shown))
    return format_html("{} and {} more", text, len(ids) - 20) if len(ids) > 20 else text


def _target_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    changes: list[Change] = []
    for part, title in (("allow", "Allow list"), ("deny", "Deny list")):
        before, after = _ids(old, part), _ids(new, part)
        added = [i for i in after if i not in set(before)]
        removed = [i for i in before if i not in set(after)]
        if added:
            changes.append(Change("added", title, after=_id_list(added)))
        if removed:
            changes.append(Change("removed", title, before=_id_list(removed)))
    old_targets = old.get("targets") if isinstance(old.get("targets"), Mapping) else {}
    new_targets = new.get("targets") if isinstance(new.get("targets"), Mapping) else {}
    before_variant = (old_targets or {}).get("allow_variant")
    after_variant = (new_targets or {}).get("allow_variant")
    if before_variant != after_variant:
        changes.append(
            Change(
                "changed",
                "Allowed users get",
                before_variant or "(the default)",
                after_variant or "(the default)",
            )
        )
    return changes


def _rules_by_id(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(r.get("id")): r for r in document.get("rules") or [] if isinstance(r, dict)}


def _rule_changes(old: Mapping[str, Any], new: Mapping[str, Any], links: Links) -> list[Change]:
    before, after = _rules_by_id(old), _rules_by_id(new)
    old_variants, new_variants = _variants(old), _variants(new)
    changes: list[Change] = []
    for rule_id, rule in after.items():
        if rule_id not in before:
            changes.append(Change("added", f"Rule {rule_id}", after=rule_html(rule, new_variants, links)))
        elif before[rule_id] != rule or (
            rule.get("serve") is None and serve_words(None, old_variants) != serve_words(None, new_variants)
        ):
            changes.append(
                Change(
                    "changed",
                    f"Rule {rule_id}",
                    rule_html(before[rule_id], old_variants, links),
                    rule_html(rule, new_variants, links),
                )
            )
    for rule_id, rule in before.items():
        if rule_id not in after:
            changes.append(Change("removed", f"Rule {rule_id}", before=rule_html(rule, old_variants, links)))
    kept_before = [i for i in before if i in after]
    kept_after = [i for i in after if i in before]
    if kept_before != kept_after:
        changes.append(Change("moved", "Rule order (first match wins)", ", ".join(before), ", ".join(after)))
    return changes


def _prerequisite_words(prerequisites: Any) -> dict[str, str]:
    return {
        str(p.get("flag")): " or ".join(str(v) for v in p.get("variants") or [])
        for p in prerequisites or []
        if isinstance(p, dict)
    }


def _prerequisite_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    before, after = (
        _prerequisite_words(old.get("prerequisites")),
        _prerequisite_words(new.get("prerequisites")),
    )
    changes: list[Change] = []
    for key, wanted in after.items():
        if key not in before:
            changes.append(Change("added", f"Prerequisite {key}", after=f"must give {wanted}"))
        elif before[key] != wanted:
            changes.append(
                Change("changed", f"Prerequisite {key}", f"must give {before[key]}", f"must give {wanted}")
            )
    for key, wanted in before.items():
        if key not in after:
            changes.append(Change("removed", f"Prerequisite {key}", before=f"must give {wanted}"))
    return changes


def flag_changes(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, links: Links = NO_LINKS
) -> list[Change]:
    """Each part of the flag that differs between two documents, in the order a person reads a flag."""
    old, new = content_of(before), content_of(after)
    changes: list[Change] = []
    if old.get("state") != new.get("state") and old and new:
        changes.append(Change("changed", "State", str(old.get("state")), str(new.get("state"))))
    changes += _variant_changes(old, new)
    changes += _prerequisite_changes(old, new)
    changes += _target_changes(old, new)
    changes += _rule_changes(old, new, links)
    everyone_before = serve_words(old.get("default"), _variants(old))
    everyone_after = serve_words(new.get("default"), _variants(new))
    if everyone_before != everyone_after:
        changes.append(Change("changed", "Everyone else", everyone_before, everyone_after))
    for field, title in PLAIN_FIELDS:
        if (old.get(field) or "") != (new.get(field) or ""):
            changes.append(Change("changed", title, old.get(field) or "(empty)", new.get(field) or "(empty)"))
    if (old.get("bucket_by") or "id") != (new.get("bucket_by") or "id"):
        changes.append(
            Change(
                "changed",
                "Splits place users by",
                attribute_html(old.get("bucket_by") or "id"),
                attribute_html(new.get("bucket_by") or "id"),
            )
        )
    old_tags, new_tags = [str(t) for t in old.get("tags") or []], [str(t) for t in new.get("tags") or []]
    if old_tags != new_tags:
        changes.append(
            Change("changed", "Tags", ", ".join(old_tags) or "none", ", ".join(new_tags) or "none")
        )
    return changes


def restored_version(after: Mapping[str, Any] | None, earlier: Mapping[int, Mapping[str, Any]]) -> int | None:
    """The version whose content a rollback made current: the newest earlier version with that content."""
    content = content_of(after)
    if not content:
        return None
    for version in sorted(earlier, reverse=True):
        if content_of(earlier[version]) == content:
            return version
    return None
