"""Fleet inventory: find every RDS PostgreSQL database a target selects, then describe each.

Why: an account holds tens or hundreds of instances across regions and a nightly
check must judge all of them. Discovery is one paginated DescribeDBInstances per
region (regions in parallel); each database then gets the same one-pass
inventory as a single target, many at once but bounded, sharing one set of
clients per region (adaptive retries absorb throttling). A read replica is
judged inside its primary's inventory, as for a single target, so the fleet's
rows are the primaries (and cluster writers are not special-cased: Aurora
members are listed as they are described).
"""

from __future__ import annotations

import fnmatch
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from pgproof import pools
from pgproof.probes.aws import AwsProbe, _Ctx
from pgproof.probes.aws_inventory import AwsInventory, _pages
from pgproof.target import Aws
from pgproof.verdict import Unreachable

ENGINES = {"postgres", "aurora-postgresql"}
FLEET_WORKERS = 16  # databases described at once (each runs its own calls with a few threads)
PER_DB_WORKERS = 4


@dataclass
class Fleet:
    """The databases a fleet target selected and, per database, its inventory or why not."""

    regions: list[str]
    ids: list[str] = field(default_factory=list)  # "region/db-instance-id", sorted
    inventories: dict[str, AwsInventory | Unreachable] = field(default_factory=dict)
    discover_s: float = 0.0
    gather_s: float = 0.0


def _matches(cfg: Aws, inst: dict[str, Any]) -> bool:
    if inst.get("Engine") not in ENGINES or inst.get("ReadReplicaSourceDBInstanceIdentifier"):
        return False
    if not fnmatch.fnmatchcase(inst["DBInstanceIdentifier"], cfg.db_instance_id or "*"):
        return False
    tags = {t["Key"]: t.get("Value", "") for t in inst.get("TagList", [])}
    return all(fnmatch.fnmatchcase(tags.get(k, "\0"), v) for k, v in cfg.db_tags.items())


# Answers that are the same for every database of a region (account-wide lists, shared
# VPCs, keys, parameter groups, instance types): asked once per region, not once per database.
SHARED_OPS = {"describe_alarms", "list_subscriptions_by_topic", "list_backup_plans", "get_backup_plan",
              "list_backup_selections", "get_backup_selection", "describe_backup_vault",
              "describe_route_tables", "describe_security_groups", "describe_key", "list_aliases",
              "get_key_rotation_status", "describe_db_parameters", "describe_instance_types",
              "describe_db_engine_versions", "describe_certificates", "describe_event_subscriptions",
              "describe_db_parameter_groups", "describe_db_cluster_parameter_groups",
              "describe_engine_default_parameters", "describe_engine_default_cluster_parameters"}
# Per-database listings a fleet asks once per region and filters here, by the same field the
# API filters on: (operation, result key, parameter the probe passes, record field it matches).
# 201 databases made 201 calls of each; a region's listing is a few pages.
REGION_LISTINGS = {
    ("rds", "describe_db_snapshots"): ("DBSnapshots", "DBInstanceIdentifier"),
    ("rds", "describe_db_instance_automated_backups"): ("DBInstanceAutomatedBackups", "DBInstanceIdentifier"),
}
RDS_LOGS = "/aws/rds/"  # default log-group prefixes (/aws/rds/instance/<id>): one listing a region


