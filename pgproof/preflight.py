"""Before any check or game day: is the input right? Wrong port, protocol or missing password.

These are mistakes in what the user wrote, not findings about the target: they
stop the run with one sentence (``UserError``, exit 2) instead of a minute of
identical "connection timeout expired" or "no password supplied" errors.
Everything here only reads; an endpoint that is merely unreachable or silent
is left to the checks, which report it as "could not check".
"""

from __future__ import annotations

from pgproof import pools
from pgproof.errors import UserError
from pgproof.probes import wire
from pgproof.target import Endpoint, Target
from pgproof.verdict import Unreachable

BUDGET_S = 1.5  # per endpoint, all in parallel: a wrong port is named within ~2 s


def endpoints(target: Target) -> list[tuple[str, Endpoint]]:
    """Every PostgreSQL endpoint of the target, with its config path for the message."""
    pg = target.postgres
    if pg is None:  # an AWS-only vantage point: no endpoint to greet
        return []
    out = [("postgres.writer", pg.writer)]
    out += [(f"postgres.readers[{i}]", e) for i, e in enumerate(pg.readers)]
    out += [(name, e) for name, e in (("postgres.pooler", pg.pooler),
                                      ("postgres.pooler_admin", pg.pooler_admin)) if e]
    out += [(f"postgres.nodes[{i}]", e) for i, e in enumerate(pg.nodes)]
    return out


def greet_all(target: Target) -> list[tuple[str, wire.WireAnswer]]:
    eps = endpoints(target)
    with pools.threads(min(8, len(eps))) as pool:
        answers = list(pool.map(lambda e: wire.greet(e[1].host, e[1].port, BUDGET_S), eps))
    return [(name, a) for (name, _), a in zip(eps, answers, strict=True)]


def wrong_protocols(target: Target, answers: list[tuple[str, wire.WireAnswer]]) -> list[str]:
    """One sentence per endpoint that answered in another protocol than PostgreSQL."""
    return [f"targets.{target.name}.{name}: port {a.port} on {a.host} speaks {a.protocol}, "
            "not PostgreSQL (check the port)" for name, a in answers if a.postgres is False]


def missing_password(target: Target) -> str | None:
    """With ``password_env`` unset, one login says whether libpq found a password elsewhere."""
    if target.password() is not None:
        return None
    from pgproof.probes.postgres import connect, no_password
    try:
        connect(target).close()
    except Unreachable as exc:
        if no_password(target) in str(exc):
            return f"targets.{target.name}: {no_password(target)}"
    return None


def check(target: Target) -> None:
    """Raise ``UserError`` naming every wrong endpoint, or the missing password."""
    if target.postgres is None:
        return
    from pgproof import tunnel

    tunnel.ensure(target)  # postgres.via: the bastion first (a failing tunnel is one sentence)
    answers = greet_all(target)
    problems = wrong_protocols(target, answers)
    if not problems and answers[0][1].postgres:  # log in only where PostgreSQL answered
        pw = missing_password(target)
        problems = [pw] if pw else []
    if problems:
        raise UserError("\n".join(problems))
