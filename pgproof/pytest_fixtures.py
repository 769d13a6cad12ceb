"""Session fixtures: each probe runs once per run and its facts are shared by every check.

Part of the pytest plugin (entry point ``pgproof.pytest_plugin``), not a conftest of
``suites/``: a repository of your own can ask for ``target``, ``pg_facts``,
``tls_facts``, ``aws_inventory``... in its own tests, as testinfra users ask for
``host`` (``examples/own-tests/``).

One fixture per layer (``pgproof.layers.FIXTURES``): it first asks whether the
target configures that layer, so a check whose vantage point is absent (no
``[postgres]`` on an AWS-only runner, no ``[aws]`` or hosts on a self-managed
server) is "not checked" with the reason instead of an error. Checks call no
probe directly: the fixture they ask for is the layer they observe.

PYTEST_DONT_REWRITE: product code that pgproof.pytest_plugin imports before pytest could rewrite
it (pytest otherwise warns "Module already imported so cannot be rewritten" on every run).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pytest

from pgproof import layers, pools
from pgproof.probes import health, hostcis, network, pooler, postgres, source, tls
from pgproof.probes.endpoints import tls_endpoints
from pgproof.pytest_targets import get_target
from pgproof.target import Target
from pgproof.verdict import Unreachable

if TYPE_CHECKING:  # testinfra, the SDKs and the lazily imported probes: names for the hints only

    from pgproof.probes.aws_fleet import Fleet, FleetProbe
    from pgproof.probes.aws_inventory import AwsInventory
    from pgproof.probes.azure_inventory import AzureInventory
    from pgproof.probes.backup import BackupFacts
    from pgproof.probes.host import HostFacts
    from pgproof.probes.hostcis import HostCisFacts
    from pgproof.probes.privileges import PrivFacts
    from pgproof.probes.replication import ReplicationFacts


T = TypeVar("T")
Ask = Callable[[str], Any]  # another probe's facts by fixture name (host_facts asks pg_facts)


def _pg_facts(target: Target, ask: Ask) -> postgres.PostgresFacts:
    layers.require(target, "sql")
    return postgres.gather(target)


def _verify_full_login(target: Target, ask: Ask) -> str | None:
    layers.require(target, "sql")
    return postgres.verify_full_login(target.conninfo(sslmode="verify-full"),
                                      statement_s=target.timeouts.statement_s)


def _tls_facts(target: Target, ask: Ask) -> dict[str, tls.TlsFacts]:
    layers.require(target, "tls")
    eps = tls_endpoints(target)
    ca = target.require_postgres("the TLS layer").ca_file  # libpq's CA: the login's own anchor
    with pools.threads(len(eps)) as pool:
        futures = {n: pool.submit(tls.probe_endpoint, e.host, e.port, ca) for n, e in eps.items()}
        return {n: f.result() for n, f in futures.items()}


def _pooler_facts(target: Target, ask: Ask) -> pooler.PoolerFacts:
    layers.require(target, "pooler")
    return pooler.gather(target)


def _health_facts(target: Target, ask: Ask) -> health.HealthFacts:
    layers.require(target, "health")
    return health.gather(target.health_url, timeout=target.timeouts.http_s)


def _backup_facts(target: Target, ask: Ask) -> BackupFacts:
    layers.require(target, "backup")
    from pgproof.probes import backup

    return backup.gather(target)


def _replication_facts(target: Target, ask: Ask) -> ReplicationFacts:
    layers.require(target, "sql")  # TLS-7 reads pg_stat_replication over a live session
    from pgproof.probes import replication

    return replication.gather(target)


def _priv_facts(target: Target, ask: Ask) -> PrivFacts:
    layers.require(target, "sql")  # PRIV-*: roles, and each database's catalogs
    from pgproof.probes import privileges

    return privileges.gather(target)


@pytest.fixture(scope="session")
def pg_facts(target: Target, request: pytest.FixtureRequest) -> postgres.PostgresFacts:
    return _facts(request, target, "pg_facts", _pg_facts)


@pytest.fixture(scope="session")
def verify_full_login(target: Target, request: pytest.FixtureRequest) -> str | None:
    """The error of an sslmode=verify-full login (None: it worked)."""
    return _facts(request, target, "verify_full_login", _verify_full_login)


@pytest.fixture(scope="session")
def tls_facts(target: Target, request: pytest.FixtureRequest) -> dict[str, tls.TlsFacts]:
    return _facts(request, target, "tls_facts", _tls_facts)


@pytest.fixture(scope="session")
def pooler_facts(target: Target, request: pytest.FixtureRequest) -> pooler.PoolerFacts:
    return _facts(request, target, "pooler_facts", _pooler_facts)


@pytest.fixture(scope="session")
def health_facts(target: Target, request: pytest.FixtureRequest) -> health.HealthFacts:
    return _facts(request, target, "health_facts", _health_facts)


@pytest.fixture(scope="session")
def backup_facts(target: Target, request: pytest.FixtureRequest) -> BackupFacts:
    return _facts(request, target, "backup_facts", _backup_facts)


@pytest.fixture(scope="session")
def replication_facts(target: Target, request: pytest.FixtureRequest) -> ReplicationFacts:
    return _facts(request, target, "replication_facts", _replication_facts)


@pytest.fixture(scope="session")
def priv_facts(target: Target, request: pytest.FixtureRequest) -> PrivFacts:
    return _facts(request, target, "priv_facts", _priv_facts)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A fleet target: a test of your own that asks for ``aws_inventory`` runs once per selected
    database (the catalogue's items judge every database in one item: ``pytest_units``)."""
    if "aws_inventory" not in metafunc.fixturenames:
        return
    ids = fleet_ids(metafunc.config)
    if ids:
        metafunc.parametrize("aws_inventory", ids, indirect=True, ids=ids, scope="session")