class _Memo:
    """A client whose SHARED_OPS answers (or errors) are kept; other calls pass through.

    ``known``: DescribeDBInstances records discovery already returned (id -> record), so
    describing one of those databases by its identifier asks AWS nothing again."""

    def __init__(self, client: Any, cache: dict[Any, Any], lock: threading.Lock,
                 known: dict[str, dict[str, Any]] | None = None) -> None:
        self._client, self._cache, self._lock = client, cache, lock
        self._known = known or {}
        self.meta = client.meta

    def _describe_db_instances(self, **kw: Any) -> Any:
        record = self._known.get(kw.get("DBInstanceIdentifier", "")) if set(kw) == {"DBInstanceIdentifier"} \
            else None
        return {"DBInstances": [record]} if record is not None else self._client.describe_db_instances(**kw)

    def _call(self, key: Any, fn: Any) -> Any:
        with self._lock:
            ev = self._cache.get(key)
            if ev is None:
                ev = self._cache[key] = [threading.Event(), None, None]
                owner = True
            else:
                owner = False
        if owner:
            try:
                ev[1] = fn()
            except Exception as exc:  # noqa: BLE001 - re-raised to every caller of this key
                ev[2] = exc
            ev[0].set()
        ev[0].wait()
        if ev[2] is not None:
            raise ev[2]
        return ev[1]

    def __getattr__(self, op: str) -> Any:
        if op == "describe_db_instances" and self._known:
            return self._describe_db_instances
        attr = getattr(self._client, op)
        if op not in SHARED_OPS:
            return attr
        return lambda **kw: self._call((id(self._client), op, repr(sorted(kw.items()))),
                                       lambda: attr(**kw))

    def get_paginator(self, op: str) -> Any:
        pag = self._client.get_paginator(op)
        listing = REGION_LISTINGS.get((self.meta.service_model.service_name, op))
        if listing is not None:
            return _RegionWide(self, pag, op, *listing)
        if op == "describe_log_groups":
            return _LogGroups(self, pag)
        if op not in SHARED_OPS:
            return pag
        return _Shared(self, pag, op)


class _Shared:
    """A paginator whose pages (and full result) are asked once per region and arguments."""

    def __init__(self, memo: _Memo, pag: Any, op: str) -> None:
        self._memo, self._pag, self._op = memo, pag, op

    def paginate(self, **kw: Any) -> _Paged:
        return _Paged(self._memo, self._pag, (id(self._memo._client), self._op, repr(sorted(kw.items()))), kw)


class _Paged:
    def __init__(self, memo: _Memo, pag: Any, key: tuple[Any, ...], kw: dict[str, Any]) -> None:
        self._memo, self._pag, self._key, self._kw = memo, pag, key, kw

    def __iter__(self) -> Any:
        return iter(self._memo._call((*self._key, "pages"), lambda: list(self._pag.paginate(**self._kw))))

    def build_full_result(self) -> Any:
        return self._memo._call((*self._key, "full"), lambda: self._pag.paginate(**self._kw).build_full_result())


class _RegionWide:
    """``paginate(<Field>=x)``: the region's whole listing (asked once), only the records whose
    ``<Field>`` is x, as one page: what the API's own filter returns, without a call per database."""

    def __init__(self, memo: _Memo, pag: Any, op: str, key: str, field: str) -> None:
        self._memo, self._pag, self._op, self._key, self._field = memo, pag, op, key, field

    def paginate(self, **kw: Any) -> Any:
        if set(kw) != {self._field}:
            return self._pag.paginate(**kw)
        pages = self._memo._call((id(self._memo._client), "region", self._op),
                                 lambda: list(self._pag.paginate()))
        return [{self._key: [r for p in pages for r in p.get(self._key, []) if r.get(self._field) == kw[self._field]]}]


class _LogGroups:
    """Log groups under RDS's default prefix: one listing of ``/aws/rds/`` a region, filtered by
    each database's prefix (``logGroupNamePrefix`` is a plain prefix match)."""

    def __init__(self, memo: _Memo, pag: Any) -> None:
        self._memo, self._pag = memo, pag

    def paginate(self, **kw: Any) -> Any:
        prefix = kw.get("logGroupNamePrefix", "")
        if set(kw) != {"logGroupNamePrefix"} or not prefix.startswith(RDS_LOGS):
            return self._pag.paginate(**kw)
        pages = self._memo._call((id(self._memo._client), "region", "describe_log_groups"),
                                 lambda: list(self._pag.paginate(logGroupNamePrefix=RDS_LOGS)))
        return [{"logGroups": [g for p in pages for g in p.get("logGroups", [])
                               if g["logGroupName"].startswith(prefix)]}]


