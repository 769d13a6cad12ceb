"""Network chaos faults over the Toxiproxy HTTP API, as context managers that always undo.

Each fault registers its undo *before* it acts, so a request that half-succeeded (applied on the
server, response lost) is still undone. Pass ``undo_stack`` (e.g. a game day's ExitStack) to also
put the undo on that stack as a safety net; an undo runs at most once, whichever exits first.
An undo that fails raises FaultUndoError naming what is still broken and the command to fix it.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import requests

from pgproof.faults.base import FaultUndoError, Undo, fault

__all__ = ["FaultUndoError", "ToxiproxyError", "active_faults", "down", "enable", "latency",
           "remove_toxic", "reset", "timeout"]

HTTP_TIMEOUT = 10.0


class ToxiproxyError(RuntimeError):
    """The Toxiproxy API refused a request or could not be reached."""


def _request(api_url: str, method: str, path: str, body: Any = None,
             ok: tuple[int, ...] = (200, 201, 204)) -> requests.Response:
    url = api_url.rstrip("/") + path
    try:
        resp = requests.request(method, url, json=body, timeout=HTTP_TIMEOUT)
    except requests.RequestException as e:
        raise ToxiproxyError(f"{method} {url}: {e}") from e
    if resp.status_code not in ok:
        raise ToxiproxyError(f"{method} {url} -> HTTP {resp.status_code}: {resp.text.strip()}")
    return resp


def _toxic_fault(api_url: str, proxy: str, kind: str, stream: str, attributes: dict[str, int],
                 what: str, undo_stack: contextlib.ExitStack | None) -> contextlib.AbstractContextManager[None]:
    name = f"pgproof_{kind}_{stream}_{uuid.uuid4().hex[:8]}"  # unique: undo never removes others' toxics
    path = f"/proxies/{proxy}/toxics/{name}"
    body = {"name": name, "type": kind, "stream": stream, "toxicity": 1.0, "attributes": attributes}

    def remove() -> None:
        remove_toxic(api_url, proxy, name)

    def add() -> None:
        _request(api_url, "POST", f"/proxies/{proxy}/toxics", body)

    undo = Undo(remove, f"proxy {proxy!r} at {api_url} still has toxic {name!r} ({what})",
                 f"curl -X DELETE {api_url.rstrip('/')}{path}  (or reset all: "
                 f"curl -X POST {api_url.rstrip('/')}/reset)")
    return fault(undo, add, undo_stack, durable=("toxic", {"api_url": api_url, "proxy": proxy, "name": name}))


def remove_toxic(api_url: str, proxy: str, name: str) -> None:
    """Remove one toxic by name; idempotent (404: never added, already removed, or reset)."""
    _request(api_url, "DELETE", f"/proxies/{proxy}/toxics/{name}", ok=(204, 404))


def enable(api_url: str, proxies: list[str]) -> None:
    """Re-enable ``proxies``; try every one, then report all that failed. Idempotent."""
    errors = []
    for p in proxies:
        try:
            _request(api_url, "POST", f"/proxies/{p}", {"enabled": True}, ok=(200, 404))
        except ToxiproxyError as e:
            errors.append(str(e))
    if errors:
        raise ToxiproxyError("; ".join(errors))


def disable(api_url: str, proxies: list[str]) -> None:
    """Disable ``proxies`` (listener closed, open connections dropped)."""
    for p in proxies:
        _request(api_url, "POST", f"/proxies/{p}", {"enabled": False})


def set_enabled(api_url: str, proxies: list[str], on: bool) -> None:
    """Open or close ``proxies``: what a lab bridge does when a twin's firewall rules change."""
    (enable if on else disable)(api_url, proxies)


def latency(api_url: str, proxy: str, ms: int, jitter_ms: int = 0, stream: str = "downstream",
            undo_stack: contextlib.ExitStack | None = None) -> contextlib.AbstractContextManager[None]:
    """Delay every chunk on ``stream`` by ``ms`` ± ``jitter_ms`` while the block runs."""
    return _toxic_fault(api_url, proxy, "latency", stream, {"latency": ms, "jitter": jitter_ms},
                        f"{ms}±{jitter_ms} ms latency {stream}", undo_stack)


def timeout(api_url: str, proxy: str, ms: int, stream: str = "downstream",
            undo_stack: contextlib.ExitStack | None = None) -> contextlib.AbstractContextManager[None]:
    """Black-hole ``stream`` (data dropped) and close connections after ``ms`` (0 = never).

    As upstream, removing the toxic closes the connections it hit: their streams lost data.
    """
    return _toxic_fault(api_url, proxy, "timeout", stream, {"timeout": ms},
                        f"timeout {ms} ms {stream}: data is dropped", undo_stack)


def down(api_url: str, proxies: list[str],
         undo_stack: contextlib.ExitStack | None = None) -> contextlib.AbstractContextManager[None]:
    """Disable ``proxies`` (listener closed, open connections dropped); undo re-enables them all."""
    base = api_url.rstrip("/")

    def enable_all() -> None:
        enable(api_url, proxies)

    def disable_all() -> None:
        disable(api_url, proxies)

    fix = " && ".join(f"curl -X POST -d '{{\"enabled\": true}}' {base}/proxies/{p}" for p in proxies)
    undo = Undo(enable_all, f"proxies {proxies} at {api_url} may still be disabled", fix)
    return fault(undo, disable_all, undo_stack,
                 durable=("proxies_disabled", {"api_url": api_url, "proxies": list(proxies)}))


def reset(api_url: str) -> None:
    """Re-enable every proxy and remove every toxic (Toxiproxy POST /reset)."""
    _request(api_url, "POST", "/reset", ok=(204,))


def active_faults(api_url: str) -> list[str]:
    """Describe every disabled proxy and present toxic; empty means nothing is left broken."""
    found = []
    for name, p in sorted(_request(api_url, "GET", "/proxies").json().items()):
        if not p["enabled"]:
            found.append(f"proxy {name} ({p['listen']} -> {p['upstream']}) is disabled")
        for t in p.get("toxics") or []:
            found.append(f"proxy {name}: toxic {t['name']} ({t['type']} {t['stream']}, "
                         f"toxicity {t['toxicity']}, {t['attributes']})")
    return found
