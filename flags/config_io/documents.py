"""The config-as-code document: export a tenant's ruleset, and read and write it as JSON or YAML.

Content fields only (no version, timestamps or archive state); segments and flags sorted by key, nested
objects by key: the same ruleset always gives the same bytes, which diff well in version control.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import yaml
from flagsvc_sdk.engine import ValidationFailed, validate_json

from flags import selectors as flag_selectors
from flags.models import FLAG_CONTENT_FIELDS
from kernel.json_input import NotJson, parse_json
from segments import selectors as segment_selectors
from segments.models import SEGMENT_CONTENT_FIELDS
from tenancy.models import Tenant

FORMAT_VERSION = 1
DOCUMENT_FIELDS = ("format_version", "segments", "flags")
Format = Literal["json", "yaml"]


def ruleset_export(*, tenant: Tenant) -> dict[str, Any]:
    """The tenant's segments and live flags, content fields only, in a deterministic order."""
    segments = [
        _ordered(segment.content(), SEGMENT_CONTENT_FIELDS)
        for segment in segment_selectors.segment_queryset(tenant=tenant)
    ]
    flags = [
        _ordered(flag.content(), FLAG_CONTENT_FIELDS) for flag in flag_selectors.flag_queryset(tenant=tenant)
    ]
    return {"format_version": FORMAT_VERSION, "segments": segments, "flags": flags}


def _ordered(content: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    return {name: _sorted_keys(content[name]) for name in fields}


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(item) for item in value]
    return value


class _Loader(yaml.SafeLoader):
    """YAML without the 1.1 surprises: `on`, `off`, `yes`, `no` and dates stay strings."""


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def document_dumps(document: Mapping[str, Any], fmt: Format = "json") -> str:
    if fmt == "yaml":
        return yaml.safe_dump(dict(document), sort_keys=False, allow_unicode=True, default_flow_style=False)
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def document_loads(text: str, fmt: Format | None = None) -> Any:
    """Parse JSON or YAML (`fmt=None`: JSON if it parses, else YAML). Raises ValueError with a position.

    Either way the document is JSON that every SDK reads the same (`kernel.json_input`): YAML's
    `.inf`, `.nan`, huge integers and deep nesting are refused as they are in an API body.
    """
    try:
        if fmt != "yaml":
            try:
                return parse_json(text, root="document")
            except NotJson as exc:
                if fmt == "json":
                    raise ValueError(f"not valid JSON: {exc}") from None
        try:
            document = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as exc:
            raise ValueError(f"neither valid JSON nor valid YAML: {exc}") from None
        except RecursionError:
            raise ValueError("refused: it nests too deep to read") from None
        validate_json(document, root="document")
        return document
    except ValidationFailed as exc:
        raise ValueError(f"refused: {exc}") from None