_FLEET_IDS = pytest.StashKey[list[str] | Unreachable]()
_FLEET: pytest.StashKey[Fleet] = pytest.StashKey()
_FLEET_PROBE: pytest.StashKey[FleetProbe] = pytest.StashKey()  # the probe that discovered: gathering reuses its records


def fleet_ids(config: pytest.Config) -> list[str]:
    """The fleet's "region/id" list, discovered once per run (empty: not a fleet, or none)."""
    if _FLEET_IDS not in config.stash:
        target = get_target(config)
        aws_cfg = target.aws
        found: list[str] | Unreachable = []
        if aws_cfg is not None and aws_cfg.is_fleet:
            from pgproof.probes.aws import limits
            from pgproof.probes.aws_fleet import FleetProbe

            probe = FleetProbe(aws_cfg, **limits(target.timeouts))
            config.stash[_FLEET_PROBE] = probe
            try:
                found = probe.discover()
            except Unreachable as exc:
                found = exc
        config.stash[_FLEET_IDS] = found
    got = config.stash[_FLEET_IDS]
    return [] if isinstance(got, Unreachable) else got


def _dns_facts(target: Target, ask: Ask) -> network.ResolveFacts:
    layers.require(target, "dns")
    return network.resolve(target.require_postgres("NET-4").writer.host)


def _vantage_reach(target: Target, ask: Ask) -> dict[str, bool]:
    layers.require(target, "vantage")
    ep = target.require_postgres("NET-5").writer
    return {u: network.reachable_from(u, ep.host, ep.port, limit_s=target.timeouts.subprocess_s)
            for u in dict.fromkeys([*target.app_hosts, *target.outside_hosts])}


def _source_findings(target: Target, ask: Ask) -> list[source.Literal]:
    layers.require(target, "source")
    return source.scan(target.source_tree)


def _host_facts(target: Target, ask: Ask) -> list[HostFacts]:
    layers.require(target, "host")
    pg = target.require_postgres("the host layer")
    from pgproof.probes import host

    facts: postgres.PostgresFacts = ask("pg_facts")
    data_dir = facts.settings.get("data_directory")
    if not data_dir:
        raise Unreachable(f"data_directory is not visible to role {pg.user} (GRANT "
                          f"pg_read_all_settings TO {pg.user};), so the hosts' data directory "
                          "is unknown")
    key = facts.settings.get("ssl_key_file") or None
    if key and not Path(key).is_absolute():
        key = str(Path(data_dir) / key)
    return [host.gather(url, _on_host(url, data_dir, data_dir) or data_dir,
                        _on_host(url, data_dir, key),
                        pg.writer.port, target.timeouts.subprocess_s)
            for url in target.hosts]


def _host_cis_facts(target: Target, ask: Ask) -> list[HostCisFacts]:
    layers.require(target, "host")
    target.require_postgres("the host layer")
    settings = ask("pg_facts").settings
    data_dir, hba = settings.get("data_directory"), settings.get("hba_file")
    return [hostcis.gather(url, hostcis.params(url).get("hba_file")
                           or (_on_host(url, data_dir, hba) if data_dir else hba),
                           target.timeouts.subprocess_s, data_dir)
            for url in target.hosts]


@pytest.fixture(scope="session")
def dns_facts(target: Target, request: pytest.FixtureRequest) -> network.ResolveFacts:
    return _facts(request, target, "dns_facts", _dns_facts)


