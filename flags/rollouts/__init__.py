"""Scheduled rollouts and the automation circuit breaker (api.md, Safe change; ADR 0016).

A plan moves one part of a flag (its default serve, or one rule's serve) towards a variant in time
steps; the worker applies each step through `flags.services.flag_update` as actor `system:rollout`.
"""
