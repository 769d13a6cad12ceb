"""Session fixtures: each probe runs once per run and its facts are shared by every check."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from pgproof.probes import health, pooler, postgres, tls
from pgproof.probes.endpoints import tls_endpoints
from pgproof.target import Target
from pgproof.verdict import NotApplicable, Unreachable


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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A fleet target: every check with an AWS layer runs once per selected database."""
    if "aws_inventory" not in metafunc.fixturenames:
        return
    ids = fleet_ids(metafunc.config)
    if ids:
        metafunc.parametrize("aws_inventory", ids, indirect=True, ids=ids, scope="session")


_FLEET_IDS = pytest.StashKey[list[str] | Unreachable]()
_FLEET = pytest.StashKey[object]()


def fleet_ids(config: pytest.Config) -> list[str]:
    """The fleet's "region/id" list, discovered once per run (empty: not a fleet, or none)."""
    from pgproof.pytest_plugin import get_target

    if _FLEET_IDS not in config.stash:
        aws_cfg = get_target(config).aws
        found: list[str] | Unreachable = []
        if aws_cfg is not None and aws_cfg.is_fleet:
            from pgproof.probes.aws_fleet import FleetProbe

            try:
                found = FleetProbe(aws_cfg).discover()
            except Unreachable as exc:
                found = exc
        config.stash[_FLEET_IDS] = found
    got = config.stash[_FLEET_IDS]
    return [] if isinstance(got, Unreachable) else got


@pytest.fixture(scope="session")
def aws_inventory(target: Target, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    if target.aws is None:
        raise NotApplicable("no [aws] section for this target")
    if not target.aws.is_fleet:
        from pgproof.probes import aws

        return aws.gather(target.aws)
    config = request.config
    got = config.stash.get(_FLEET_IDS, [])
    if isinstance(got, Unreachable):
        raise got
    if not hasattr(request, "param"):
        raise Unreachable(f"the fleet selection (db_instance_id {target.aws.db_instance_id!r}, "
                          f"tags {target.aws.db_tags}, regions {target.aws.regions or [target.aws.region]}) "
                          "matched no RDS PostgreSQL primary")
    if _FLEET not in config.stash:  # every database at once, bounded: not one per test
        from pgproof.probes.aws_fleet import gather_fleet

        config.stash[_FLEET] = gather_fleet(target.aws, ids=got)
    inv = config.stash[_FLEET].inventories[request.param]  # type: ignore[attr-defined]
    if isinstance(inv, Unreachable):
        raise inv
    return inv
