"""`ModelAdminBase[Model]`: the django-stubs generic ModelAdmin, subscriptable at run time too.

django-stubs types ModelAdmin as a generic, but Django's class has no `__class_getitem__` (the
optional `django_stubs_ext.monkeypatch()` would add it globally; we keep that dev-only package out of
the runtime and subclass instead).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin

if TYPE_CHECKING:
    ModelAdminBase = admin.ModelAdmin
else:

    class ModelAdminBase(admin.ModelAdmin):
        def __class_getitem__(cls, item: Any) -> type:
            return cls
