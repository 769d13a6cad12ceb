"""Which endpoints of a target a client may connect to, named as reports show them."""

from __future__ import annotations

from pgproof.target import Endpoint, Target


def client_endpoints(t: Target) -> dict[str, Endpoint]:
    """Every endpoint a client may use: writer, readers, pooler."""
    pg = t.require_postgres("the client endpoints")
    eps = {"writer": pg.writer, **{f"reader{i + 1}": r for i, r in enumerate(pg.readers)}}
    if pg.pooler is not None:
        eps["pooler"] = pg.pooler
    return eps


def tls_endpoints(t: Target) -> dict[str, Endpoint]:
    """The client endpoints plus each node listed in the target (a client may connect directly).

    A node listed twice (the same host and port as an endpoint) is probed once.
    """
    eps = client_endpoints(t)
    seen = {(e.host, e.port) for e in eps.values()}
    for i, node in enumerate(t.require_postgres("the TLS layer").nodes):
        if (node.host, node.port) not in seen:
            eps[f"node{i + 1}"] = node
            seen.add((node.host, node.port))
    return eps
