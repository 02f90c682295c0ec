"""Form fields of the admin editors: JSON documents, lists of user ids, tags.

The fields check only the shape a person can get wrong while typing (JSON syntax, a list where a
list belongs). Whether the content is a valid flag or segment is the engine's call (style.md: domain
validation lives in the engine's `validate`), made in the form's `clean()`.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from django import forms
from django.core.exceptions import ValidationError
from flagsvc_sdk.engine import ValidationFailed

from kernel.json_input import NotJson, parse_json

JsonKind = Literal["list", "object", "object_or_null"]

_KIND_WORDS: dict[str, str] = {
    "list": "a JSON list [...]",
    "object": "a JSON object {...}",
    "object_or_null": "a JSON object {...}, or null / empty",
}


class JsonEditor(forms.Textarea):
    """A monospace textarea that flag_admin.js checks as you type (syntax only)."""

    def __init__(self, kind: JsonKind, rows: int = 6) -> None:
        super().__init__(
            attrs={
                "class": "flagsvc-json vLargeTextField",
                "rows": rows,
                "spellcheck": "false",
                "autocomplete": "off",
                "data-json-kind": kind,
            }
        )


class JsonDocumentField(forms.JSONField):
    """A JSON value of one kind, shown pretty-printed; an empty box means `[]` or `null`."""

    def __init__(self, *, kind: JsonKind, rows: int = 6, **kwargs: Any) -> None:
        self.kind = kind
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", JsonEditor(kind, rows))
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return [] if self.kind == "list" else None
        if isinstance(value, str):
            try:
                return parse_json(value, root="value")
            except NotJson as exc:
                raise ValidationError(
                    "Not valid JSON: %(msg)s.", code="invalid", params={"msg": exc}
                ) from None
            except ValidationFailed as exc:
                raise ValidationError(
                    [f"{path}: {message}" for path, messages in exc.fields.items() for message in messages],
                    code="invalid",
                ) from None
        return super().to_python(value)

    def bound_data(self, data: Any, initial: Any) -> Any:
        """Django's, reading through `parse_json` too (its own `json.loads` recursed on deep text)."""
        if self.disabled:
            return initial
        if data is None:
            return None
        try:
            return parse_json(data, root="value")
        except (NotJson, ValidationFailed):
            return forms.fields.InvalidJSONInput(data)

    def validate(self, value: Any) -> None:
        if value is None and self.kind == "object_or_null":
            return
        expected = list if self.kind == "list" else dict
        if not isinstance(value, expected):
            raise ValidationError(
                "Must be %(kind)s.", code="invalid_kind", params={"kind": _KIND_WORDS[self.kind]}
            )
        if self.required and not value:
            raise ValidationError(self.error_messages["required"], code="required")

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, str):  # the person's own text, kept as typed (also when invalid)
            return value
        if value is None:
            return ""
        return json.dumps(value, ensure_ascii=False, indent=2)

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return bool(self.to_python(data) != initial)
        except ValidationError:
            return True


class IdListField(forms.CharField):
    """User ids, one per line (blank lines ignored)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("strip", False)
        kwargs.setdefault(
            "widget", forms.Textarea(attrs={"rows": 3, "class": "flagsvc-ids", "spellcheck": "false"})
        )
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        if isinstance(value, list):
            return [str(v) for v in value]
        text = super().to_python(value) or ""
        return [line.strip() for line in text.splitlines() if line.strip()]

    def prepare_value(self, value: Any) -> Any:
        return "\n".join(str(v) for v in value) if isinstance(value, list) else value


class TagListField(forms.CharField):
    """Tags separated by commas: `checkout, team:payments`."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        if isinstance(value, list):
            return [str(v) for v in value]
        text = super().to_python(value) or ""
        return [tag.strip() for tag in text.split(",") if tag.strip()]

    def prepare_value(self, value: Any) -> Any:
        return ", ".join(str(v) for v in value) if isinstance(value, list) else value


class ReasonField(forms.CharField):
    """ "Reason for this change": stored on the audit entry (api.md, Safe change); the text's rules are
    `kernel.change_reason`'s, whether the tenant requires one is the form's `clean()` to ask."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("label", "Reason for this change")
        kwargs.setdefault(
            "help_text", "Why? Shown in the history and the audit log (at most 500 characters)."
        )
        kwargs.setdefault("widget", forms.TextInput(attrs={"class": "vLargeTextField", "maxlength": 500}))
        super().__init__(required=False, strip=True, **kwargs)

    def clean(self, value: Any) -> str | None:
        from kernel.change_reason import parse_change_reason
        from kernel.errors import Invalid

        text = super().clean(value)
        try:
            return parse_change_reason(text)
        except Invalid as exc:
            raise ValidationError(exc.details["fields"]["reason"]) from None
