"""The application's database health endpoint, as a client sees it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import requests

from pgproof.tunnel import http_url
from pgproof.verdict import NotApplicable, TimedOut, Unreachable


@dataclass
class HealthFacts:
    url: str
    status_code: int
    body: dict[str, Any] | None
    elapsed_ms: float


def gather(url: str | None, timeout: float = 5) -> HealthFacts:
    if not url:
        raise NotApplicable("no health_url configured for this target")
    t0 = time.perf_counter()
    try:
        r = requests.get(http_url(url), timeout=timeout)  # through the bastion if ``via``
    except requests.Timeout:
        raise TimedOut(f"health endpoint {url}", timeout, "http_s") from None
    except requests.RequestException as exc:
        raise Unreachable(f"health endpoint {url} did not answer: {type(exc).__name__}") from None
    try:
        body = r.json()
    except ValueError:
        body = None
    return HealthFacts(url, r.status_code, body if isinstance(body, dict) else None,
                       (time.perf_counter() - t0) * 1000)
