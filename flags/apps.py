from django.apps import AppConfig


class FlagsConfig(AppConfig):
    name = "flags"
    verbose_name = "Feature flags"

    def ready(self) -> None:
        from flags import receivers  # noqa: F401
        from flags.admin.builder import FLAG_CONDITION_WORDS
        from flags.admin.in_words import segment_in_words
        from flags.integrity import ruleset_check
        from flags.retention import purge_archived_flags_job
        from flags.rollouts.scheduler import run_due
        from flags.segment_users import LIVE_FLAGS_USING_SEGMENTS
        from segments.condition_words import register_condition_words
        from segments.display import register_segment_words
        from segments.usage import register_segment_users
        from tenancy.ruleset import register_ruleset_check
        from webhooks.worker import register_retention_job, register_scheduled_job

        register_ruleset_check(ruleset_check)
        register_segment_users(LIVE_FLAGS_USING_SEGMENTS)
        register_scheduled_job(run_due)  # the worker applies due rollout steps (ADR 0016)
        register_retention_job(purge_archived_flags_job)  # archived flags past their retention
        register_condition_words(FLAG_CONDITION_WORDS)
        register_segment_words(segment_in_words)
