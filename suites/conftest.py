"""Session fixtures: each probe runs once per run and its facts are shared by every check."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from pgproof.probes import health, pooler, postgres, tls
from pgproof.target import Endpoint, Target
from pgproof.verdict import NotApplicable


def client_endpoints(t: Target) -> dict[str, Endpoint]:
    """Every endpoint a client may use: writer, readers, pooler."""
    pg = t.postgres
    eps = {"writer": pg.writer, **{f"reader{i + 1}": r for i, r in enumerate(pg.readers)}}
    if pg.pooler is not None:
        eps["pooler"] = pg.pooler
    return eps


def tls_endpoints(t: Target) -> dict[str, Endpoint]:
    """The client endpoints plus each node listed in the target (a client may connect directly)."""
    eps = client_endpoints(t)
    seen = {(e.host, e.port) for e in eps.values()}
    for i, node in enumerate(t.postgres.nodes):
        if (node.host, node.port) not in seen:
            eps[f"node{i + 1}"] = node
            seen.add((node.host, node.port))
    return eps


@pytest.fixture(scope="session")
def pg_facts(target: Target) -> postgres.PostgresFacts:
    return postgres.gather(target)


@pytest.fixture(scope="session")
def tls_facts(target: Target) -> dict[str, tls.TlsFacts]:
    eps = tls_endpoints(target)
    ca = target.postgres.sslrootcert
    with ThreadPoolExecutor(max_workers=len(eps)) as pool:
        futures = {n: pool.submit(tls.probe_endpoint, e.host, e.port, ca) for n, e in eps.items()}
        return {n: f.result() for n, f in futures.items()}


@pytest.fixture(scope="session")
def pooler_facts(target: Target) -> pooler.PoolerFacts:
    return pooler.gather(target)


@pytest.fixture(scope="session")
def health_facts(target: Target) -> health.HealthFacts:
    return health.gather(target.health_url)


@pytest.fixture(scope="session")
def aws_inventory(target: Target):  # type: ignore[no-untyped-def]
    if target.aws is None:
        raise NotApplicable("no [aws] section for this target")
    from pgproof.probes import aws

    return aws.gather(target.aws)
