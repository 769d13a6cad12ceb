"""Patroni's REST API: cluster view, switchover/failover, dynamic config."""

from __future__ import annotations

from typing import Any

import requests

TIMEOUT = 10.0


def cluster(rest_urls: list[str]) -> dict[str, Any]:
    """/cluster from the first node that answers ({} if none does)."""
    for url in rest_urls:
        try:
            found: dict[str, Any] = requests.get(url + "/cluster", timeout=1).json()
            return found
        except (requests.RequestException, ValueError):
            continue
    return {}


def leader(rest_urls: list[str]) -> str | None:
    return next((m["name"] for m in cluster(rest_urls).get("members", [])
                 if m.get("role") == "leader" and m.get("state") == "running"), None)


def healthy(rest_urls: list[str], require_sync: bool = True) -> tuple[bool, str]:
    """Steady state: one running leader and a streaming (synchronous) standby."""
    members = cluster(rest_urls).get("members", [])
    if not members:
        return False, "no Patroni node answers /cluster"
    desc = ", ".join(f"{m['name']}={m.get('role')}/{m.get('state')}" for m in members)
    lead = [m for m in members if m.get("role") == "leader" and m.get("state") == "running"]
    roles = ("sync_standby",) if require_sync else ("sync_standby", "replica")
    sync = [m for m in members if m.get("role") in roles and m.get("state") == "streaming"]
    return bool(lead and sync), desc


def timeline(rest_urls: list[str]) -> int | None:
    for m in cluster(rest_urls).get("members", []):
        if m.get("role") == "leader":
            tl: int | None = m.get("timeline")
            return tl
    return None


def failover(rest_url: str, candidate: str, leader_name: str | None = None) -> None:
    """Planned switchover when the leader is named, else a manual failover to ``candidate``."""
    path, body = ("/switchover", {"leader": leader_name, "candidate": candidate}) if leader_name \
        else ("/failover", {"candidate": candidate})
    r = requests.post(rest_url + path, json=body, timeout=30)
    if r.status_code not in (200, 202):
        raise RuntimeError(f"Patroni {path} to {candidate} refused: {r.status_code} {r.text.strip()}")


def patch_config(rest_url: str, patch: dict[str, Any]) -> None:
    r = requests.patch(rest_url + "/config", json=patch, timeout=TIMEOUT)
    if r.status_code != 200:
        raise RuntimeError(f"Patroni PATCH /config failed: {r.status_code} {r.text.strip()}")
