"""Admin saves and deletes go through the write services, like every other write path.

`ServiceWriteAdmin` replaces `ModelAdmin`'s `obj.save()` / `obj.delete()` with a call to the
service of the use case (architecture.md, The write path), so the admin gets the same validation,
version bump, audit entry and cache invalidation as the API. Validation happens in the form's
`clean()` (a dry run with the engine), so errors render next to their field; a refusal that only
the save itself can detect (a concurrent change, a key taken in between) re-renders the same form
with the error in place instead of a 500.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from django import forms
from django.contrib import messages
from django.db import models
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from kernel.admin_base import ModelAdminBase
from kernel.context import acting_as
from kernel.errors import ApiError, Invalid, as_api_error

M = TypeVar("M", bound=models.Model)

_REFUSED_ATTR = "_flagsvc_save_refused"
_HEAD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SaveRefused(Exception):
    """A service refused the write; carries the error to show on the form."""

    def __init__(self, error: ApiError) -> None:
        self.error = error
        super().__init__(error.message)


def refused(exc: Exception) -> SaveRefused | None:
    err = as_api_error(exc)
    return SaveRefused(err) if err is not None else None


def actor_of(request: HttpRequest) -> str:
    return f"user:{request.user.get_username()}"


class ServiceForm(forms.ModelForm):
    """A model form whose instance is never saved by Django: the admin hands `cleaned_data` to a service.

    `_post_clean` is a no-op on purpose: the model's own field validation would judge a flag by
    different rules than the engine (an empty rule list is "blank" to Django), and the instance is
    not what gets saved.
    """

    admin_request: ClassVar[HttpRequest | None] = None

    def field_for_path(self, path: str) -> str | None:
        """The form field that shows an error at an engine path: `rules[2].when.op` → `rules`."""
        match = _HEAD.match(path)
        return match.group(0) if match else None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The engine's and the services' problems with their exact paths (`rules[1].when.any[0].value`),
        # in the order found: the admin's editors show each at the control that edits that path.
        self.problems: list[dict[str, str]] = []

    def problems_at_paths(self, field_paths: Mapping[str, str]) -> list[dict[str, str]]:
        """`problems`, and every other error of the fields in `field_paths` (form field → the
        document path it edits) at that path: a JSON box that does not parse never reached the engine."""
        if not self.is_bound:
            return []
        found = list(self.problems)
        known = {f"{p['path']}: {p['message']}" for p in found} | {p["message"] for p in found}
        for field, path in field_paths.items():
            for message in self.errors.get(field, []):
                if message not in known:
                    found.append({"path": path, "message": str(message)})
        return found

    def add_api_error(self, err: ApiError) -> None:
        fields = err.details.get("fields") if isinstance(err, Invalid) else None
        if isinstance(fields, dict) and fields:
            for path, problems in fields.items():
                target = self.field_for_path(str(path))
                for problem in problems:
                    self.problems.append({"path": str(path), "message": str(problem)})
                    self.add_error(target if target in self.fields else None, f"{path}: {problem}")
            return
        target = None
        path = None
        if err.code == "prerequisite_cycle":
            target = path = "prerequisites"
        elif isinstance(err.details.get("field"), str):
            path = err.details["field"]
            target = self.field_for_path(path)
        if path is not None:
            self.problems.append({"path": path, "message": err.message})
        self.add_error(target if target in self.fields else None, err.message)

    def add_engine_error(self, exc: Exception) -> None:
        err = as_api_error(exc)
        if err is None:
            raise exc
        self.add_api_error(err)

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or self.cleaned_data
        if not self.errors:
            self.clean_document()
        err = getattr(self.admin_request, _REFUSED_ATTR, None)
        if isinstance(err, ApiError):
            self.add_api_error(err)
        return cleaned

    def clean_document(self) -> None:
        """Subclasses: validate the whole document with the engine (a dry run of the service)."""

    def _post_clean(self) -> None:
        pass


class ServiceWriteAdmin(ModelAdminBase[M]):
    """`save_model`/`delete_model` call `write`/`remove`, which call the services.

    The services open non-durable `transaction.atomic()` blocks, so they nest inside the
    transaction Django's admin opens around the change form.
    """

    def write(self, request: HttpRequest, form: Any, change: bool) -> M:
        raise NotImplementedError

    def remove(self, request: HttpRequest, obj: M) -> None:
        raise NotImplementedError

    def get_form(
        self, request: HttpRequest, obj: M | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"admin_request": request})

    def save_model(self, request: HttpRequest, obj: M, form: Any, change: bool) -> None:
        reason = form.cleaned_data.get("reason") or None  # a form's "Reason for this change" field
        try:
            with acting_as(None, reason=reason):
                saved = self.write(request, form, change)
        except Exception as exc:
            error = refused(exc)
            if error is None:
                raise
            raise error from exc
        for fld in self.model._meta.concrete_fields:
            setattr(obj, fld.attname, getattr(saved, fld.attname))
        obj._state.adding = False
        obj._state.db = saved._state.db

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Nothing to save: the service wrote everything (no many-to-many fields, no inlines)."""

    def delete_model(self, request: HttpRequest, obj: M) -> None:
        try:
            self.remove(request, obj)
        except Exception as exc:
            error = refused(exc)
            if error is None:
                raise
            raise error from exc

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        view = super().changeform_view
        try:
            return view(request, object_id, form_url, extra_context)
        except SaveRefused as exc:
            # The transaction of the first attempt has rolled back. Render the same form again
            # with the service's error at its field (ServiceForm.clean picks it up).
            setattr(request, _REFUSED_ATTR, exc.error)
            return view(request, object_id, form_url, extra_context)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except SaveRefused as exc:
            self.message_user(request, f"Nothing was deleted: {exc.error.message}", messages.ERROR)
            opts = self.model._meta
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[object_id])
            return HttpResponseRedirect(url)
