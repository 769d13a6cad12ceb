"""Tell people when a scheduled check is non-compliant or drifted: Slack, PagerDuty, e-mail.

Each channel is one small module with one ``send`` function; ``dispatch`` decides
whether to notify and isolates the channels, so a receiver that fails is one
warning line and never changes the run's exit code. URLs, routing keys and
passwords come from environment variables the target names, never from the file.
"""
