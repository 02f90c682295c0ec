"""The shared kernel: what every app of ours builds on (errors, request context, JSON input, query
parameters, pagination, document and time formats, client address, admin write plumbing).

It imports no app of ours; `flagsvc` is the composition root that wires the apps together
(settings, URLs, middleware, the gunicorn worker, the admin site).
"""
