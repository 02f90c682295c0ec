from django.contrib.admin.apps import AdminConfig


class FlagsvcAdminConfig(AdminConfig):
    """Django's admin with our site: every admin view runs in the person's tenant scope."""

    default_site = "flagsvc.admin_site.FlagsvcAdminSite"

    def ready(self) -> None:
        super().ready()
        from flagsvc import checks  # noqa: F401  (the project's deployment checks register here)
