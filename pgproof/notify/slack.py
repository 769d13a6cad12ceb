"""Slack incoming webhook: one ``text`` message (the webhook URL is the secret, from an env var)."""

from __future__ import annotations

from pgproof.notify.http import post_json
from pgproof.notify.message import Summary


def payload(s: Summary) -> dict[str, str]:
    return {"text": s.text()}


def send(webhook_url: str, s: Summary, timeout: float) -> str:
    post_json(webhook_url, payload(s), timeout)
    return "slack: posted"