@pytest.fixture(scope="session")
def vantage_reach(target: Target, request: pytest.FixtureRequest) -> dict[str, bool]:
    """Vantage point URL -> whether it opened a TCP connection to the writer."""
    return _facts(request, target, "vantage_reach", _vantage_reach)


@pytest.fixture(scope="session")
def source_findings(target: Target, request: pytest.FixtureRequest) -> list[source.Literal]:
    return _facts(request, target, "source_findings", _source_findings)


@pytest.fixture(scope="session")
def host_facts(target: Target, request: pytest.FixtureRequest) -> list[HostFacts]:
    """Each database host's data directory, server key and device chain (self-managed ENC-1).

    The data directory and key file come from the SQL layer (asked only once the host
    layer is known to be configured, so its reason comes first)."""
    return _facts(request, target, "host_facts", _host_facts)


def _on_host(url: str, data_dir: str, path: str | None) -> str | None:
    """``path`` on the host ``url``: under its own ``pgdata=`` where the writer's is under the
    writer's data directory (several nodes on one machine, each in its own directory)."""
    pgdata, root = hostcis.params(url).get("pgdata"), data_dir.rstrip("/")
    if path and pgdata and (path == root or path.startswith(root + "/")):
        return pgdata.rstrip("/") + path[len(root):]
    return path


@pytest.fixture(scope="session")
def host_cis_facts(target: Target, request: pytest.FixtureRequest) -> list[HostCisFacts]:
    """What the CIS benchmark asks of each database host (HOST-1..HOST-6).

    A host URL's ``pgdata=`` (else the writer's data_directory) places the hba file on that
    host; without the setting only the hba part of HOST-3 cannot be judged."""
    return _facts(request, target, "host_cis_facts", _host_cis_facts)


def _aws_inventory(target: Target, ask: Ask) -> AwsInventory:
    """One deployment's inventory (a fleet's databases are gathered by ``fleet_inventories``)."""
    layers.require(target, "aws")
    assert target.aws is not None
    from pgproof.probes import aws

    return aws.gather(target.aws, **aws.limits(target.timeouts))


@pytest.fixture(scope="session")
def aws_inventory(target: Target, request: pytest.FixtureRequest) -> AwsInventory:
    layers.require(target, "aws")
    assert target.aws is not None
    if not target.aws.is_fleet:
        return _facts(request, target, "aws_inventory", _aws_inventory)
    got = request.config.stash.get(_FLEET_IDS, [])
    if isinstance(got, Unreachable):
        raise got
    if not hasattr(request, "param"):
        raise Unreachable(f"the fleet selection (db_instance_id {target.aws.db_instance_id!r}, "
                          f"tags {target.aws.db_tags}, regions {target.aws.regions or [target.aws.region]}) "
                          "matched no RDS PostgreSQL primary")
    return fleet_inventory(request.config, target, request.param)


def fleet_inventories(config: pytest.Config, target: Target) -> dict[str, AwsInventory | Unreachable]:
    """Every selected database's inventory (or why it could not be described), "region/id" ->
    inventory; the fleet is gathered once, all at once, bounded: not once per check."""
    layers.require(target, "aws")
    assert target.aws is not None
    got = config.stash.get(_FLEET_IDS, [])
    if isinstance(got, Unreachable):
        raise got
    if _FLEET not in config.stash:
        from pgproof.probes.aws import limits
        from pgproof.probes.aws_fleet import gather_fleet

        config.stash[_FLEET] = gather_fleet(target.aws, ids=got, probe=config.stash.get(_FLEET_PROBE, None),
                                            **limits(target.timeouts))
    return config.stash[_FLEET].inventories


def fleet_inventory(config: pytest.Config, target: Target, database: str) -> AwsInventory:
    """One database's inventory of a fleet target (a test of your own asking ``aws_inventory``)."""
    inv = fleet_inventories(config, target)[database]
    if isinstance(inv, Unreachable):
        raise inv
    return inv


def _azure_inventory(target: Target, ask: Ask) -> AzureInventory:
    layers.require(target, "azure")
    from pgproof.probes import azure

    t = target.timeouts
    az = target.azure
    assert az is not None  # layers.require: the [azure] section is there
    return azure.gather(az, connect_timeout=t.sdk_connect_s, read_timeout=t.sdk_read_s,
                        retries=t.sdk_attempts - 1)


@pytest.fixture(scope="session")
def azure_inventory(target: Target, request: pytest.FixtureRequest) -> AzureInventory:
    return _facts(request, target, "azure_inventory", _azure_inventory)


