"""PagerDuty Events API v2: trigger while non-compliant, resolve once compliant, one dedup_key.

The stable ``dedup_key`` per target means a nightly failure updates one incident
instead of paging again, and the first compliant run closes it.
"""

from __future__ import annotations

from typing import Any

from pgproof.notify.http import post_json
from pgproof.notify.message import Summary


def payload(routing_key: str, s: Summary) -> dict[str, Any]:
    if s.exit_code == 0:
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": s.dedup_key}
    body: dict[str, Any] = {
        "routing_key": routing_key, "event_action": "trigger", "dedup_key": s.dedup_key,
        "payload": {
            "summary": s.headline()[:1024], "source": f"pgproof:{s.target}",
            "severity": "error" if s.exit_code == 1 else "warning",
            "component": s.target, "group": "pgproof", "class": "compliance",
            "custom_details": {
                "run": s.run, "state": s.state, "report": s.report, "partial": s.partial,
                "not_compliant": {c: v for c, v, _ in s.problems},
                "drift": [f"{c.control} {c.before} -> {c.after}" for c in s.drift]}},
    }
    if s.report.startswith(("https://", "http://")):
        body["links"] = [{"href": s.report, "text": "pgproof summary"}]
    return body


def send(url: str, routing_key: str, s: Summary, timeout: float) -> str:
    body = payload(routing_key, s)
    post_json(url, body, timeout)
    return f"pagerduty: {body['event_action']} {s.dedup_key}"