class _DbCtx:
    """A database's view of its region's context: its own config, the region's clients."""

    def __init__(self, shared: _Ctx, cfg: Aws, cache: dict[Any, Any], lock: threading.Lock,
                 known: dict[str, dict[str, Any]] | None = None) -> None:
        self.cfg, self._shared, self.endpoint = cfg, shared, shared.endpoint
        self._cache, self._lock, self._known = cache, lock, known
        self.unreachable = shared.unreachable

    def client(self, service: str, region: str | None = None, once: bool = False) -> Any:
        known = self._known if service == "rds" and region in (None, self.cfg.region) else None
        return _Memo(self._shared.client(service, region, once), self._cache, self._lock, known)


class FleetProbe:
    """Discover then describe; one instance per run (clients are reused across databases)."""

    def __init__(self, cfg: Aws, *, connect_timeout: float = 5.0, max_attempts: int = 8,
                 workers: int = FLEET_WORKERS, read_timeout: float | None = None) -> None:
        self.cfg, self.workers = cfg, workers
        self.regions = list(dict.fromkeys(cfg.regions or [cfg.region]))
        self._cache: dict[Any, Any] = {}
        self._lock = threading.Lock()
        # "region/id" -> the record discovery's DescribeDBInstances page returned for it: the
        # inventory starts from it instead of describing each database once more.
        self.described: dict[str, dict[str, Any]] = {}
        self._ctx = {r: _Ctx(cfg.model_copy(update={"region": r}), connect_timeout, max_attempts,
                             read_timeout)
                     for r in self.regions}

    def discover(self) -> list[str]:
        """Every selected database as "region/id"; ``Unreachable`` if a region cannot be listed."""
        def one(region: str) -> list[tuple[str, dict[str, Any]]]:
            ctx = self._ctx[region]
            try:
                insts = _pages(ctx.client("rds"), "describe_db_instances", "DBInstances")
            except (ClientError, BotoCoreError, ResponseParserError) as exc:
                raise ctx.unreachable(exc, "DescribeDBInstances (fleet discovery)") from None
            return [(f"{region}/{i['DBInstanceIdentifier']}", i) for i in insts if _matches(self.cfg, i)]

        with pools.threads(len(self.regions)) as pool:
            found: dict[str, dict[str, Any]] = dict(x for pairs in pool.map(one, self.regions) for x in pairs)
        self.described.update(found)
        return sorted(found)

    def gather_one(self, key: str) -> AwsInventory:
        region, db = key.split("/", 1)
        shared = self._ctx[region]
        cfg = shared.cfg.model_copy(update={"db_instance_id": db, "regions": [], "db_tags": {}})
        record = self.described.get(key)
        ctx = _DbCtx(shared, cfg, self._cache, self._lock, {db: record} if record else None)
        return AwsProbe(cfg, workers=PER_DB_WORKERS, ctx=ctx).gather()

    def gather(self, ids: list[str]) -> dict[str, AwsInventory | Unreachable]:
        """Each database's inventory; one that cannot be described keeps its ``Unreachable``."""
        def one(key: str) -> AwsInventory | Unreachable:
            try:
                return self.gather_one(key)
            except Unreachable as exc:
                return exc

        if not ids:
            return {}
        with pools.threads(min(self.workers, len(ids))) as pool:
            return dict(zip(ids, pool.map(one, ids), strict=True))


def gather_fleet(cfg: Aws, ids: list[str] | None = None, probe: FleetProbe | None = None,
                 **kw: Any) -> Fleet:
    """Discover (unless ``ids`` are given) and describe the fleet ``cfg`` selects.

    ``probe``: the one that discovered ``ids`` (its clients and instance records are reused)."""
    probe = probe or FleetProbe(cfg, **kw)
    fleet = Fleet(regions=probe.regions)
    t0 = time.monotonic()
    fleet.ids = probe.discover() if ids is None else ids
    fleet.discover_s = round(time.monotonic() - t0, 3)
    fleet.inventories = probe.gather(fleet.ids)
    fleet.gather_s = round(time.monotonic() - t0 - fleet.discover_s, 3)
    return fleet
