"""A target's ``[targets.X.timeouts]`` table: how long each probe may wait before it gives up.

A probe that waits forever turns a scheduled run into a hang nobody sees; a probe
that gives up makes its controls *error* ("could not check"), naming what did not
answer and the limit (``pgproof.verdict.TimedOut``). Every limit is a positive,
finite number of seconds (counts excepted); the defaults suit a healthy staging
environment reached over a WAN.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from pgproof.target_fields import Strict

DAY = 86_400.0


def _seconds(default: float, what: str) -> Any:
    """A positive, finite number of seconds (at most a day): ``inf``/``nan``/0 are config errors."""
    return Field(default, gt=0, le=DAY, allow_inf_nan=False, description=what)


class Timeouts(Strict):
    """Time limits per layer; ``timeouts.<field>`` is named in every sentence a limit produces."""

    connect_s: float = _seconds(10, "SQL: TCP connect + TLS + login, per endpoint")
    statement_s: float = _seconds(30, "SQL: one statement's answer (server statement_timeout too)")
    keepalives_idle_s: int = Field(10, gt=0, le=int(DAY), description="TCP keepalive: idle before probing")
    keepalives_interval_s: int = Field(5, gt=0, le=int(DAY), description="TCP keepalive: between probes")
    keepalives_count: int = Field(3, gt=0, le=100, description="TCP keepalive: unanswered probes")
    tcp_user_timeout_s: float = _seconds(30, "SQL: sent data unacknowledged this long drops the session")
    subprocess_s: float = _seconds(60, "a command a probe runs (pgbackrest info, testinfra)")
    sdk_connect_s: float = _seconds(5, "AWS/Azure SDK: TCP connect per attempt")
    sdk_read_s: float = _seconds(20, "AWS/Azure SDK: waiting for a response per attempt")
    sdk_attempts: int = Field(4, ge=1, le=20, description="AWS/Azure SDK: attempts per call (retries + 1)")
    http_s: float = _seconds(10, "HTTP probes (health URL, Patroni REST)")
    run_s: float = _seconds(900, "the whole run: checks not started by then are errors")

    def libpq(self) -> dict[str, Any]:
        """libpq keywords that bound an *established* session (a peer that vanished, a blackhole).

        Keepalives notice a silent peer while idle; ``tcp_user_timeout`` drops a session whose
        sent data stays unacknowledged. Neither sees a proxy that acknowledges and then
        swallows everything: the client-side statement deadline covers that (probes/postgres)."""
        return {"keepalives": 1, "keepalives_idle": self.keepalives_idle_s,
                "keepalives_interval": self.keepalives_interval_s,
                "keepalives_count": self.keepalives_count,
                "tcp_user_timeout": int(self.tcp_user_timeout_s * 1000)}
