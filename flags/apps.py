from django.apps import AppConfig


class FlagsConfig(AppConfig):
    name = "flags"
    verbose_name = "Feature flags"

    def ready(self) -> None:
        from flags import receivers  # noqa: F401
        from flags.integrity import ruleset_check
        from tenancy.ruleset import register_ruleset_check

        register_ruleset_check(ruleset_check)
