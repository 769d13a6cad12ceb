"""Session fixtures: each probe runs once per run and its facts are shared by every check."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from pgproof.probes import health, pooler, postgres, tls
from pgproof.probes.endpoints import tls_endpoints
from pgproof.target import Target
from pgproof.verdict import NotApplicable


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
def backup_facts(target: Target):  # type: ignore[no-untyped-def]
    if target.backup is None:
        raise NotApplicable("no [backup] section for this target (self-managed backup layer)")
    from pgproof.probes import backup

    return backup.gather(target)


@pytest.fixture(scope="session")
def replication_facts(target: Target):  # type: ignore[no-untyped-def]
    from pgproof.probes import replication

    return replication.gather(target)


@pytest.fixture(scope="session")
def aws_inventory(target: Target):  # type: ignore[no-untyped-def]
    if target.aws is None:
        raise NotApplicable("no [aws] section for this target")
    from pgproof.probes import aws

    return aws.gather(target.aws)


@pytest.fixture(scope="session")
def azure_inventory(target: Target):  # type: ignore[no-untyped-def]
    if target.azure is None:
        raise NotApplicable("no [azure] section for this target")
    from pgproof.probes import azure

    return azure.gather(target.azure)
