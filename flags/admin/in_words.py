"""A flag or a segment in words: the read-only view a product manager reads instead of JSON.

"If country is one of NL, BE → serve on". The words for operators and groups and the date format come
from `vocabulary` (their one home); the shares of a split from `display` (the list's rollout column uses
the same). Everything is built with `format_html`, so every key, value and description is escaped.

The functions take documents (`Flag.content()`, an audit entry's `before`/`after`, a segment row as a
dict), not rows: the history page renders old versions with the same words.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from flags.admin.display import percent_text, serve_shares
from flags.admin.vocabulary import GROUP_WORDS, OPERATOR_WORDS, format_datetime

LinkFor = Callable[[str], str | None]


def _no_link(key: str) -> str | None:
    return None


@dataclass(frozen=True)
class Links:
    """Admin URLs of the tenant's segments and flags by key (None: shown without a link)."""

    segment: LinkFor = _no_link
    flag: LinkFor = _no_link

    @classmethod
    def from_maps(cls, segments: Mapping[str, str], flags: Mapping[str, str]) -> Links:
        return cls(segment=segments.get, flag=flags.get)


NO_LINKS = Links()


# --- values ------------------------------------------------------------------------------------


def _value_text(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if value == "":
        return "(empty text)"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def value_html(value: Any) -> SafeString:
    return format_html('<span class="flagsvc-value">{}</span>', _value_text(value))


def _moment_text(value: Any) -> str:
    """ISO 8601 or epoch seconds (rules.md, before/after) in the admin's date format."""
    moment: datetime | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            moment = datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            moment = None
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    return format_datetime(moment) if moment is not None else _value_text(value)


def _list_html(values: Iterable[Any]) -> SafeString:
    items = list(values)
    if not items:
        return format_html('<span class="flagsvc-value">{}</span>', "(no values)")
    return format_html_join(", ", "{}", ((value_html(v),) for v in items))


def _operand_html(op: str, value: Any) -> SafeString:
    if op in ("exists", "not_exists"):
        return mark_safe("")
    if op in ("in", "not_in"):
        return _list_html(value if isinstance(value, list) else [value])
    if op == "between" and isinstance(value, list) and len(value) == 2:
        return format_html(
            "{} and {} (from {} up to, not including, {})",
            value_html(value[0]),
            value_html(value[1]),
            _value_text(value[0]),
            _value_text(value[1]),
        )
    if op in ("before", "after"):
        return format_html('<span class="flagsvc-value">{}</span>', _moment_text(value))
    return value_html(value)


def attribute_html(name: Any) -> SafeString:
    shown = "user id" if name == "id" else str(name)
    return format_html('<span class="flagsvc-attr">{}</span>', shown)


# --- conditions ---------------------------------------------------------------------------------


def _leaf_html(condition: Mapping[str, Any], links: Links) -> SafeString:
    if "segment" in condition:
        key = str(condition.get("segment"))
        url = links.segment(key)
        name = (
            format_html('<a href="{}">{}</a>', url, key) if url else format_html("<strong>{}</strong>", key)
        )
        return format_html("user is in segment {}", name)
    op = str(condition.get("op", ""))
    words = OPERATOR_WORDS.get(op, op)
    operand = _operand_html(op, condition.get("value"))
    if operand:
        return format_html("{} {} {}", attribute_html(condition.get("attr")), words, operand)
    return format_html("{} {}", attribute_html(condition.get("attr")), words)


def _group(condition: Mapping[str, Any]) -> tuple[str, list[Any]] | None:
    for name in ("all", "any"):
        if name in condition and isinstance(condition[name], list):
            return name, condition[name]
    if "not" in condition:
        return "not", [condition["not"]]
    return None


def condition_html(condition: Any, links: Links = NO_LINKS) -> SafeString:
    """One condition (rules.md, Conditions) as words; groups as nested lists."""
    if not isinstance(condition, Mapping):
        return format_html('<span class="flagsvc-value">{}</span>', _value_text(condition))
    group = _group(condition)
    if group is None:
        return _leaf_html(condition, links)
    name, members = group
    if name == "all" and not members:
        return mark_safe("always (an empty “all of” group)")
    if name == "any" and not members:
        return mark_safe("never (an empty “any of” group)")
    if name == "not" and len(members) == 1 and _group(members[0]) is None and isinstance(members[0], Mapping):
        return format_html('<span class="flagsvc-group">not</span>: {}', _leaf_html(members[0], links))
    items = format_html_join("", "<li>{}</li>", ((condition_html(m, links),) for m in members))
    heading = GROUP_WORDS[name] + (" these" if name != "not" else "")
    return format_html(
        '<span class="flagsvc-group flagsvc-group-{}">{}</span>:<ul class="flagsvc-cond-group">{}</ul>',
        name,
        heading,
        items,
    )


# --- serves and flags --------------------------------------------------------------------------


def serve_words(serve: Any, variants: list[Any]) -> str:
    """`on`, or `20 % on, 80 % off`; `None` (rules.md: the default left empty) splits by the weights."""
    shares = serve_shares(serve, variants)
    if not shares:
        return "nobody (every weight is 0)"
    if len(shares) == 1:
        return shares[0][0]
    return ", ".join(f"{percent_text(share)} {key}" for key, share in shares)


def serve_html(serve: Any, variants: list[Any]) -> SafeString:
    return format_html('<span class="flagsvc-serve">{}</span>', serve_words(serve, variants))


def rule_html(rule: Any, variants: list[Any], links: Links = NO_LINKS) -> SafeString:
    """ "If country is one of NL, BE → serve on", with the rule's id and description."""
    if not isinstance(rule, Mapping):
        return format_html("{}", _value_text(rule))
    description = str(rule.get("description") or "")
    about = format_html(' <span class="flagsvc-rule-about">{}</span>', description) if description else ""
    return format_html(
        '<span class="flagsvc-rule-id">{}</span>{}<div class="flagsvc-rule-text">If {} → serve {}</div>',
        rule.get("id", "?"),
        about,
        condition_html(rule.get("when"), links),
        serve_html(rule.get("serve"), variants),
    )


def _ids_html(ids: list[Any]) -> SafeString:
    shown, more = ids[:50], len(ids) - 50
    text = format_html_join(", ", "{}", ((value_html(i),) for i in shown))
    return format_html("{} and {} more", text, more) if more > 0 else text


def targets_html(targets: Any, off_variant: str, flag_type: str) -> SafeString:
    targets = targets if isinstance(targets, Mapping) else {}
    allow = list(targets.get("allow") or [])
    deny = list(targets.get("deny") or [])
    allow_variant = targets.get("allow_variant") or ("on" if flag_type == "boolean" else "?")
    rows = []
    if deny:
        rows.append(
            format_html("<li>Always <strong>{}</strong> (deny list): {}</li>", off_variant, _ids_html(deny))
        )
    if allow:
        rows.append(
            format_html(
                "<li>Always <strong>{}</strong> (allow list): {}</li>", allow_variant, _ids_html(allow)
            )
        )
    if not rows:
        return format_html('<p class="help">{}</p>', "No user is targeted by id.")
    return format_html('<ul class="flagsvc-words-list">{}</ul>', mark_safe("".join(rows)))  # noqa: S308


def variants_html(variants: list[Any]) -> SafeString:
    """Each variant, its value and its share of a split by the weights (`display.serve_shares`)."""
    shares = dict(serve_shares(None, variants))
    rows = format_html_join(
        "",
        "<tr><td><strong>{}</strong></td><td>{}</td><td>{}</td></tr>",
        (
            (v.get("key"), value_html(v.get("value")), percent_text(shares.get(str(v.get("key")), 0.0)))
            for v in variants
            if isinstance(v, Mapping)
        ),
    )
    return format_html(
        '<table class="flagsvc-words-variants">'
        '<thead><tr><th scope="col">Variant</th><th scope="col">Value</th><th scope="col">Weight</th></tr>'
        "</thead><tbody>{}</tbody></table>",
        rows,
    )


@dataclass
class _Sections:
    parts: list[SafeString] = field(default_factory=list)

    def add(self, title: str | None, body: SafeString, css: str) -> None:
        heading = format_html("<h3>{}</h3>", title) if title else ""
        self.parts.append(format_html('<section class="flagsvc-words-{}">{}{}</section>', css, heading, body))

    def html(self) -> SafeString:
        return format_html('<div class="flagsvc-words">{}</div>', mark_safe("".join(self.parts)))  # noqa: S308


def flag_in_words(
    document: Mapping[str, Any], links: Links = NO_LINKS, *, archived: bool = False
) -> SafeString:
    """The whole flag: state, prerequisites, targets, rules (first match wins), everyone else, variants."""
    variants = [v for v in document.get("variants") or [] if isinstance(v, Mapping)]
    off_variant = str(document.get("off_variant") or "off")
    flag_type = str(document.get("type") or "boolean")
    sections = _Sections()
    if archived:
        state = format_html(
            "<p><strong>{}</strong>: {}</p>",
            "Archived",
            "not evaluated; clients get their own default. Restore it to change it.",
        )
    elif document.get("state") == "on":
        state = format_html(
            "<p><strong>{}</strong>: {}</p>", "On", "users get what the sections below say, in order."
        )
    else:
        state = format_html(
            "<p><strong>Off</strong>: everyone gets <strong>{}</strong>. When turned on, the sections "
            "below apply.</p>",
            off_variant,
        )
    sections.add("State", state, "state")

    prerequisites = [p for p in document.get("prerequisites") or [] if isinstance(p, Mapping)]
    if prerequisites:
        items = []
        for prerequisite in prerequisites:
            key = str(prerequisite.get("flag"))
            url = links.flag(key)
            name = (
                format_html('<a href="{}">{}</a>', url, key)
                if url
                else format_html("<strong>{}</strong>", key)
            )
            wanted = " or ".join(str(v) for v in prerequisite.get("variants") or [])
            items.append(
                format_html("<li>Only when flag {} gives {}; otherwise {}</li>", name, wanted, off_variant)
            )
        sections.add(
            "Prerequisites",
            format_html('<ul class="flagsvc-words-list">{}</ul>', mark_safe("".join(items))),  # noqa: S308
            "prerequisites",
        )

    sections.add("Targets", targets_html(document.get("targets"), off_variant, flag_type), "targets")

    rules = list(document.get("rules") or [])
    if rules:
        rule_items = format_html_join(
            "", '<li class="flagsvc-words-rule">{}</li>', ((rule_html(r, variants, links),) for r in rules)
        )
        body = format_html('<ol class="flagsvc-words-rules">{}</ol>', rule_items)
    else:
        body = format_html('<p class="help">{}</p>', "No rules.")
    sections.add("Rules (the first that matches serves)", body, "rules")

    bucket_by = document.get("bucket_by") or "id"
    by = (
        format_html(
            ' <span class="help">(users are placed in a split by {})</span>', attribute_html(bucket_by)
        )
        if bucket_by != "id"
        else ""
    )
    everyone = format_html(
        "<p><strong>Everyone else</strong>: {}{}</p>", serve_html(document.get("default"), variants), by
    )
    sections.add(None, everyone, "default")
    sections.add("Variants", variants_html(variants), "variants")
    return sections.html()


def segment_in_words(document: Mapping[str, Any]) -> SafeString:
    """Included ids, excluded ids, and the condition (rules.md, Conditions, last paragraph)."""
    sections = _Sections()
    included = list(document.get("included") or [])
    excluded = list(document.get("excluded") or [])
    when = document.get("when")
    members = []
    if included:
        members.append(format_html("<li>Always in: {}</li>", _ids_html(included)))
    if when is not None:
        members.append(format_html("<li>Anyone else for whom {}</li>", condition_html(when)))
        if excluded:
            members.append(format_html("<li>Except: {}</li>", _ids_html(excluded)))
    elif not included:
        members.append(format_html("<li>{}</li>", "Nobody (no ids and no condition)."))
    else:
        members.append(format_html("<li>{}</li>", "Nobody else (no condition)."))
    sections.add(
        "Who is in this segment",
        format_html('<ul class="flagsvc-words-list">{}</ul>', mark_safe("".join(members))),  # noqa: S308
        "members",
    )
    return sections.html()
