"""The admin site of the control plane: our titles, and every view inside the person's tenant scope."""

from __future__ import annotations

from collections.abc import Callable
from functools import update_wrapper
from typing import Any, TypeVar, cast

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.template.response import SimpleTemplateResponse, TemplateResponse
from django.urls import NoReverseMatch, URLPattern, URLResolver, path, reverse, reverse_lazy
from django.views import defaults

from tenancy.admin_scoping import admin_access, admin_request_scope
from tenancy.models import Role

V = TypeVar("V", bound=Callable[..., Any])


class FlagsvcAdminSite(admin.AdminSite):
    site_header = "flagsvc — feature flags"
    site_title = "flagsvc"
    index_title = "Control plane"
    enable_nav_sidebar = True
    site_url = "/"

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

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[Any]:
        """Django's list of apps and models, with the playground (not a model) under Feature flags."""
        apps = super().get_app_list(request, app_label)
        try:
            url = reverse("admin_playground")
        except NoReverseMatch:
            return apps
        for app in apps:
            if app["app_label"] == "flags":
                app["models"].append(
                    {
                        "name": "Playground (try a user)",
                        "object_name": "Playground",
                        "admin_url": url,
                        "add_url": None,
                        "view_only": True,
                        "perms": {"view": True},
                    }
                )
        return apps

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


ACTION_WORDS = {"changelist": "Seeing", "add": "Adding", "change": "Changing", "delete": "Deleting"}


def _needed(request: HttpRequest) -> tuple[str, str | None]:
    """What the refused page does and the least role it needs, from the admin URL that refused."""
    match = request.resolver_match
    model_admin = getattr(match.func, "model_admin", None) if match else None
    if model_admin is None or match is None:
        return "This page", None
    action = (match.url_name or "").rsplit("_", 1)[-1]
    writes = action in ("add", "delete") or (action == "change" and request.method == "POST")
    role = getattr(model_admin, "edit_role" if writes else "view_role", None)
    what = ACTION_WORDS.get(action, "This page of")
    plural = str(model_admin.opts.verbose_name_plural)
    return f"{what} {plural}", role


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """A 403 inside the admin's own page for someone signed in to it, saying which role it needs;
    Django's plain 403 everywhere else (the API answers its own errors before this is reached)."""
    user = getattr(request, "user", None)
    in_admin = request.path.startswith(reverse("admin:index"))
    if not in_admin or user is None or not user.is_authenticated or not user.is_staff:
        return defaults.permission_denied(request, exception)
    site = admin.site
    what, role = _needed(request)
    access = admin_access(request)
    yours = sorted((tenant.slug, access.role(tenant.pk) or "") for tenant in access.tenants())
    context = {
        **site.each_context(request),
        "title": "You cannot open this page",
        "subtitle": None,
        "message": str(exception) if str(exception) else "",
        "what": what,
        "role": Role(role).label if role in Role.values else None,
        "role_key": role,
        "yours": yours,
    }
    with admin_request_scope(request):
        response = TemplateResponse(request, "admin/forbidden.html", context, status=403)
        response.render()
    return response
