"""The admin site of the control plane: our titles, and every view inside the person's tenant scope."""

from __future__ import annotations

from collections.abc import Callable
from functools import update_wrapper
from typing import Any, TypeVar, cast

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponseBase
from django.template.response import SimpleTemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse_lazy

from tenancy.admin_scoping import admin_request_scope

V = TypeVar("V", bound=Callable[..., Any])


class FlagsvcAdminSite(admin.AdminSite):
    site_header = "flagsvc — feature flags"
    site_title = "flagsvc"
    index_title = "Control plane"
    enable_nav_sidebar = True

    def admin_view(self, view: V, cacheable: bool = False) -> V:
        """Run the view, and render its template, inside the tenant scope of the signed-in person.

        Rendering happens here rather than after the view returns so that a lazy queryset evaluated
        by a template is still scoped (django-scopes raises outside a scope).
        """

        def scoped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            with admin_request_scope(request):
                response = view(request, *args, **kwargs)
                if isinstance(response, SimpleTemplateResponse) and not response.is_rendered:
                    response.render()
                return response

        update_wrapper(scoped, view)
        return cast(V, super().admin_view(scoped, cacheable))

    def get_urls(self) -> list[URLResolver | URLPattern]:
        """The page where a person created by an owner (or an operator) sets their own password."""
        set_password = auth_views.PasswordResetConfirmView.as_view(
            template_name="admin/set_password.html",
            success_url=reverse_lazy("admin:password_set_done"),
            extra_context={"site_header": self.site_header, "site_title": self.site_title},
            title="Set your password",
        )
        done = auth_views.PasswordResetCompleteView.as_view(
            template_name="admin/set_password_done.html",
            extra_context={
                "site_header": self.site_header,
                "site_title": self.site_title,
                "sign_in_url": reverse_lazy("admin:login"),
            },
            title="Your password is set",
        )
        return [
            path("set-password/done/", done, name="password_set_done"),
            path("set-password/<uidb64>/<token>/", set_password, name="password_set"),
            *super().get_urls(),
        ]