# Every layer fixture's probe, by fixture name (pgproof.layers.FIXTURES names the same set).
PROBES: dict[str, Callable[[Target, Ask], Any]] = {
    "pg_facts": _pg_facts, "verify_full_login": _verify_full_login, "tls_facts": _tls_facts,
    "pooler_facts": _pooler_facts, "health_facts": _health_facts, "backup_facts": _backup_facts,
    "replication_facts": _replication_facts, "priv_facts": _priv_facts, "dns_facts": _dns_facts,
    "vantage_reach": _vantage_reach, "source_findings": _source_findings, "host_facts": _host_facts,
    "host_cis_facts": _host_cis_facts, "aws_inventory": _aws_inventory,
    "azure_inventory": _azure_inventory,
}
NEEDS = {"host_facts": ("pg_facts",), "host_cis_facts": ("pg_facts",)}  # what a probe asks of others
# Probes whose module (and SDK) is imported only when their layer is configured: imported by
# the main thread before the early gathering starts, so no two threads import one module.
LAZY = {"backup_facts": "pgproof.probes.backup", "replication_facts": "pgproof.probes.replication",
        "priv_facts": "pgproof.probes.privileges", "host_facts": "pgproof.probes.host",
        "aws_inventory": "pgproof.probes.aws", "azure_inventory": "pgproof.probes.azure"}
FIRST = ("aws_inventory", "azure_inventory")  # usually the longest: many round trips to one API
# Probes that judge the host's processes (HOST-2 environments, HOST-3 umasks): they start once
# every other probe has answered, so no command of pgproof's own (``pgbackrest info`` of the
# backup probe, run as the database account) is among the processes they judge.
LAST = ("host_cis_facts",)
_EARLY = pytest.StashKey[dict[str, "Future[Any]"]]()


def _facts(request: pytest.FixtureRequest, target: Target, name: str,
           probe: Callable[[Target, Ask], T]) -> T:
    """The probe's facts: gathered early with the run's other probes (``gather_early``), or
    now, in the check that first asks. Either way the probe's own limits bound it, and what it
    raised (not configured, could not check) is raised to every check that asks."""
    early = request.config.stash.get(_EARLY, {}).get(name)
    if early is not None:
        return cast(T, early.result())
    return probe(target, request.getfixturevalue)


def gather_early(config: pytest.Config, target: Target, names: Collection[str],
                 limit_s: float | None) -> float:
    """Start every probe in ``names`` at once, each in its own thread, and wait until all have
    answered (or ``limit_s``, the run's time left, has passed); returns the seconds waited.

    Called before the first check runs and joined before it starts: no probe thread runs
    while pytest runs checks. pytest sets and deletes ``PYTEST_CURRENT_TEST`` around every
    test phase, and botocore's proxy lookup iterates ``os.environ`` on each request: an
    inventory running beside the checks raised KeyError and turned every AWS check into
    error. Each probe keeps its own time limits; an exception is kept and raised to each
    check that asks for those facts, as if the check had run the probe itself."""
    wanted = set(names)
    for n in names:
        wanted.update(NEEDS.get(n, ()))
    order = [n for n in PROBES if n in wanted]
    if len(order) < 2:
        return 0.0  # one probe gains nothing from being early: it runs when first asked
    t0 = time.monotonic()
    futures: dict[str, Future[Any]] = {}

    def ask(name: str) -> Any:
        return futures[name].result()

    pool = ThreadPoolExecutor(max_workers=len(order), thread_name_prefix="pgproof-probe")
    running: set[Future[Any]] = set()
    try:
        config.stash[_EARLY] = futures
        for wave in ([n for n in order if n not in LAST], [n for n in order if n in LAST]):
            for n in sorted(wave, key=lambda n: n not in FIRST):  # the longest first: the cloud's
                if n in LAZY and layers.why_not(target, layers.FIXTURES[n]) is None:
                    importlib.import_module(LAZY[n])
                futures[n] = pool.submit(PROBES[n], target, ask)
            left = None if limit_s is None else max(0.0, limit_s - (time.monotonic() - t0))
            _, running = wait([futures[n] for n in wave], timeout=left)
            if running:  # the run's limit passed: a later wave would only start after it
                break
    except BaseException:  # Ctrl-C: answer now; each probe stops at its own limit
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    # All answered: the idle threads end now. The run's limit passed: the rest are left to
    # their own limits, and the checks, refused by the run limit, report errors meanwhile.
    pool.shutdown(wait=not running)
    return time.monotonic() - t0
